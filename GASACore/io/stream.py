"""Voxel data as a byte stream (raw, gzip/zlib or bzip2), read in bounded chunks and never beyond what is asked.

Decompression goes through ``zlib`` / ``bz2`` with a bounded output per call, so a small file that expands to
gigabytes (a gzip bomb) costs no more memory than the bytes a caller asks for, and a stream that ends before it
should (a file cut short) is told apart from one that ends where it should.
"""

from __future__ import annotations

import bz2
import logging
import zlib
from collections.abc import Callable, Iterator
from typing import BinaryIO, Protocol

__all__ = ["ENCODINGS", "StreamError", "VoxelStream", "compression_of"]

logger = logging.getLogger(__name__)

#: Encodings a :class:`VoxelStream` decodes: ``raw`` bytes, ``gzip`` (gzip or zlib, several members), ``bzip2``.
ENCODINGS = ("raw", "gzip", "bzip2")
_CHUNK = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"


class StreamError(Exception):
    """The stream is damaged: it ends early (``truncated``) or its compressed data is corrupt. ``str()`` says which."""

    def __init__(self, message: str, *, truncated: bool) -> None:
        super().__init__(message)
        self.truncated = truncated


class _Decoder(Protocol):
    eof: bool
    unused_data: bytes

    def decompress(self, data: bytes, max_length: int = ...) -> bytes: ...


def compression_of(head: bytes) -> str:
    """``"gzip"`` when ``head`` starts with the gzip magic bytes, ``"bzip2"`` for ``BZh``, else ``"raw"``."""
    if head.startswith(_GZIP_MAGIC):
        return "gzip"
    if head.startswith(b"BZh"):
        return "bzip2"
    return "raw"


def _raw_chunks(handle: BinaryIO) -> Iterator[bytes]:
    while chunk := handle.read(_CHUNK):
        yield chunk


def _wants_input(decoder: _Decoder, pending: bytes) -> bool:
    needs = getattr(decoder, "needs_input", None)  # bz2 keeps unconsumed input inside the decoder
    return bool(needs) if needs is not None else not pending


def _decoded_chunks(handle: BinaryIO, make: Callable[[bool], _Decoder], name: str) -> Iterator[bytes]:
    """Decompressed chunks of at most 1 MiB; members follow one another (``cat a.gz b.gz``)."""
    decoder, pending, at_eof = make(True), b"", False
    while True:
        if decoder.eof:
            pending = decoder.unused_data  # all input after the end (zlib repeats it in unconsumed_tail)
            if len(pending) < 3 and not at_eof:
                more = handle.read(_CHUNK)
                pending, at_eof = pending + more, not more
            if not pending:
                return
            if compression_of(pending) != name:
                logger.debug("ignoring %d bytes after the end of the %s stream", len(pending), name)
                return
            decoder = make(False)
        if not at_eof and not pending and _wants_input(decoder, pending):
            pending = handle.read(_CHUNK)
            at_eof = not pending
        try:
            out = decoder.decompress(pending, _CHUNK)
        except (zlib.error, OSError, EOFError, ValueError) as err:
            raise StreamError(f"the {name} data is corrupt ({err})", truncated=False) from err
        pending = getattr(decoder, "unconsumed_tail", b"")
        if out:
            yield out
        elif not decoder.eof and at_eof and _wants_input(decoder, pending):
            raise StreamError(f"the {name} stream ended early", truncated=True)


def _gzip_decoder(first: bool) -> _Decoder:
    # The first member may be zlib (MetaImage) or gzip (NIfTI, NRRD): 32 + 15 detects either.
    return zlib.decompressobj(47 if first else 31)  # type: ignore[return-value]


def _bzip2_decoder(first: bool) -> _Decoder:
    return bz2.BZ2Decompressor()  # type: ignore[return-value]


class VoxelStream:
    """Exact reads from a raw or compressed stream that starts at the handle's current position.

    Args:
        handle: a binary file opened for reading, positioned where the (possibly compressed) data starts.
        encoding: one of :data:`ENCODINGS`.

    Attributes:
        position: bytes (decoded) consumed so far.
    """

    def __init__(self, handle: BinaryIO, encoding: str) -> None:
        if encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
        self.encoding = encoding
        self.position = 0
        self._handle = handle
        self._buffer = b""
        if encoding == "raw":
            self._chunks = _raw_chunks(handle)
        else:
            make = _gzip_decoder if encoding == "gzip" else _bzip2_decoder
            self._chunks = _decoded_chunks(handle, make, encoding)

    def _next(self) -> bytes:
        if self._buffer:
            chunk, self._buffer = self._buffer, b""
            return chunk
        return next(self._chunks, b"")

    def _consume(self, most: int, sink: memoryview | None, start: int = 0) -> int:
        done = 0
        while done < most:
            chunk = self._next()
            if not chunk:
                break
            take = min(len(chunk), most - done)
            if sink is not None:
                sink[start + done : start + done + take] = chunk[:take]
            if take < len(chunk):
                self._buffer = chunk[take:]
            done += take
            self.position += take
        return done

    def read(self, count: int) -> bytes:
        """Up to ``count`` bytes (fewer only at the end of the stream).

        Raises:
            StreamError: the stream is corrupt or ends early.
        """
        target = bytearray(count)
        done = self._consume(count, memoryview(target))
        return bytes(target[:done])

    def readinto(self, target: memoryview) -> int:
        """Fill ``target`` (a writable byte buffer) as far as the stream goes; returns the bytes written.

        Only the pages written are touched, so a lazily allocated target (``np.empty``) costs memory only for
        the data that actually arrives.

        Raises:
            StreamError: the stream is corrupt or ends early.
        """
        target = target.cast("B")
        if self.encoding != "raw" or self._buffer:
            return self._consume(len(target), target)
        done = 0
        while done < len(target):
            got = self._handle.readinto(target[done:])  # type: ignore[attr-defined]
            if not got:
                break
            done += got
        self.position += done
        return done

    def skip(self, count: int) -> int:
        """Discard up to ``count`` bytes; returns how many there were."""
        return self._consume(count, None)
