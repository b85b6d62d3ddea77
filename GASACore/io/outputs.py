"""Output paths checked before any work: right suffix, a folder that can be written, never an input.

``gasa-segment`` calls :func:`output_problem` once it knows its cases and before it loads a model, so a
missing or read-only folder, a bad extension, an output that is (or resolves to) an input file or lies
inside an input DICOM folder, or two outputs on one path are refused in seconds, with one line, and the
user's files are never touched. Outputs that exist are :func:`GASACore.cohort.run.existing_outputs_error`'s
(it knows ``--overwrite`` and ``--resume``); locks against a concurrent run are :mod:`GASACore.io.lockfile`'s.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from GASACore.errors import OutputError
from GASACore.io.atomic import temporary_sibling
from GASACore.io.formats import LABEL_MAP_SUFFIXES, label_map_suffix

__all__ = [
    "OVERLAY_SUFFIXES",
    "VOLUMES_SUFFIXES",
    "PlannedOutput",
    "Protected",
    "make_output_folders",
    "output_problem",
]

#: Suffixes of ``--overlay`` (:func:`GASACore.report.write_overlay_png`) and ``--volumes``.
OVERLAY_SUFFIXES: tuple[str, ...] = (".png",)
VOLUMES_SUFFIXES: tuple[str, ...] = (".csv", ".json")


@dataclass(frozen=True)
class PlannedOutput:
    """A file the run will write.

    Attributes:
        path: where.
        owner: who writes it, for messages: a case name, ``--overlay`` or ``--volumes``.
        suffixes: the endings its writer supports (lower case); label maps: the label map formats.
    """

    path: Path
    owner: str
    suffixes: tuple[str, ...] = LABEL_MAP_SUFFIXES


@dataclass(frozen=True)
class Protected:
    """A path of the user's that no output may be or lie inside: an input file or folder, the model.

    Attributes:
        path: the file or folder.
        what: how messages name it (``the input``, ``the input DICOM folder``, ``the model folder``).
    """

    path: Path
    what: str


def _suffix_problem(output: PlannedOutput) -> str | None:
    name = output.path.name.lower()
    if output.suffixes == LABEL_MAP_SUFFIXES:
        supported = label_map_suffix(output.path) is not None
    else:
        supported = any(name.endswith(s) and len(name) > len(s) for s in output.suffixes)
    if supported:
        return None
    kind = "an output file name" if output.suffixes == LABEL_MAP_SUFFIXES else f"a {output.owner} file name"
    endings = f"one of {', '.join(output.suffixes)}" if len(output.suffixes) > 1 else output.suffixes[0]
    return f"expected {kind} ending in {endings}, got {output.path}"


#: What the longest hidden sibling of an output adds to its name: the temporary ``.partial-<12 hex>-NAME``.
_SIBLING_EXTRA = len(temporary_sibling(Path("x")).name) - 1


def _name_limit(folder: Path) -> int:
    """The longest file name (bytes) the file system of ``folder`` (or of its nearest existing ancestor) takes."""
    try:
        return int(os.pathconf(_existing_ancestor(folder), "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):  # no pathconf (Windows), or no answer
        return 255


def _name_length_problem(output: PlannedOutput) -> str | None:
    """An output name too long for its file system once its temporary's prefix is added."""
    limit = _name_limit(output.path.parent) - _SIBLING_EXTRA
    length = len(os.fsencode(output.path.name))
    if length <= limit:
        return None
    return (
        f"expected an output file name of at most {limit} bytes (the file system's limit of {limit + _SIBLING_EXTRA} "
        f"less {_SIBLING_EXTRA} for the temporary file written first), got a name of {length} bytes: "
        f"{output.path.name[:40]}...{output.path.name[-20:]} in {output.path.parent}"
    )


def _key(path: Path) -> str:
    """A path's identity for comparisons: resolved (links followed) and case-folded where the OS folds."""
    return os.path.normcase(str(path.resolve()))


def _same_file(a: Path, b: Path) -> bool:
    try:
        if os.path.samefile(a, b):  # hard links, symlinks, case-insensitive file systems
            return True
    except OSError:
        pass
    return _key(a) == _key(b)


def _inside(path: Path, folder: Path) -> bool:
    resolved, base = _key(path), _key(folder)
    return resolved.startswith(base.rstrip(os.sep) + os.sep)


def _protection_problem(output: PlannedOutput, protected: Sequence[Protected]) -> str | None:
    for item in protected:
        if item.path.is_dir() and _inside(output.path, item.path):
            return (
                f"output {output.path} is inside {item.what} {item.path}; gasa-segment never writes into its "
                "inputs (not even with --overwrite): choose another output path"
            )
        if not item.path.is_dir() and _same_file(output.path, item.path):
            return (
                f"output {output.path} is {item.what} {item.path}; gasa-segment never replaces its inputs (not even "
                "with --overwrite): choose another output path"
            )
    return None


def _duplicate_problem(outputs: Sequence[PlannedOutput]) -> str | None:
    seen: dict[str, PlannedOutput] = {}
    for output in outputs:
        key = _key(output.path)
        first = seen.setdefault(key, output)
        if first is not output:
            return (
                f"{first.owner} and {output.owner} would both write {output.path}; give each output its own path "
                "(rename one of the inputs or choose another output)"
            )
    return None


def _existing_ancestor(folder: Path) -> Path:
    for candidate in (folder, *folder.parents):
        if os.path.lexists(candidate):
            return candidate
    return Path(folder.anchor or ".")


def _folder_problem(folder: Path) -> str | None:
    """Why files cannot be created in ``folder`` (or in the folder it would be made in), else ``None``.

    Writability is probed by creating and removing an empty hidden file: permission bits say nothing for
    root, read-only mounts or network shares.
    """
    base = _existing_ancestor(folder)
    if not base.is_dir():
        if base == folder:
            return f"expected an output folder, got the file {folder}"
        return f"expected an output folder, got {folder}, where {base} is a file, not a folder"
    probe = temporary_sibling(base / ".gasa-write-test")
    try:
        descriptor = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as err:
        where = f"output folder {folder}" if base == folder else f"folder {base} (to make the output folder {folder})"
        return f"cannot write to the {where}: {(err.strerror or str(err)).lower()}"
    os.close(descriptor)
    probe.unlink(missing_ok=True)
    return None


def output_problem(outputs: Sequence[PlannedOutput], protected: Sequence[Protected]) -> str | None:
    """The first reason the run may not write ``outputs``, or ``None`` when every one can be written.

    Checked in this order, for every output: its suffix is one its writer supports; it is not an existing
    folder; it is not (and does not resolve to) a protected file and does not lie in a protected folder;
    no two outputs share a path; its folder exists and can be written, or can be made.
    """
    for output in outputs:
        problem = _suffix_problem(output) or _name_length_problem(output)
        if problem is None and output.path.is_dir():
            problem = f"expected an output file path for {output.owner}, got the existing folder {output.path}"
        problem = problem or _protection_problem(output, protected)
        if problem:
            return problem
    problem = _duplicate_problem(outputs)
    if problem:
        return problem
    for folder in dict.fromkeys(output.path.parent for output in outputs):
        problem = _folder_problem(folder)
        if problem:
            return problem
    return None


def make_output_folders(paths: Iterable[Path]) -> None:
    """Create the folders of ``paths`` (after :func:`output_problem` found them writable).

    Raises:
        OutputError: a folder cannot be made (e.g. it became read-only meanwhile).
    """
    for folder in dict.fromkeys(Path(p).parent for p in paths):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OutputError(f"cannot make the output folder {folder}: {(err.strerror or str(err)).lower()}") from err
