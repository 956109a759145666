"""YAML text → plain JSON-compatible data plus the line of every key, or a located problem.

The document is built from PyYAML's *event* stream rather than from its node tree, one event at a
time and without recursion, so that the budget in :mod:`agent.fleet.limits` is enforced while
reading: an alias adds the size of what it points at to a running count and is refused once the
document would pass ``max_nodes`` (a "billion laughs" file stops after a few thousand events,
having allocated nothing it would expand), nesting is refused at the line where it passes
``max_depth``, and an over-long integer is refused before it is converted. Aliased data is shared,
not copied (the merge in :mod:`agent.fleet.merge` copies what it keeps).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import yaml

from agent.fleet.errors import Problem, excerpt
from agent.fleet.limits import DEFAULT, Limits

try:  # libyaml is much faster on big fleets; the pure-Python parser gives the same events.
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

Path = tuple[str | int, ...]
"""A location inside a document: mapping keys and sequence indexes from the root."""

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_MERGE = "tag:yaml.org,2002:merge"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_SCALAR_TAGS = {"tag:yaml.org,2002:null", "tag:yaml.org,2002:bool", _INT, "tag:yaml.org,2002:float", _STR}
_TEXT_TAGS = {"tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:binary"}
_constructor = yaml.constructor.SafeConstructor()
_NO_KEY = object()
_PLAIN: dict[str, Any] = {}
"""Plain scalars already resolved (``eu-west``, ``true``, ``3``): the same few recur in every file."""
_PLAIN_CACHED = 20_000
_MERGE_KEY = object()


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


@dataclasses.dataclass(frozen=True)
class _Anchored:
    value: Any
    nodes: int
    height: int
    is_scalar: bool


class _Frame:
    """A mapping or list being built."""

    __slots__ = ("anchor", "container", "height", "key", "key_line", "line", "merges", "path", "start")

    def __init__(self, container: dict[str, Any] | list[Any], path: Path, line: int, anchor: str | None,
                 start: int) -> None:  # fmt: skip
        self.container = container
        self.path = path
        self.line = line
        self.anchor = anchor
        self.start = start  # the document's node count when this collection began
        self.height = 1
        self.key: object = _NO_KEY
        self.key_line = 0
        self.merges: list[tuple[Any, int]] = []


def parse_bytes(file: str, content: bytes, limits: Limits = DEFAULT) -> Document | Problem:
    """Parse a file's bytes, which must be UTF-8 (a leading byte order mark is allowed)."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        return Problem(file, 0, f"cannot read file: not UTF-8 text (invalid byte at offset {error.start})")
    return parse_document(file, text, limits)


def parse_document(file: str, text: str, limits: Limits = DEFAULT) -> Document | Problem:
    """Parse one YAML document; an empty file is an empty mapping."""
    builder = _Builder(limits)
    try:
        loader = _Loader(text)
        try:
            data = builder.build(loader)
        finally:
            loader.dispose()
    except _Invalid as invalid:
        return Problem(file, invalid.line, invalid.message)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else 1
        what = " ".join(part for part in (error.context, error.problem) if part)
        return Problem(file, line, f"YAML syntax error: {excerpt(what, 200, quote=False)}")
    except yaml.YAMLError as error:
        return Problem(file, 1, f"YAML error: {excerpt(str(error), 200, quote=False)}")
    return Document(file, data, builder.lines)


