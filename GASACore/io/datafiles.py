"""Where a header's voxel data lies (one or more data files, offsets, encoding) and how much of it there is.

MetaImage (``.mha`` / ``.mhd``) and NRRD headers name their data: inline after the header, or in other files
(one, a ``LIST`` or a ``printf`` pattern). :func:`confined` keeps every such file inside the header's folder, so a
header can never make GASASegmenter read a system file; :class:`DataLayout` tells how many bytes of voxel data
the files hold: an exact figure for raw data, a bound (deflate expands at most 1032-fold) or a bounded count for
compressed and text data, so that short data is refused before SimpleITK allocates the image.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from GASACore.errors import DamagedFileError, UnsafePathError
from GASACore.io.limits import DEFLATE_MAX_RATIO
from GASACore.io.pathkind import special_path_kind
from GASACore.io.stream import StreamError, VoxelStream

__all__ = ["MAX_DATA_FILES", "DataLayout", "DataPiece", "confined"]

logger = logging.getLogger(__name__)

#: Most data files one header may name (a LIST or pattern): more is a damaged header.
MAX_DATA_FILES = 100_000
_TOKEN = re.compile(rb"\S+")


def confined(folder: Path, name: str, source: Path, key: str) -> Path:
    """The data file ``name`` (relative to ``folder``, the header's folder), refused if it lies outside it.

    Links are followed: a link inside the folder that leads out of it is refused too.

    Raises:
        UnsafePathError: ``name`` is absolute outside the folder, climbs out with ``..``, or leads out through a link.
    """
    if not name or "\0" in name:
        raise DamagedFileError(f"expected a data file name after {key} in the header of {source}, got {name!r}")
    base = folder.resolve()
    target = (folder / name).resolve()
    if not target.is_relative_to(base):
        raise UnsafePathError(
            f"expected the data file named by {key} in {source} to lie in the header's folder {base}, got {name!r}, "
            f"which is {target}, outside it; GASASegmenter reads no file outside the image's folder: move the data "
            "file next to its header and name it without a folder"
        )
    return target


@dataclass(frozen=True)
class DataPiece:
    """One file (or the inline part of a header file) holding voxel data.

    Attributes:
        path: the file.
        start: byte offset where the data starts, or -1 when the data are the file's last bytes.
        encoding: ``raw``, ``gzip`` (gzip or zlib), ``bzip2``, ``text`` (numbers separated by white space) or ``hex``.
        length: bytes of (encoded) data from ``start`` that the header announces (MetaImage
            ``CompressedDataSize``), None when the data run to the end of the file.
        skip_lines: lines to skip at ``start`` before the data (NRRD ``line skip``).
        skip_decoded: decoded bytes to skip before the voxels (NRRD ``byte skip`` of compressed data).
    """

    path: Path
    start: int
    encoding: str
    length: int | None = None
    skip_lines: int = 0
    skip_decoded: int = 0


def _file_size(piece: DataPiece, source: Path) -> int:
    """The size of a data file, refused unless it is a regular file (a folder, FIFO or device never is data)."""
    try:
        mode = os.stat(piece.path).st_mode
    except OSError as err:
        raise DamagedFileError(
            f"expected the data file {piece.path} that the header of {source} names, but it cannot be read: "
            f"{err.strerror or err}"
        ) from err
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else special_path_kind(piece.path) or "not a regular file"
        raise DamagedFileError(
            f"expected the data file that the header of {source} names to be a file, got {piece.path}, which is {kind}"
        )
    return piece.path.stat().st_size


def _skip_lines(handle, count: int) -> None:  # type: ignore[no-untyped-def]
    for _ in range(count):
        if not handle.readline(1 << 20):
            return


def _count_text(handle, want: int, hex_digits: bool) -> int:  # type: ignore[no-untyped-def]
    """Numbers (or hex digit pairs) available in ``handle``, counted up to ``want``."""
    count, joined = 0, False
    while count < want and (chunk := handle.read(1 << 20)):
        tokens = _TOKEN.findall(chunk)
        if hex_digits:
            count += sum(len(token) for token in tokens)
        else:
            count += len(tokens) - (1 if joined and tokens and not chunk[:1].isspace() else 0)
        joined = not chunk[-1:].isspace()
    return count // 2 if hex_digits else count


@dataclass(frozen=True)
class DataLayout:
    """The voxel data of one header: its pieces, in order.

    Attributes:
        pieces: the data files (or the inline data), in the order the header gives them.
        source: the header file, for messages.
    """

    pieces: tuple[DataPiece, ...]
    source: Path

    def check_readable(self) -> None:
        """Refuse a data file that does not exist or cannot be read (before SimpleITK tries to open it).

        Raises:
            DamagedFileError: naming the file and the reason.
        """
        for piece in self.pieces:
            _file_size(piece, self.source)

    @property
    def needs_count(self) -> bool:
        """True when :meth:`bound` is only an upper bound and :meth:`count` must read the data."""
        return any(piece.encoding != "raw" or piece.skip_lines for piece in self.pieces)

    def _raw_bytes(self, piece: DataPiece, want: int) -> int:
        size = _file_size(piece, self.source)
        if piece.start < 0:
            return size  # the data are the file's last bytes: any file of `want` bytes or more holds them
        available = max(0, size - piece.start)
        return available if piece.length is None else min(available, piece.length)

    def bound(self, want: int) -> int:
        """Bytes of voxel data the files can hold at most (exact for raw data); ``want`` is the claimed total."""
        total = 0
        for piece in self.pieces:
            held = self._raw_bytes(piece, want)
            if piece.length is not None and piece.start >= 0 and piece.length > held:
                raise DamagedFileError(
                    f"expected {piece.length} bytes of compressed voxel data in {piece.path} (the header of "
                    f"{self.source} says so), found {held}: the file is cut short"
                )
            if piece.encoding == "gzip":
                held *= DEFLATE_MAX_RATIO
            elif piece.encoding in ("bzip2", "text"):
                held = want  # no useful bound without reading: count() decides
            elif piece.encoding == "hex":
                held //= 2
            total += held
        return total

    def count(self, want: int, itemsize: int) -> int:
        """Bytes of voxel data actually present, read and counted (at most ``want``), without keeping them.

        Text and hex data are counted in values and reported as ``values * itemsize`` bytes.

        Raises:
            DamagedFileError: compressed data that are corrupt (not merely short).
        """
        total = 0
        for piece in self.pieces:
            if total >= want:
                break
            total += self._count_piece(piece, want - total, itemsize)
        return total

    def _count_piece(self, piece: DataPiece, want: int, itemsize: int) -> int:
        if piece.encoding == "raw" and not piece.skip_lines:
            return min(want, self._raw_bytes(piece, want))
        with piece.path.open("rb") as handle:
            if piece.start >= 0:
                handle.seek(piece.start)
            _skip_lines(handle, piece.skip_lines)
            if piece.encoding in ("text", "hex"):
                return _count_text(handle, -(-want // itemsize), piece.encoding == "hex") * itemsize
            stream = VoxelStream(handle, piece.encoding)
            try:
                stream.skip(piece.skip_decoded)
                return max(0, stream.skip(want))
            except StreamError as err:
                if not err.truncated:
                    raise DamagedFileError(f"expected intact compressed voxel data in {piece.path}, but {err}") from err
                logger.debug("%s: %s after %d bytes", piece.path, err, stream.position)
                return max(0, stream.position - piece.skip_decoded)
