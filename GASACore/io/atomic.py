"""Atomic outputs: a file or folder appears complete, or not at all.

Every GASACore and train output (label maps, reports, overlays, bundles, unpacked bundle caches, nnU-Net
data sets) is written through :func:`atomic_output`: the caller fills a temporary sibling of the target
(same folder, so the final rename never crosses file systems), which then gets the permissions any new
file or folder gets and is renamed into place. On any error the temporary is removed and the target is
untouched.

A write that fails because the disk is full, the file size limit (``ulimit -f``) is reached or the file
system is read-only raises :class:`~GASACore.errors.OutputError` with one line saying so
(:func:`describe_write_failure`), e.g. ``cannot write out/ct.nii: no space left on device (needs ~160 KB,
12 KB free)``; nothing is left behind.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from GASACore.errors import OutputError
from GASACore.io.formats import label_map_suffix

__all__ = [
    "atomic_output",
    "describe_write_failure",
    "give_default_permissions",
    "output_error",
    "stale_temporaries",
    "temporary_sibling",
]

logger = logging.getLogger(__name__)

_FILE_MODE = 0o666
_DIR_MODE = 0o777


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def give_default_permissions(path: Path) -> None:
    """Give ``path`` the permissions the umask gives any new file or folder.

    ``mkstemp`` / ``mkdtemp`` make private entries (0600 / 0700); outputs are meant to be readable as users
    expect. For a folder, its direct entries (files and folders, not links, not recursively) get the same.
    """
    path = Path(path)
    mask = _umask()
    entries = [path, *(path.iterdir() if path.is_dir() and not path.is_symlink() else ())]
    for entry in entries:
        if entry.is_symlink():
            continue  # chmod would follow the link and change its target
        os.chmod(entry, (_DIR_MODE if entry.is_dir() else _FILE_MODE) & ~mask)


def temporary_sibling(path: Path) -> Path:
    """A fresh hidden name next to ``path`` that ends in ``path``'s own name (so its suffix, i.e. the file
    format, is the same): ``out/ct.nii.gz`` -> ``out/.partial-1a2b3c4d5e6f-ct.nii.gz``."""
    return path.parent / f".partial-{secrets.token_hex(6)}-{path.name}"


_TEMPORARY = re.compile(r"\.partial-[0-9a-f]{12}-(?P<name>.+)")


def stale_temporaries(path: Path) -> list[Path]:
    """The temporaries of ``path`` left behind by a writer that was killed before its rename.

    A temporary is never an output: a run that restarts (``gasa-segment --resume``) removes these and
    writes ``path`` again. Names follow :func:`temporary_sibling`, e.g. for ``out/ct.nii.gz``::

        out/.partial-1a2b3c4d5e6f-ct.nii.gz   -> listed
        out/.partial-1a2b3c4d5e6f-ct2.nii.gz  -> not listed (another output's)

    Only call this for a path no other process is writing: a live writer's temporary looks the same.
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    suffix = label_map_suffix(path)
    # A label map named with an upper-case suffix (OUT.NII.GZ) is written under its lower-case one first.
    names = {path.name, path.name[: -len(suffix)] + suffix if suffix else path.name}
    found = []
    for entry in path.parent.glob(".partial-*"):
        match = _TEMPORARY.fullmatch(entry.name)
        if match is not None and match.group("name") in names:
            found.append(entry)
    return sorted(found)


#: The errors of a write that mean "this place cannot hold the file", in the words the user sees.
_WRITE_FAILURES = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large for the file size limit (ulimit -f)",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
}


