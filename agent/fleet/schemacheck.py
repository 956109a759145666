"""JSON Schema validation of one parsed file, turned into ``file:line`` problems people can act on.

The schemas ship in ``agent/fleet/schemas/``; jsonschema's raw messages are rewritten so that an
unknown field suggests the close match and a type error says what was expected where.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping
from importlib import resources
from typing import Any, Literal

import jsonschema

from agent.fleet import fastschema
from agent.fleet.errors import Problem, did_you_mean, excerpt
from agent.fleet.yamldoc import Document, Path

Kind = Literal["Cluster", "ClusterGroup", "Bundle", "Fleet"]
SCHEMA_FILES: Mapping[Kind, str] = {
    "Cluster": "cluster.json",
    "ClusterGroup": "group.json",
    "Bundle": "bundle.json",
    "Fleet": "fleet.json",
}
_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}


def load_schema(name: str) -> dict[str, Any]:
    text = resources.files("agent.fleet").joinpath("schemas", name).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@functools.cache
def inlined_schema(kind: Kind) -> dict[str, Any]:
    """The kind's schema with every ``$ref`` replaced by its target.

    The shipped files use ``$ref`` into common.json (readable, and editors resolve them), but
    resolving references dominates validation time on a fleet of thousands of files.
    """
    inlined: dict[str, Any] = _inline_refs(
        load_schema(SCHEMA_FILES[kind]), load_schema("common.json")["$defs"]
    )
    jsonschema.Draft202012Validator.check_schema(inlined)
    return inlined


@functools.cache
def _fast_check(kind: Kind) -> fastschema.Check:
    return fastschema.compile_schema(inlined_schema(kind))


@functools.cache
def _validator(kind: Kind) -> jsonschema.protocols.Validator:
    return jsonschema.Draft202012Validator(inlined_schema(kind))


def _inline_refs(node: Any, common_defs: Mapping[str, Any]) -> Any:
    if isinstance(node, list):
        return [_inline_refs(item, common_defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        reference = str(node["$ref"])
        prefix = "common.json#/$defs/" if reference.startswith("common.json") else "#/$defs/"
        if not reference.startswith(prefix):
            raise ValueError(f"unsupported $ref {reference!r} in a fleet schema")
        target = common_defs[reference.removeprefix(prefix)]
        return _inline_refs({**target, **{k: v for k, v in node.items() if k != "$ref"}}, common_defs)
    return {key: _inline_refs(value, common_defs) for key, value in node.items() if key != "$defs"}


def check(document: Document, kind: Kind, limit: int = 20) -> list[Problem]:
    """Every schema violation in ``document`` as a problem on the line it concerns, at most
    ``limit`` of them and then one problem counting the others."""
    if _fast_check(kind)(document.data):
        return []
    problems: list[Problem] = []
    for error in _validator(kind).iter_errors(document.data):
        problems.extend(_problems(document, error))
    if len(problems) > limit:
        more = len(problems) - limit
        problems = [*problems[:limit], Problem(document.file, 0, f"and {more} more problems in this file")]
    return problems


def describe(path: Path) -> str:
    """``targets[0].clusterSelector`` for a path; ``the top level`` for the root."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "the top level"


def _problems(document: Document, error: jsonschema.ValidationError) -> Iterator[Problem]:
    path: Path = tuple(error.absolute_path)
    where = describe(path)
    validator = error.validator
    schema = error.schema if isinstance(error.schema, dict) else {}
    instance: Any = error.instance
    expected: Any = error.validator_value
    if "propertyNames" in error.relative_schema_path:
        key = str(instance)
        hint = schema.get("x-hint", error.message)
        yield Problem(
            document.file, document.line_of((*path, key)), f"invalid key {excerpt(key)} in {where}: {hint}"
        )
    elif validator == "additionalProperties":
        known = sorted(schema.get("properties", {}))
        for key in sorted(set(instance) - set(known)):
            message = f"unknown field {excerpt(key)} in {where}{did_you_mean(key[:100], known)}"
            yield Problem(document.file, document.line_of((*path, key)), message)
    elif validator == "required":
        missing = next(iter(sorted(set(expected) - set(instance))), "?")
        unknown = set(instance) - set(schema.get("properties", {}))
        if did_you_mean(missing, unknown):
            return  # the misspelled key is reported as an unknown field, with this name suggested
        yield Problem(document.file, document.line_of(path), f"missing required field {missing!r} in {where}")
    elif validator == "type":
        wanted = _TYPE_NAMES.get(str(expected), str(expected))
        got = " ".join(part for part in (_type_name(instance), _short(instance)) if part)
        yield Problem(document.file, document.line_of(path), f"{where}: expected {wanted}, got {got}")
    elif validator == "const":
        message = f"{where} must be {expected!r}, got {_short(instance) or _type_name(instance)}"
        yield Problem(document.file, document.line_of(path), message)
    elif validator == "enum":
        choices = [str(choice) for choice in expected]
        hint = did_you_mean(str(instance), choices)
        message = (
            f"{where}: {_short(instance) or _type_name(instance)} is not one of {', '.join(choices)}{hint}"
        )
        yield Problem(document.file, document.line_of(path), message)
    elif validator == "pattern" and "x-hint" in schema:
        message = f"{where}: {_short(instance)} is not valid: {schema['x-hint']}"
        yield Problem(document.file, document.line_of(path), message)
    else:
        yield Problem(
            document.file, document.line_of(path), f"{where}: {excerpt(error.message, 160, quote=False)}"
        )


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    return {dict: "mapping", list: "list", str: "string", int: "integer", float: "number"}.get(
        type(value), "null"
    )


def _short(value: Any) -> str:
    if isinstance(value, dict | list):
        return ""
    return excerpt(value) if isinstance(value, str) else excerpt(repr(value), quote=False)
