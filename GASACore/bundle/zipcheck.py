"""Checks of a zip archive's directory (bundle zips, torch checkpoints) before any member is read.

A zip's central directory declares every member's name and sizes; ``zipfile`` holds a member to its declared
size while reading it. So a zip bomb, an archive with a million members or a member named ``../../x`` is
refused here, from the directory alone, before a byte is unpacked.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from GASACore.bundle.limits import (
    MAX_ZIP_BYTES_ENV,
    MAX_ZIP_MEMBERS_ENV,
    MAX_ZIP_RATIO_ENV,
    RATIO_CHECK_MIN_BYTES,
    max_zip_bytes,
    max_zip_members,
    max_zip_ratio,
)
from GASACore.errors import ModelError

__all__ = ["ZipLimits", "check_zip_members", "format_size"]


@dataclass(frozen=True)
class ZipLimits:
    """The most a zipped bundle or checkpoint may unpack to; defaults from ``GASACore.bundle.limits``.

    Attributes:
        max_members: entries (files and folders); a bundle has model.json and one file per fold
            (``GASA_MAX_ZIP_MEMBERS``, 10,000).
        max_bytes: total unpacked size in bytes (``GASA_MAX_ZIP_BYTES``, 16 GiB: five folds of a large
            network, with room).
        max_ratio: unpacked / packed size of one member of more than 1 MiB (``GASA_MAX_ZIP_RATIO``, 200).
    """

    max_members: int = field(default_factory=max_zip_members)
    max_bytes: int = field(default_factory=max_zip_bytes)
    max_ratio: float = field(default_factory=max_zip_ratio)


def format_size(count: int) -> str:
    """``"16.00 GiB (17,179,869,184 bytes)"``; MiB below 1 GiB."""
    unit, scale = ("GiB", 1 << 30) if count >= 1 << 30 else ("MiB", 1 << 20)
    return f"{count / scale:.2f} {unit} ({count:,} bytes)"


def check_zip_members(
    archive_zip: zipfile.ZipFile,
    archive: Path,
    limits: ZipLimits | None = None,
    *,
    what: str = "a model bundle",
) -> None:
    """Refuse unsafe members and archives that unpack to more than ``limits``, before reading anything.

    Args:
        archive_zip: the open archive.
        archive: its path, for messages.
        limits: the limits; :class:`ZipLimits` ``()`` (defaults and environment) when ``None``.
        what: what the archive is, for messages (``"a model bundle"``, ``"an nnU-Net checkpoint"``).

    Raises:
        ModelError: naming the unsafe member, or the member count / unpacked size / ratio and the limit.
    """
    limits = limits if limits is not None else ZipLimits()
    members = archive_zip.infolist()
    if len(members) > limits.max_members:
        raise ModelError(
            f"refusing to unpack {archive}: it holds {len(members):,} members, more than the limit of "
            f"{limits.max_members:,} for {what}; set {MAX_ZIP_MEMBERS_ENV} to raise it"
        )
    total = sum(member.file_size for member in members)
    if total > limits.max_bytes:
        raise ModelError(
            f"refusing to unpack {archive}: it would unpack to {format_size(total)}, more than the limit of "
            f"{format_size(limits.max_bytes)} for {what}; set {MAX_ZIP_BYTES_ENV} to raise it"
        )
    for member in members:
        name = PurePosixPath(member.filename)
        is_link = (member.external_attr >> 16) & 0o170000 == 0o120000
        drive = bool(name.parts) and ":" in name.parts[0]  # C:/... on Windows
        if name.is_absolute() or ".." in name.parts or "\\" in member.filename or is_link or drive:
            raise ModelError(
                f"refusing to unpack {archive}: expected member paths inside {what}, found unsafe member path "
                f"{member.filename!r}"
            )
        if member.file_size > RATIO_CHECK_MIN_BYTES:
            ratio = member.file_size / max(member.compress_size, 1)
            if ratio > limits.max_ratio:
                raise ModelError(
                    f"refusing to unpack {archive}: member {member.filename!r} would expand {ratio:,.0f} times "
                    f"({format_size(member.compress_size)} to {format_size(member.file_size)}), expected at most "
                    f"{limits.max_ratio:g} times for {what} (a zip bomb?); set {MAX_ZIP_RATIO_ENV} to raise the limit"
                )
