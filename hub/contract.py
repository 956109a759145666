"""The wire contract between agent and hub: the status report and its versions.

Standard library only: the agent imports this module without the hub's web stack.
The agent builds a :class:`StatusReport` and sends ``to_json()``; the hub calls
:func:`parse_report`, which validates, bounds every string and list, and upgrades the previous
contract version (1) to the current one (2).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

CURRENT_VERSION = 2
SUPPORTED_VERSIONS = (1, 2)

# Severity order, worst first: a cluster's health is the worst state of its bundles.
BUNDLE_STATES = ("Failed", "Degraded", "Modified", "InProgress", "Pending", "Paused", "Ready")
_SEVERITY = {state: rank for rank, state in enumerate(BUNDLE_STATES)}

MAX_NAME = 253  # Kubernetes object names / cluster names
MAX_SHORT = 512  # commits, digests, versions, urls, label values
MAX_MESSAGE = 4096  # last error verbatim, bounded
MAX_LABELS = 64
MAX_BUNDLES = 500
MAX_RESOURCES = 10  # non_ready / modified resources listed per bundle
MAX_PROBLEMS = 100
MAX_INTERVAL_SECONDS = 7 * 24 * 3600

_CLUSTER_NAME = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,251}[a-z0-9])?$")


class ContractError(ValueError):
    """A report does not follow the contract; ``field_path`` names the offending field."""

    def __init__(self, field_path: str, message: str) -> None:
        super().__init__(f"{field_path}: {message}" if field_path else message)
        self.field_path = field_path
        self.message = message


def worst_state(states: Iterable[str]) -> str:
    """The worst of ``states`` in severity order; ``Ready`` when there are none."""
    return min(states, key=lambda state: _SEVERITY.get(state, 0), default="Ready")


def cluster_health(bundle_states: Iterable[str], source_error: str | None) -> str:
    """Health of a cluster: its worst bundle; Failed if the source/plan failed and nothing is known."""
    states = list(bundle_states)
    if not states:
        return "Failed" if source_error else "Ready"
    return worst_state(states)


def utc_now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Problem:
    """A fleet repo validation problem."""

    file: str
    line: int | None
    message: str


@dataclass(frozen=True)
class ResourceStatus:
    kind: str
    namespace: str
    name: str
    status: str
    message: str = ""


@dataclass(frozen=True)
class SourceStatus:
    url: str
    ref: str
    desired_commit: str | None = None
    applied_commit: str | None = None
    error: str | None = None
    errors: list[Problem] = field(default_factory=list)


@dataclass(frozen=True)
class BundleStatus:
    bundle: str
    release: str
    namespace: str
    state: str
    desired_commit: str | None = None
    applied_commit: str | None = None
    chart: str = ""
    chart_version: str = ""
    digest: str = ""
    values_digest: str = ""
    helm_revision: int | None = None
    resources_ready: int = 0
    resources_total: int = 0
    non_ready: list[ResourceStatus] = field(default_factory=list)
    modified: list[ResourceStatus] = field(default_factory=list)
    message: str = ""
    last_transition: str = ""


@dataclass(frozen=True)
class StatusReport:
    version: int
    cluster: str
    sequence: int
    generated_at: str
    agent_version: str
    interval_seconds: int
    labels: dict[str, str]
    source: SourceStatus
    bundles: list[BundleStatus]

    @property
    def health(self) -> str:
        return cluster_health((b.state for b in self.bundles), self.source.error)

    def to_json_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_json_dict(), separators=(",", ":"), ensure_ascii=False)


# --- parsing -------------------------------------------------------------------------------------

T = TypeVar("T")


def _get(obj: Mapping[str, Any], key: str, path: str) -> Any:
    if key not in obj:
        raise ContractError(_join(path, key), "is required")
    return obj[key]


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ContractError(path, "must be an object")
    return value


def _str(value: Any, path: str, limit: int, *, allow_empty: bool = True) -> str:
    if not isinstance(value, str):
        raise ContractError(path, "must be a string")
    if len(value) > limit:
        raise ContractError(path, f"must be at most {limit} characters (got {len(value)})")
    if not allow_empty and not value:
        raise ContractError(path, "must not be empty")
    return value


def _opt_str(value: Any, path: str, limit: int) -> str | None:
    return None if value is None else _str(value, path, limit)


def _int(value: Any, path: str, minimum: int = 0, maximum: int = 2**63 - 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ContractError(path, "must be an integer")
    if not minimum <= value <= maximum:
        raise ContractError(path, f"must be between {minimum} and {maximum}")
    return value


def _opt_int(value: Any, path: str) -> int | None:
    return None if value is None else _int(value, path)


def _timestamp(value: Any, path: str, *, allow_empty: bool = False) -> str:
    text = _str(value, path, 64)
    if allow_empty and not text:
        return text
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ContractError(path, "must be an RFC 3339 timestamp") from None
    if parsed.tzinfo is None:
        raise ContractError(path, "must carry a time zone (RFC 3339)")
    return text


def _list(value: Any, path: str, limit: int, item: Callable[[Any, str], T]) -> list[T]:
    if not isinstance(value, list):
        raise ContractError(path, "must be a list")
    if len(value) > limit:
        raise ContractError(path, f"must have at most {limit} items (got {len(value)})")
    return [item(entry, f"{path}[{index}]") for index, entry in enumerate(value)]


def _problem(raw: Any, path: str) -> Problem:
    obj = _mapping(raw, path)
    line = obj.get("line")
    return Problem(
        file=_str(_get(obj, "file", path), _join(path, "file"), MAX_SHORT),
        line=None if line is None else _int(line, _join(path, "line")),
        message=_str(_get(obj, "message", path), _join(path, "message"), MAX_MESSAGE),
    )


def _resource(raw: Any, path: str) -> ResourceStatus:
    obj = _mapping(raw, path)
    return ResourceStatus(
        kind=_str(_get(obj, "kind", path), _join(path, "kind"), MAX_NAME),
        namespace=_str(obj.get("namespace", ""), _join(path, "namespace"), MAX_NAME),
        name=_str(_get(obj, "name", path), _join(path, "name"), MAX_NAME),
        status=_str(_get(obj, "status", path), _join(path, "status"), MAX_NAME),
        message=_str(obj.get("message", ""), _join(path, "message"), MAX_MESSAGE),
    )


def _bundle(raw: Any, path: str) -> BundleStatus:
    obj = _mapping(raw, path)
    state = _str(_get(obj, "state", path), _join(path, "state"), 32)
    if state not in _SEVERITY:
        raise ContractError(_join(path, "state"), f"must be one of {', '.join(BUNDLE_STATES)}")
    resources = _list(obj.get("non_ready", []), _join(path, "non_ready"), MAX_RESOURCES, _resource)
    modified = _list(obj.get("modified", []), _join(path, "modified"), MAX_RESOURCES, _resource)
    return BundleStatus(
        bundle=_str(_get(obj, "bundle", path), _join(path, "bundle"), MAX_NAME, allow_empty=False),
        release=_str(obj.get("release", ""), _join(path, "release"), MAX_NAME),
        namespace=_str(obj.get("namespace", ""), _join(path, "namespace"), MAX_NAME),
        state=state,
        desired_commit=_opt_str(obj.get("desired_commit"), _join(path, "desired_commit"), MAX_SHORT),
        applied_commit=_opt_str(obj.get("applied_commit"), _join(path, "applied_commit"), MAX_SHORT),
        chart=_str(obj.get("chart", ""), _join(path, "chart"), MAX_SHORT),
        chart_version=_str(obj.get("chart_version", ""), _join(path, "chart_version"), MAX_SHORT),
        digest=_str(obj.get("digest", ""), _join(path, "digest"), MAX_SHORT),
        values_digest=_str(obj.get("values_digest", ""), _join(path, "values_digest"), MAX_SHORT),
        helm_revision=_opt_int(obj.get("helm_revision"), _join(path, "helm_revision")),
        resources_ready=_int(obj.get("resources_ready", 0), _join(path, "resources_ready")),
        resources_total=_int(obj.get("resources_total", 0), _join(path, "resources_total")),
        non_ready=resources,
        modified=modified,
        message=_str(obj.get("message", ""), _join(path, "message"), MAX_MESSAGE),
        last_transition=_timestamp(
            obj.get("last_transition", ""), _join(path, "last_transition"), allow_empty=True
        ),
    )


def _source(raw: Any, path: str) -> SourceStatus:
    obj = _mapping(raw, path)
    return SourceStatus(
        url=_str(_get(obj, "url", path), _join(path, "url"), MAX_SHORT),
        ref=_str(_get(obj, "ref", path), _join(path, "ref"), MAX_SHORT),
        desired_commit=_opt_str(obj.get("desired_commit"), _join(path, "desired_commit"), MAX_SHORT),
        applied_commit=_opt_str(obj.get("applied_commit"), _join(path, "applied_commit"), MAX_SHORT),
        error=_opt_str(obj.get("error"), _join(path, "error"), MAX_MESSAGE),
        errors=_list(obj.get("errors", []), _join(path, "errors"), MAX_PROBLEMS, _problem),
    )


def _labels(raw: Any, path: str) -> dict[str, str]:
    obj = _mapping(raw, path)
    if len(obj) > MAX_LABELS:
        raise ContractError(path, f"must have at most {MAX_LABELS} entries (got {len(obj)})")
    labels: dict[str, str] = {}
    for key, value in obj.items():
        _str(key, f"{path} key", MAX_NAME, allow_empty=False)
        labels[key] = _str(value, f"{path}.{key}", MAX_SHORT)
    return labels


def check_cluster_name(raw: Any, path: str = "cluster") -> str:
    """The cluster name if it is a valid DNS-style name, else a ContractError."""
    name = _str(raw, path, MAX_NAME, allow_empty=False)
    if not _CLUSTER_NAME.match(name):
        raise ContractError(path, "must be a DNS-style name (lowercase letters, digits, '.', '-', '_')")
    return name


def _upgrade_v1(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Version 1 had no per-problem source errors and no per-resource lists; default them."""
    upgraded = dict(obj)
    source = obj.get("source")
    if isinstance(source, Mapping):
        upgraded["source"] = {**source, "errors": []}
    bundles = obj.get("bundles")
    if isinstance(bundles, list):
        upgraded["bundles"] = [
            {**bundle, "non_ready": [], "modified": []} if isinstance(bundle, Mapping) else bundle
            for bundle in bundles
        ]
    return upgraded


