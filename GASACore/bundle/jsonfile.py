"""Reading a model's JSON files (model.json, plans.json, dataset.json, catalogues) within limits.

Every model JSON reader uses :func:`read_json_file`: a file above the size limit is refused before it is read,
and nesting deeper than :data:`~GASACore.bundle.limits.MAX_JSON_DEPTH` is refused before it is parsed (Python's
parser would otherwise raise ``RecursionError`` on a deeply nested file).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from GASACore.bundle.limits import MAX_JSON_BYTES_ENV, MAX_JSON_DEPTH, max_json_bytes
from GASACore.errors import ModelError
from GASACore.io.limits import format_bytes

__all__ = ["check_json_depth", "read_json_file"]

#: A JSON string (skipped whole: brackets inside strings do not nest) or one bracket.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def check_json_depth(
    text: str, source: str, *, error: type[ModelError] = ModelError, limit: int = MAX_JSON_DEPTH
) -> None:
    """Refuse JSON text whose objects and arrays nest deeper than ``limit`` (checked without parsing).

    Raises:
        error: naming the limit and where the nesting passes it.
    """
    depth = 0
    for match in _TOKEN.finditer(text):
        char = match.group()[0]
        if char in "[{":
            depth += 1
            if depth > limit:
                raise error(
                    f"{source}: expected JSON nested at most {limit} levels deep, found more than {limit} "
                    f"(at character {match.start()})"
                )
        elif char in "]}":
            depth -= 1


def read_json_file(path: Path, *, error: type[ModelError] = ModelError, what: str = "JSON file") -> Any:
    """The parsed content of a model's JSON file, refused when too large, too deeply nested or not JSON.

    Args:
        path: the file.
        error: the ``ModelError`` subclass raised (``CatalogError`` for catalogues).
        what: what the file is, for messages (``"model.json"``, ``"model catalogue"``).

    Raises:
        error: missing or unreadable file, larger than ``GASA_MAX_MODEL_JSON_BYTES`` (8 MB), nested deeper than
            64 levels, not UTF-8 or not JSON; one line naming the file, the limit and what was found.
        FileNotFoundError: is not caught; callers that word a missing file themselves catch it first.
    """
    path = Path(path)
    limit = max_json_bytes()
    with path.open("rb") as stream:  # FileNotFoundError goes to the caller
        size = _size_of(stream)
        if size > limit:
            raise error(
                f"expected a {what} of at most {format_bytes(limit)}, but {path} holds {format_bytes(size)}; "
                f"set {MAX_JSON_BYTES_ENV} to raise the limit"
            )
        data = stream.read(limit + 1)
    if len(data) > limit:  # a file that grew, or a special file that reports no size
        raise error(f"expected a {what} of at most {format_bytes(limit)}, but {path} holds more")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise error(f"cannot read {what} {path}: expected UTF-8 JSON, found invalid bytes ({err.reason})") from err
    check_json_depth(text, f"{what} {path}", error=error)
    try:
        return json.loads(text)
    except ValueError as err:
        raise error(f"cannot read {what} {path}: expected JSON ({err})") from err


def _size_of(stream: Any) -> int:
    try:
        return os.fstat(stream.fileno()).st_size
    except OSError:
        return 0
