"""Atomic outputs: a file or folder appears complete, or not at all.

Every GASACore and train output (label maps, reports, overlays, bundles, unpacked bundle caches, nnU-Net
data sets) is written through :func:`atomic_output`: the caller fills a temporary sibling of the target
(same folder, so the final rename never crosses file systems), which then gets the permissions any new
file or folder gets and is renamed into place. On any error the temporary is removed and the target is
untouched.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_output", "give_default_permissions", "stale_temporaries", "temporary_sibling"]

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
    found = []
    for entry in path.parent.glob(".partial-*"):
        match = _TEMPORARY.fullmatch(entry.name)
        if match is not None and match.group("name") == path.name:
            found.append(entry)
    return sorted(found)


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
def atomic_output(path: str | Path, *, overwrite: bool, is_dir: bool = False) -> Iterator[Path]:
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

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False (checked first and at the rename).
        Whatever the body raises; the temporary is then removed and ``path`` is left as it was.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise _exists_error(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_sibling(path)
    if is_dir:
        temporary.mkdir()
    try:
        yield temporary
        if not temporary.exists():
            raise FileNotFoundError(f"nothing was written for {path}: the temporary {temporary.name} is missing")
        give_default_permissions(temporary)
        (_commit_dir if is_dir else _commit_file)(temporary, path, overwrite)
    except BaseException:
        _remove(temporary)
        raise
    logger.debug("wrote %s atomically", path)
