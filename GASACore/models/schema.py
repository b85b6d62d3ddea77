"""A small JSON Schema validator: the subset the model catalogue's schema uses (torch-free, no dependencies).

One validator for GASACore and the 3D Slicer module (which runs in Slicer's own Python, where installing
``jsonschema`` is not worth its weight). Supported keywords: ``type`` (a name or a list of names),
``const``, ``enum``, ``minLength``, ``maxLength``, ``pattern``, ``minimum``, ``maximum``, ``required``,
``properties``, ``additionalProperties`` (``false`` or a schema), ``items``, ``minItems``, ``oneOf``,
``anyOf`` and ``$ref`` to ``#/$defs/NAME``. Unknown keywords (``title``, ``description``...) are ignored.

Examples:
    >>> schema = {"type": "object", "required": ["id"], "properties": {"id": {"type": "string", "pattern": "^[a-z]+$"}}}
    >>> validate({"id": "liver"}, schema)
    []
    >>> validate({"id": "Liver"}, schema)
    ["$.id: expected to match '^[a-z]+$', got 'Liver'"]
    >>> validate({}, schema)
    ["$: missing 'id'"]
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["validate"]

_TYPES: Mapping[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def _type_problem(data: Any, expected: str | list[str], where: str) -> str | None:
    names = [expected] if isinstance(expected, str) else list(expected)
    for name in names:
        if name not in _TYPES:
            raise ValueError(f"schema type must be one of {sorted(_TYPES)}, got {name!r}")
        if isinstance(data, _TYPES[name]) and (not isinstance(data, bool) or name == "boolean"):
            return None
    shown = names[0] if len(names) == 1 else " or ".join(names)
    return f"{where}: expected {shown}, got {'null' if data is None else type(data).__name__}"


def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    reference = schema.get("$ref")
    if reference is None:
        return schema
    prefix = "#/$defs/"
    if (
        not isinstance(reference, str)
        or not reference.startswith(prefix)
        or reference[len(prefix) :] not in root.get("$defs", {})
    ):
        raise ValueError(f"schema $ref must name an entry of $defs as '#/$defs/NAME', got {reference!r}")
    return root["$defs"][reference[len(prefix) :]]


def _scalar_problems(data: Any, schema: Mapping[str, Any], where: str) -> list[str]:
    problems: list[str] = []
    if "const" in schema and data != schema["const"]:
        problems.append(f"{where}: expected {schema['const']!r}, got {data!r}")
    if "enum" in schema and data not in schema["enum"]:
        problems.append(f"{where}: expected one of {schema['enum']}, got {data!r}")
    if isinstance(data, str):
        if len(data) < schema.get("minLength", 0):
            problems.append(f"{where}: expected at least {schema['minLength']} characters, got {data!r}")
        if "maxLength" in schema and len(data) > schema["maxLength"]:
            problems.append(f"{where}: expected at most {schema['maxLength']} characters, got {len(data)}")
        if "pattern" in schema and not re.search(schema["pattern"], data):
            problems.append(f"{where}: expected to match {schema['pattern']!r}, got {data!r}")
    if isinstance(data, (int, float)) and not isinstance(data, bool):
        if "minimum" in schema and data < schema["minimum"]:
            problems.append(f"{where}: expected >= {schema['minimum']}, got {data!r}")
        if "maximum" in schema and data > schema["maximum"]:
            problems.append(f"{where}: expected <= {schema['maximum']}, got {data!r}")
    return problems


def _container_problems(data: Any, schema: Mapping[str, Any], where: str, root: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    if isinstance(data, dict):
        problems += [f"{where}: missing {key!r}" for key in schema.get("required", []) if key not in data]
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, value in data.items():
            if key in properties:
                problems += _validate(value, properties[key], f"{where}.{key}", root)
            elif extra is False:
                problems.append(f"{where}: unexpected key {key!r}")
            elif isinstance(extra, Mapping):
                problems += _validate(value, extra, f"{where}.{key}", root)
    if isinstance(data, list):
        if len(data) < schema.get("minItems", 0):
            problems.append(f"{where}: expected at least {schema['minItems']} items, got {len(data)}")
        if "items" in schema:
            for index, item in enumerate(data):
                problems += _validate(item, schema["items"], f"{where}[{index}]", root)
    return problems


def _alternatives(data: Any, schema: Mapping[str, Any], where: str, root: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    for keyword, wanted in (("oneOf", "exactly one"), ("anyOf", "at least one")):
        if keyword not in schema:
            continue
        results = [_validate(data, option, where, root) for option in schema[keyword]]
        fitting = sum(1 for result in results if not result)
        if fitting == 0:
            closest = min(results, key=len)  # the alternative that came closest says most
            problems += closest
        elif keyword == "oneOf" and fitting > 1:
            problems.append(f"{where}: expected to fit {wanted} of the {len(results)} alternatives, fits {fitting}")
    return problems


def _validate(data: Any, schema: Mapping[str, Any], where: str, root: Mapping[str, Any]) -> list[str]:
    schema = _resolve(schema, root)
    if "type" in schema:
        problem = _type_problem(data, schema["type"], where)
        if problem is not None:
            return [problem]
    problems = _scalar_problems(data, schema, where)
    problems += _container_problems(data, schema, where, root)
    return problems + _alternatives(data, schema, where, root)


def validate(data: Any, schema: Mapping[str, Any], where: str = "$") -> list[str]:
    """Check ``data`` against ``schema``; one message per problem, each starting with the JSON path.

    Args:
        data: parsed JSON.
        schema: a JSON Schema using the keywords listed in the module docstring; ``$ref`` resolves
            against this schema's ``$defs``.
        where: the path printed for ``data`` itself.

    Returns:
        The problems, e.g. ``["$.models[0].sha256: expected to match '^[0-9a-f]{64}$', got 'xyz'"]``; empty
        when ``data`` fits.

    Raises:
        ValueError: the schema itself uses an unknown type name or an unresolvable ``$ref``.
    """
    return _validate(data, schema, where, schema)