def _size(count: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GB"  # pragma: no cover - the loop returns


def _file_size_limit() -> int | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    return None if soft == resource.RLIM_INFINITY else int(soft)


def _why_write_failed(folder: Path, error: BaseException, need_bytes: int | None) -> str | None:
    """What kept a file from being written in ``folder``: from the error number, else from the folder."""
    if isinstance(error, OSError) and error.errno in _WRITE_FAILURES:
        reason = _WRITE_FAILURES[error.errno]
        if error.errno in (errno.ENOSPC, errno.EDQUOT) and folder.is_dir():
            free = shutil.disk_usage(folder).free
            reason += f" (needs ~{_size(need_bytes)}, {_size(free)} free)" if need_bytes else f" ({_size(free)} free)"
        return reason
    if (isinstance(error, OSError) and error.errno is not None) or not folder.is_dir():
        return None
    if hasattr(os, "statvfs") and os.statvfs(folder).f_flag & os.ST_RDONLY:
        return _WRITE_FAILURES[errno.EROFS]
    limit = _file_size_limit()
    if limit is not None and need_bytes and need_bytes > limit:
        return f"file too large for the file size limit (ulimit -f) of {_size(limit)} (needs ~{_size(need_bytes)})"
    free = shutil.disk_usage(folder).free
    if (need_bytes and need_bytes > free) or free < 64 * 1024:
        need = f"needs ~{_size(need_bytes)}, " if need_bytes else ""
        return f"{_WRITE_FAILURES[errno.ENOSPC]} ({need}{_size(free)} free)"
    return None


def describe_write_failure(path: Path, error: BaseException, need_bytes: int | None = None) -> str | None:
    """One line for a write of ``path`` that failed with ``error``: ``cannot write PATH: REASON``.

    The reason comes from the error number (``ENOSPC``, ``EFBIG``, ``EROFS``...) or, for libraries that
    hide it (SimpleITK raises ``RuntimeError``), from the folder: read-only, ``ulimit -f`` below
    ``need_bytes`` (the file's expected size), or too little free space. ``None`` when neither explains it.
    Call it once the temporary is removed, so the free space is what the disk really has.
    """
    path = Path(path)
    reason = _why_write_failed(path.parent, error, need_bytes)
    return None if reason is None else f"cannot write {path}: {reason}"


def output_error(path: Path, error: BaseException, need_bytes: int | None = None) -> BaseException:
    """``error`` as an :class:`OutputError` of one line when :func:`describe_write_failure` explains it."""
    if isinstance(error, OutputError):
        return error
    message = describe_write_failure(path, error, need_bytes)
    if message is None:
        return error
    translated = OutputError(message)
    translated.errno = getattr(error, "errno", None)
    return translated


def _raise_translated(path: Path, error: OSError, need_bytes: int | None = None) -> None:
    translated = output_error(path, error, need_bytes) if not isinstance(error, FileExistsError) else error
    if translated is error:
        raise error
    raise translated from error


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _exists_error(path: Path) -> FileExistsError:
    return FileExistsError(f"output {path} already exists; choose another path or allow overwriting")


def _commit_file(temporary: Path, path: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(temporary, path)
        return
    try:
        os.link(temporary, path)  # atomic and fails if path exists: no check-then-replace race
    except FileExistsError:
        raise _exists_error(path) from None
    except OSError:  # no hard links on this file system
        if path.exists():
            raise _exists_error(path) from None
        os.replace(temporary, path)
    else:
        temporary.unlink()


def _commit_dir(temporary: Path, path: Path, overwrite: bool) -> None:
    if path.exists() and overwrite:
        old = temporary_sibling(path)
        path.rename(old)
        try:
            temporary.rename(path)
        except BaseException:
            old.rename(path)
            raise
        _remove(old)
        return
    if path.exists():
        raise _exists_error(path)
    try:
        temporary.rename(path)  # fails when another process put a non-empty folder there meanwhile
    except OSError as err:
        if path.exists():
            raise _exists_error(path) from err
        raise


@contextmanager
def atomic_output(
    path: str | Path, *, overwrite: bool, is_dir: bool = False, need_bytes: int | None = None
) -> Iterator[Path]:
    """Write ``path`` atomically: fill the yielded temporary path, it is renamed to ``path`` on success.

    For a file the temporary does not exist yet (create it); for a folder (``is_dir=True``) it is an empty
    folder. The temporary's name ends in ``path``'s name, so writers that choose the format by suffix
    (SimpleITK) write the right one. The parent folder is created when missing.

    Example::

        with atomic_output(Path("out/volumes.csv"), overwrite=True) as tmp:
            tmp.write_text("label,volume_ml\\n")

    Args:
        path: the final file or folder.
        overwrite: replace an existing ``path``; otherwise an existing one is refused before the body runs
            and again at the rename (a file is linked into place, which fails if one appeared meanwhile).
        is_dir: ``path`` is a folder.
        need_bytes: about how large the output will be, for the message of a write that fails for want of space.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False (checked first and at the rename).
        OutputError: the disk is full, the file size limit is reached or the folder is read-only (one line,
            see :func:`describe_write_failure`).
        Whatever else the body raises; the temporary is then removed and ``path`` is left as it was.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise _exists_error(path)
    temporary = temporary_sibling(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if is_dir:
            temporary.mkdir()
    except OSError as err:
        _raise_translated(path, err)
    try:
        yield temporary
        if not temporary.exists():
            raise FileNotFoundError(f"nothing was written for {path}: the temporary {temporary.name} is missing")
        give_default_permissions(temporary)
        (_commit_dir if is_dir else _commit_file)(temporary, path, overwrite)
    except OSError as err:
        _remove(temporary)
        _raise_translated(path, err, need_bytes)
    except BaseException:
        _remove(temporary)
        raise
    logger.debug("wrote %s atomically", path)