class _Builder:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.lines: dict[Path, int] = {(): 1}
        self.anchors: dict[str, _Anchored] = {}
        self.stack: list[_Frame] = []
        self.nodes = 0
        self.aliases = 0
        self.root: Any = {}
        self.loader: Any = None

    def build(self, loader: Any) -> Any:
        self.loader = loader
        documents = 0
        scalar, start, end, alias = self._scalar, self._start, self._end, self._alias
        while loader.check_event():
            event = loader.get_event()
            kind = type(event)
            if kind is yaml.ScalarEvent:
                scalar(event)
            elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
                start(event)
            elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
                end()
            elif kind is yaml.AliasEvent:
                alias(event)
            elif kind is yaml.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise _Invalid(_line(event), "expected a single YAML document, found several ('---')")
        return self.root

    def _count(self, line: int, nodes: int = 1) -> None:
        self.nodes += nodes
        if self.nodes > self.limits.max_nodes:
            raise _Invalid(
                line,
                f"the document exceeds the limit of {self.limits.max_nodes} values "
                "(counting each alias as expanded)",
            )

    def _child_path(self, line: int) -> Path:
        """The path of the value about to be added, refusing collections and aliases as keys."""
        if not self.stack:
            return ()
        top = self.stack[-1]
        if isinstance(top.container, list):
            return (*top.path, len(top.container))
        if top.key is _NO_KEY:
            raise _Invalid(line, "a mapping key must be a plain scalar, not a mapping, list or alias")
        return (*top.path, "<<" if top.key is _MERGE_KEY else str(top.key))

    def _add(self, value: Any, line: int, height: int) -> None:
        if not self.stack:
            self.root = value
            self.lines[()] = line
            return
        top = self.stack[-1]
        top.height = max(top.height, height + 1)
        if isinstance(top.container, list):
            self.lines[(*top.path, len(top.container))] = line
            top.container.append(value)
            return
        if top.key is _MERGE_KEY:
            top.merges.append((value, line))
        else:
            key = str(top.key)
            self.lines[(*top.path, key)] = top.key_line
            top.container[key] = value
        top.key = _NO_KEY

    def _scalar(self, event: yaml.ScalarEvent) -> None:
        """The hot path (most events are scalars): a key, or a value stored straight into its parent."""
        mark: Any = event.start_mark
        line = mark.line + 1
        self.nodes += 1
        if self.nodes > self.limits.max_nodes:
            self._count(line, 0)
        stack = self.stack
        top = stack[-1] if stack else None
        container: Any = top.container if top is not None else None
        if top is not None and type(container) is dict and top.key is _NO_KEY:
            self._key(top, event, line)
            return
        value = self._scalar_value(event, line)
        if event.anchor is not None:
            self.anchors[event.anchor] = _Anchored(value, 1, 0, True)
        if top is None or top.key is _MERGE_KEY:
            self._add(value, line, 0)
        elif type(container) is dict:
            key = str(top.key)
            self.lines[(*top.path, key)] = top.key_line
            container[key] = value
            top.key = _NO_KEY
        else:
            self.lines[(*top.path, len(container))] = line
            container.append(value)

    def _key(self, top: _Frame, event: yaml.ScalarEvent, line: int) -> None:
        key = event.value
        if key == "<<" and event.tag is None and event.implicit[0]:
            top.key, top.key_line = _MERGE_KEY, line
            return
        if key in top.container:
            first = self.lines[(*top.path, key)]
            raise _Invalid(line, f"duplicate key {excerpt(key)} (first set on line {first})")
        top.key, top.key_line = key, line

    def _scalar_value(self, event: yaml.ScalarEvent, line: int) -> Any:
        tag = event.tag
        if tag is None:
            if not event.implicit[0]:  # quoted, literal or folded: a string
                return event.value
            cached = _PLAIN.get(event.value, _NO_KEY)
            if cached is not _NO_KEY and not (
                type(cached) is int and len(event.value) > self.limits.max_int_digits
            ):
                return cached
        if tag is None or tag == "!":
            tag = self.loader.resolve(yaml.ScalarNode, event.value, event.implicit)
        if tag in _TEXT_TAGS:
            return str(event.value)
        if tag not in _SCALAR_TAGS:
            raise _Invalid(line, f"unsupported YAML tag {excerpt(tag)}")
        if tag == _INT and len(event.value) > self.limits.max_int_digits:
            raise _Invalid(
                line,
                f"an integer of {len(event.value)} digits exceeds the limit of {self.limits.max_int_digits}",
            )
        node = yaml.ScalarNode(tag, event.value, None, None, event.style)
        try:
            value = _constructor.yaml_constructors[tag](_constructor, node)
        except (ValueError, TypeError, ArithmeticError, yaml.YAMLError):  # e.g. '!!int 1e9', '!!float 0x1'
            raise _Invalid(line, f"{excerpt(event.value)} is not a valid {tag.rsplit(':', 1)[-1]}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise _Invalid(line, f"{excerpt(event.value)} is not a finite number")
        if event.tag is None and event.implicit[0] and len(event.value) <= 64:
            if len(_PLAIN) >= _PLAIN_CACHED:
                _PLAIN.clear()
            _PLAIN[event.value] = value
        return value

    def _start(self, event: yaml.MappingStartEvent | yaml.SequenceStartEvent) -> None:
        line = _line(event)
        is_map = isinstance(event, yaml.MappingStartEvent)
        tag = event.tag
        if tag is not None and tag != "!" and tag != (_MAP if is_map else _SEQ):
            raise _Invalid(line, f"unsupported YAML tag {excerpt(tag)}")
        path = self._child_path(line)
        if len(self.stack) >= self.limits.max_depth:
            raise _Invalid(line, f"nesting exceeds the limit of {self.limits.max_depth} levels")
        self._count(line)
        container: dict[str, Any] | list[Any] = {} if is_map else []
        self.stack.append(_Frame(container, path, line, event.anchor, self.nodes))

    def _end(self) -> None:
        frame = self.stack.pop()
        value = frame.container
        if isinstance(value, dict):
            self._merge(frame, value)
        if frame.anchor is not None:
            nodes = self.nodes - frame.start + 1
            self.anchors[frame.anchor] = _Anchored(value, nodes, frame.height, False)
        self._add(value, frame.line, frame.height)

    def _merge(self, frame: _Frame, result: dict[str, Any]) -> None:
        """YAML merge keys ('<<: *anchor' or a list of them): explicit keys win, then earlier sources."""
        for merged, line in frame.merges:
            for source in merged if isinstance(merged, list) else [merged]:
                if not isinstance(source, dict):
                    raise _Invalid(line, "a merge key ('<<') needs a mapping or a list of mappings")
                for key, value in source.items():
                    if key not in result:
                        self.lines[(*frame.path, key)] = line
                        result[key] = value

    def _alias(self, event: yaml.AliasEvent) -> None:
        line = _line(event)
        self._child_path(line)
        name = str(event.anchor)
        anchored = self.anchors.get(name)
        if anchored is None:
            raise _Invalid(line, f"alias *{excerpt(name, quote=False)} has no complete anchor before it")
        self.aliases += 1
        if self.aliases > self.limits.max_aliases:
            raise _Invalid(line, f"the document exceeds the limit of {self.limits.max_aliases} aliases")
        if len(self.stack) + anchored.height > self.limits.max_depth:
            raise _Invalid(
                line, f"nesting exceeds the limit of {self.limits.max_depth} levels (through an alias)"
            )
        self._count(line, anchored.nodes)
        self._add(anchored.value, line, anchored.height)


def _line(event: yaml.Event) -> int:
    mark: Any = event.start_mark
    return int(mark.line) + 1 if mark is not None else 1