def parse_report(raw: Mapping[str, Any] | bytes | str) -> StatusReport:
    """Validate a report (JSON bytes/text or a decoded mapping) and return it at the current version."""
    if isinstance(raw, bytes | str):
        try:
            raw = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise ContractError("", f"body is not valid JSON: {exc}") from None
    obj = _mapping(raw, "report")
    version = _int(_get(obj, "version", ""), "version", 0, 1000)
    if version not in SUPPORTED_VERSIONS:
        supported = ", ".join(str(v) for v in SUPPORTED_VERSIONS)
        raise ContractError("version", f"unsupported version {version} (supported: {supported})")
    if version == 1:
        obj = _upgrade_v1(obj)
    return StatusReport(
        version=CURRENT_VERSION,
        cluster=check_cluster_name(_get(obj, "cluster", ""), "cluster"),
        sequence=_int(_get(obj, "sequence", ""), "sequence"),
        generated_at=_timestamp(_get(obj, "generated_at", ""), "generated_at"),
        agent_version=_str(obj.get("agent_version", ""), "agent_version", MAX_SHORT),
        interval_seconds=_int(_get(obj, "interval_seconds", ""), "interval_seconds", 1, MAX_INTERVAL_SECONDS),
        labels=_labels(obj.get("labels", {}), "labels"),
        source=_source(_get(obj, "source", ""), "source"),
        bundles=_list(_get(obj, "bundles", ""), "bundles", MAX_BUNDLES, _bundle),
    )


def to_v1_dict(report: StatusReport) -> dict[str, Any]:
    """The report as the previous contract version would have carried it (for tests and old peers)."""
    data = report.to_json_dict()
    data["version"] = 1
    data["source"].pop("errors", None)
    for bundle in data["bundles"]:
        bundle.pop("non_ready", None)
        bundle.pop("modified", None)
    return data
