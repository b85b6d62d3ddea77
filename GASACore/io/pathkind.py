"""What an input path is when it is neither a regular file nor a folder, in words for an error message.

``gasa-segment /dev/zero`` or a named pipe must be refused by name before anything opens it (reading a
FIFO blocks forever, a device never ends), and a symbolic-link loop is not "missing".

Example::

    check_input_path(Path("/dev/zero"), "an image file or a folder of cases")
    # InputError: expected an image file or a folder of cases, got /dev/zero, which is a character device
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from GASACore.errors import InputError

__all__ = ["check_input_path", "special_path_kind"]

_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def special_path_kind(path: Path) -> str | None:
    """``None`` for a regular file or a folder (links followed); otherwise what ``path`` is, in words.

    Examples: ``"a FIFO (named pipe)"``, ``"a character device"``, ``"a symbolic link loop"``,
    ``"a broken symbolic link (to missing.nii.gz)"``, ``"not found"`` (nothing there at all).
    """
    try:
        mode = os.stat(path).st_mode
    except OSError as err:
        if os.path.islink(path):
            if err.errno == errno.ELOOP:
                return "a symbolic link loop"
            return f"a broken symbolic link (to {os.readlink(path)})"
        return "not found"
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    for test, words in _KINDS:
        if test(mode):
            return words
    return "not a regular file or folder"


def check_input_path(path: Path, expected: str) -> None:
    """Refuse ``path`` unless it is (or links to) a regular file or a folder.

    Raises:
        InputError: ``"expected <expected>, got <path>, which does not exist"`` or ``"..., which is <kind>"``.
    """
    kind = special_path_kind(path)
    if kind is None:
        return
    if kind == "not found":
        raise InputError(f"expected {expected}, got {path}, which does not exist")
    raise InputError(f"expected {expected}, got {path}, which is {kind}")
