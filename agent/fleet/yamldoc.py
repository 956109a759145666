"""YAML text → plain JSON-compatible data plus the line of every key, or a located problem.

PyYAML's composer keeps a start mark on every node; walking the node tree ourselves (instead of
``yaml.safe_load``) lets us record lines, refuse duplicate keys, and keep values JSON-compatible.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import yaml

from agent.fleet.errors import Problem

try:  # libyaml is much faster on big fleets; the pure-Python parser gives the same nodes.
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

Path = tuple[str | int, ...]
"""A location inside a document: mapping keys and sequence indexes from the root."""

_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_SCALAR_TAGS = {
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    _STR,
}
_TEXT_TAGS = {"tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:binary"}
_constructor = yaml.constructor.SafeConstructor()


@dataclasses.dataclass(frozen=True)
class Document:
    """One parsed YAML file: its data and the 1-based line of each path (root is line 1)."""

    file: str
    data: Any
    lines: dict[Path, int]

    def line_of(self, path: Path) -> int:
        """The line of ``path``, or of its nearest ancestor that has one."""
        while path not in self.lines and path:
            path = path[:-1]
        return self.lines.get(path, 1)


class _Invalid(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def parse_document(file: str, text: str) -> Document | Problem:
    """Parse one YAML document; an empty file is an empty mapping."""
    try:
        loader = _Loader(text)
        try:
            root = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else 1
        what = " ".join(part for part in (error.context, error.problem) if part)
        if "expected a single document" in what:
            what = "expected a single YAML document, found several ('---')"
        return Problem(file, line, f"YAML syntax error: {what}")
    except yaml.YAMLError as error:
        return Problem(file, 1, f"YAML error: {error}")
    if root is None:
        return Document(file, {}, {(): 1})
    lines: dict[Path, int] = {(): root.start_mark.line + 1}
    try:
        data = _to_data(root, (), lines)
    except _Invalid as invalid:
        return Problem(file, invalid.line, invalid.message)
    except RecursionError:
        return Problem(file, 1, "YAML nesting too deep")
    return Document(file, data, lines)


def _to_data(node: yaml.Node, path: Path, lines: dict[Path, int]) -> Any:
    if isinstance(node, yaml.CollectionNode) and node.tag not in (_MAP, _SEQ):
        raise _Invalid(node.start_mark.line + 1, f"unsupported YAML tag {node.tag!r}")
    if isinstance(node, yaml.MappingNode):
        return _mapping(node, path, lines)
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            items.append(_to_data(item, (*path, index), lines))
        return items
    return _scalar(node)


def _mapping(node: yaml.MappingNode, path: Path, lines: dict[Path, int]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    merged: list[yaml.Node] = []
    for key_node, value_node in node.value:
        line = key_node.start_mark.line + 1
        if key_node.tag == _MERGE:
            merged.extend(value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node])
            continue
        if not isinstance(key_node, yaml.ScalarNode):
            raise _Invalid(line, "a mapping key must be a plain scalar, not a mapping or list")
        key = str(key_node.value)
        if key in result:
            first = lines[(*path, key)]
            raise _Invalid(line, f"duplicate key {key!r} (first set on line {first})")
        lines[(*path, key)] = line
        result[key] = _to_data(value_node, (*path, key), lines)
    for source in merged:  # YAML merge keys ('<<: *anchor'): explicit keys win.
        if not isinstance(source, yaml.MappingNode):
            raise _Invalid(source.start_mark.line + 1, "a merge key ('<<') needs a mapping")
        for key, value in _mapping(source, path, {}).items():
            if key not in result:
                lines[(*path, key)] = source.start_mark.line + 1
                result[key] = value
    return result


def _scalar(node: yaml.Node) -> Any:
    line = node.start_mark.line + 1
    if node.tag in _TEXT_TAGS:
        return str(node.value)
    if node.tag not in _SCALAR_TAGS:
        raise _Invalid(line, f"unsupported YAML tag {node.tag!r}")
    value = _constructor.yaml_constructors[node.tag](_constructor, node)
    if isinstance(value, float) and not math.isfinite(value):
        raise _Invalid(line, f"{node.value!r} is not a finite number")
    return value
