"""Has a live object drifted from what its release declares?  Pure rules over plain dicts.

``compare(desired, live)`` walks only the fields the release's manifest sets, so everything the API
server or a controller adds (defaults, ``status``, ``resourceVersion``, ``managedFields``, injected
annotations, extra sidecars) never counts as drift.  Of ``metadata`` only the labels and
annotations the manifest sets are compared.  Lists of named items (containers, env, ports, volumes,
...) are matched by ``name``; other lists element by element.  Quantities compare by value
("500m" == 0.5, "1Gi" == "1024Mi"), and an int matches its string form (ports, IntOrString).
A desired empty value (``null``, ``""``, ``{}``, ``[]``) or a zero/false the API server omitted is
not drift.  ``spec.replicas`` is skipped when an HPA owns it (``ignore_replicas``).

Secret values are never put in a message: a changed Secret key says only that it differs.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Final

ObjectKey = tuple[str, str, str, str]  # apiVersion, kind, namespace, name: the same shape as agent.kube's

MAX_DIFFERENCES_IN_MESSAGE: Final = 3
_MAX_VALUE_CHARS: Final = 60
_SKIPPED_TOP_LEVEL: Final = frozenset({"apiVersion", "kind", "metadata", "status"})
_COMPARED_METADATA: Final = ("labels", "annotations")
_QUANTITY_KEYS: Final = frozenset({"cpu", "memory", "storage", "ephemeral-storage", "sizeLimit"})
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")
_SUFFIXES: Final[Mapping[str, Decimal]] = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}


class _Absent:
    def __repr__(self) -> str:
        return "not set"


ABSENT: Final = _Absent()


@dataclass(frozen=True)
class Difference:
    """One field whose live value is not what the release says (``live`` may be ``ABSENT``)."""

    path: str
    live: Any
    desired: Any
    redacted: bool = False

    def describe(self) -> str:
        if self.live is ABSENT and isinstance(self.desired, _MissingItem):
            return f"{self.path} is missing"
        if self.redacted:
            return (
                f"{self.path} differs from the release"
                if self.live is not ABSENT
                else f"{self.path} is not set"
            )
        return f"{self.path} is {_show(self.live)}, release says {_show(self.desired)}"


@dataclass(frozen=True)
class _MissingItem:
    """Marks a whole named list item (a container, an env var...) absent from the live object."""


@dataclass(frozen=True)
class _Count:
    """A list's length, shown when lists of objects differ in length."""

    items: int

    def __str__(self) -> str:
        return f"{self.items} items"


@dataclass(frozen=True)
class Drift:
    key: ObjectKey
    missing: bool
    differences: tuple[Difference, ...] = ()

    @property
    def kind(self) -> str:
        return self.key[1]

    @property
    def namespace(self) -> str:
        return self.key[2]

    @property
    def name(self) -> str:
        return self.key[3]

    @property
    def message(self) -> str:
        """``Deployment default/web: spec.replicas is 5, release says 2`` (at most a few differences)."""
        where = f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"
        return f"{where}: {self.detail}"

    @property
    def detail(self) -> str:
        """The message without the object's name: ``spec.replicas is 5, release says 2``."""
        if self.missing:
            return "missing"
        shown = [d.describe() for d in self.differences[:MAX_DIFFERENCES_IN_MESSAGE]]
        hidden = len(self.differences) - len(shown)
        if hidden:
            shown.append(f"and {hidden} more")
        return "; ".join(shown)


def key_of(obj: Mapping[str, Any]) -> ObjectKey:
    metadata = obj.get("metadata") or {}
    return (
        str(obj.get("apiVersion", "")),
        str(obj.get("kind", "")),
        str(metadata.get("namespace") or ""),
        str(metadata.get("name", "")),
    )


def compare(
    desired: Mapping[str, Any], live: Mapping[str, Any] | None, *, ignore_replicas: bool = False
) -> Drift | None:
    """How ``live`` differs from ``desired``, or None when it does not (in the fields desired sets)."""
    key = key_of(desired)
    if live is None:
        return Drift(key=key, missing=True)
    secret = desired.get("kind") == "Secret"
    wanted = _secret_as_data(desired) if secret else desired
    differences: list[Difference] = []
    desired_meta = wanted.get("metadata") or {}
    live_meta = live.get("metadata") or {}
    for field in _COMPARED_METADATA:
        differences.extend(
            _walk(desired_meta.get(field), live_meta.get(field, ABSENT), f"metadata.{field}", redact=False)
        )
    for field, value in wanted.items():
        if field in _SKIPPED_TOP_LEVEL:
            continue
        if ignore_replicas and field == "spec" and isinstance(value, Mapping):
            value = {k: v for k, v in value.items() if k != "replicas"}
        differences.extend(
            _walk(value, live.get(field, ABSENT), field, redact=secret and field in ("data", "stringData"))
        )
    return Drift(key=key, missing=False, differences=tuple(differences)) if differences else None


# ------------------------------------------------------------------------------------------- walking


def _walk(desired: Any, live: Any, path: str, *, redact: bool) -> Iterator[Difference]:
    if _is_empty(desired):
        return
    if live is ABSENT or live is None:
        if desired is False or (isinstance(desired, int | float) and desired == 0):
            return  # omitempty: the API server drops zero values
        yield Difference(path, ABSENT, desired, redact)
        return
    if isinstance(desired, Mapping):
        if not isinstance(live, Mapping):
            yield Difference(path, live, desired, redact)
            return
        for field, value in desired.items():
            yield from _walk(value, live.get(field, ABSENT), _join(path, field), redact=redact)
        return
    if isinstance(desired, Sequence) and not isinstance(desired, str):
        if not isinstance(live, Sequence) or isinstance(live, str):
            yield Difference(path, live, desired, redact)
            return
        yield from _walk_list(desired, live, path, redact=redact)
        return
    if not _scalars_equal(desired, live, path):
        yield Difference(path, live, desired, redact)


def _walk_list(
    desired: Sequence[Any], live: Sequence[Any], path: str, *, redact: bool
) -> Iterator[Difference]:
    if _named(desired) and _named(live):
        by_name = {item["name"]: item for item in live}
        for item in desired:
            item_path = f"{path}[{item['name']}]"
            if item["name"] not in by_name:
                yield Difference(item_path, ABSENT, _MissingItem(), redact)
            else:
                yield from _walk(item, by_name[item["name"]], item_path, redact=redact)
        return
    if len(desired) != len(live):
        if all(not isinstance(x, Mapping | list) for x in [*desired, *live]):
            yield Difference(path, list(live), list(desired), redact)
        else:
            yield Difference(path, _Count(len(live)), _Count(len(desired)), redact)
        return
    for index, (want, have) in enumerate(zip(desired, live, strict=True)):
        yield from _walk(want, have, f"{path}[{index}]", redact=redact)


def _named(items: Sequence[Any]) -> bool:
    """Every item a mapping with a unique ``name`` (volumeMounts may repeat a name: those go by index)."""
    names = [i.get("name") for i in items if isinstance(i, Mapping)]
    return (
        bool(items)
        and len(names) == len(items)
        and all(isinstance(n, str) for n in names)
        and (len(set(names)) == len(names))
    )


def _join(path: str, field: str) -> str:
    return f"{path}.{field}" if re.fullmatch(r"[A-Za-z0-9_-]+", field) else f'{path}["{field}"]'


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str | Mapping | list | tuple) and len(value) == 0)


# --------------------------------------------------------------------------------------- scalars


def _scalars_equal(desired: Any, live: Any, path: str) -> bool:
    if type(desired) is type(live) or (_is_number(desired) and _is_number(live)):
        if desired == live:
            return True
    elif isinstance(desired, bool) or isinstance(live, bool):
        return False
    elif {type(desired), type(live)} <= {int, str} and str(desired) == str(live):
        return True  # a port or IntOrString written as "8080" in one place and 8080 in the other
    if _is_quantity_path(path):
        left, right = _quantity(desired), _quantity(live)
        return left is not None and left == right
    return False


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_quantity_path(path: str) -> bool:
    last = re.split(r"[.\[]", path)[-1].strip('"]')
    return last in _QUANTITY_KEYS or ".resources." in path or ".capacity." in path or ".hard." in path


def _quantity(value: Any) -> Decimal | None:
    """A Kubernetes quantity ("500m", "1Gi", "1e3", 2) as a number, or None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return Decimal(str(value))
    if not isinstance(value, str):
        return None
    match = _QUANTITY.match(value.strip())
    if not match or match.group(2) not in _SUFFIXES:
        return None
    try:
        return Decimal(match.group(1)) * _SUFFIXES[match.group(2)]
    except InvalidOperation:
        return None


def _show(value: Any) -> str:
    if value is ABSENT:
        return "not set"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= _MAX_VALUE_CHARS else text[: _MAX_VALUE_CHARS - 3] + "..."


def _secret_as_data(secret: Mapping[str, Any]) -> Mapping[str, Any]:
    """The API server stores a Secret's ``stringData`` base64-encoded under ``data``: compare it there."""
    string_data = secret.get("stringData")
    if not isinstance(string_data, Mapping):
        return secret
    data = dict(secret.get("data") or {})
    for name, value in string_data.items():
        data[name] = base64.b64encode(str(value).encode()).decode()
    return {**{k: v for k, v in secret.items() if k != "stringData"}, "data": data}
