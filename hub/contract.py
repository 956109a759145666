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
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from datetime import UTC, datetime
from typing import Any, TypeVar

from hub import rollout_contract
from hub.wire_text import (
    DuplicateKeyError,
    find_bad_text,
    may_hold_bad_text,
    timestamp_problem,
    unique_object,
)

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
MAX_INT = 2**53 - 1  # every integer stays exact in any JSON reader (JavaScript's Number included)

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


def cluster_health(
    bundle_states: Iterable[str], source_error: str | None, cluster_api_error: str | None = None
) -> str:
    """Health of a cluster: its worst bundle; Failed if the source/plan failed and nothing is known,
    and Failed whenever the agent could not reach its own cluster's API (nothing it says is current).

    A paused bundle is an operator's decision, not a health problem: it counts only when every
    bundle of the cluster is paused (the cluster is then ``Paused``).
    """
    if cluster_api_error:
        return "Failed"
    states = list(bundle_states)
    if not states:
        return "Failed" if source_error else "Ready"
    active = [state for state in states if state != "Paused"]
    return worst_state(active) if active else "Paused"


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
    # Signature verification (absent when it is off): "verified" or "refused", the commit (or tag)
    # checked, who signed it (principal or user id, and key) and, when refused, why.
    signature: str | None = None
    signature_commit: str | None = None
    signature_signer: str | None = None
    signature_reason: str | None = None


@dataclass(frozen=True)
class ErrorFields:
    """What failed this pass, one field per boundary (optional in version 2; absent means none).

    ``source.error`` stays what it always was — the Git source or the fleet repo — for older readers.
    """

    source: str | None = None  # the Git source could not be fetched (the last good commit is used)
    fleet_repo: str | None = None  # the fleet repo at the commit is invalid, or no plan for this cluster
    cluster_api: str | None = None  # the cluster's API server could not be reached or refused the agent
    hub: str | None = None  # the agent's last attempt to deliver a report to the hub failed

    LABELS = (
        ("source", "source"),
        ("fleet_repo", "fleet repo"),
        ("cluster_api", "cluster API"),
        ("hub", "hub"),
    )

    def items(self) -> list[tuple[str, str]]:
        """(label, message) of every error that is set, in a fixed order."""
        return [(label, text) for key, label in self.LABELS if (text := getattr(self, key))]


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
    agent_arch: str = ""  # optional: the agent's machine (``uname -m``), e.g. x86_64, aarch64, armv7l
    # optional: the agent's image and its last self-upgrade (agent.selfupgrade): images and a result
    # ("succeeded", "in-progress" or "rolled-back: why").
    agent_image: str = ""
    self_upgrade_from: str = ""
    self_upgrade_to: str = ""
    self_upgrade_result: str = ""
    errors: ErrorFields = field(default_factory=ErrorFields)
    rollout: dict[str, Any] | None = None  # staged rollouts and the deletion brake (hub.rollout_contract)

    @property
    def health(self) -> str:
        return cluster_health((b.state for b in self.bundles), self.source.error, self.errors.cluster_api)

    def to_json_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (hand-written: ``dataclasses.asdict`` is ten times slower)."""
        source = self.source
        return {
            **self.__dict__,
            "labels": dict(self.labels),
            "errors": dict(self.errors.__dict__),
            "source": {**source.__dict__, "errors": [dict(p.__dict__) for p in source.errors]},
            "bundles": [
                {
                    **b.__dict__,
                    "non_ready": [dict(r.__dict__) for r in b.non_ready],
                    "modified": [dict(r.__dict__) for r in b.modified],
                }
                for b in self.bundles
            ],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_json_dict(), separators=(",", ":"), ensure_ascii=False)


# --- parsing -------------------------------------------------------------------------------------
# Field readers take the parent object, the key and the parent's path; the full field path is only
# built when something is wrong (the hub parses every report, so the happy path is kept lean).

T = TypeVar("T")
_MISSING: Any = object()


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _mapping(value: Any, path: str, known: frozenset[str] | None = None) -> Mapping[str, Any]:
    """``value`` as an object; with ``known``, a key outside it is an error (unknown fields are rejected)."""
    if not isinstance(value, Mapping):
        raise ContractError(path, "must be an object")
    if known is not None and not known.issuperset(value):
        unknown = sorted(str(key) for key in value if key not in known)[0]
        raise ContractError(_join(path, unknown), "unknown field (not part of this contract version)")
    return value


def _known(cls: type) -> frozenset[str]:
    """The wire keys of a contract dataclass: exactly its fields."""
    return frozenset(f.name for f in dataclass_fields(cls))


def _check_str(value: Any, path: str, limit: int, allow_empty: bool = True) -> str:
    if type(value) is str and len(value) <= limit and (allow_empty or value):
        return value
    if not isinstance(value, str):
        raise ContractError(path, "must be a string")
    if len(value) > limit:
        raise ContractError(path, f"must be at most {limit} characters (got {len(value)})")
    raise ContractError(path, "must not be empty")


def _str(obj: Mapping[str, Any], key: str, path: str, limit: int, default: Any = _MISSING) -> str:
    value = obj.get(key, default)
    if type(value) is str and len(value) <= limit:
        return value
    if value is _MISSING:
        raise ContractError(_join(path, key), "is required")
    return _check_str(value, _join(path, key), limit)


def _name(obj: Mapping[str, Any], key: str, path: str) -> str:
    value = obj.get(key, _MISSING)
    if value is _MISSING:
        raise ContractError(_join(path, key), "is required")
    return _check_str(value, _join(path, key), MAX_NAME, allow_empty=False)


def _opt_str(obj: Mapping[str, Any], key: str, path: str, limit: int) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    return _str(obj, key, path, limit)


def _check_int(value: Any, path: str, minimum: int = 0, maximum: int = MAX_INT) -> int:
    if type(value) is not int:
        raise ContractError(path, "must be an integer")
    if not minimum <= value <= maximum:
        raise ContractError(path, f"must be between {minimum} and {maximum}")
    return value


def _int(obj: Mapping[str, Any], key: str, path: str, default: Any = _MISSING, minimum: int = 0) -> int:
    value = obj.get(key, default)
    if type(value) is int and minimum <= value <= MAX_INT:
        return value
    if value is _MISSING:
        raise ContractError(_join(path, key), "is required")
    return _check_int(value, _join(path, key), minimum)


def _opt_int(obj: Mapping[str, Any], key: str, path: str) -> int | None:
    return None if obj.get(key) is None else _int(obj, key, path)


def _check_timestamp(text: str, path: str) -> str:
    problem = timestamp_problem(text)
    if problem is not None:
        raise ContractError(path, problem)
    return text


def _timestamp(obj: Mapping[str, Any], key: str, path: str, *, optional: bool = False) -> str:
    text = _str(obj, key, path, 64, "" if optional else _MISSING)
    if optional and not text:
        return text
    return _check_timestamp(text, _join(path, key))


def _list(
    obj: Mapping[str, Any],
    key: str,
    path: str,
    limit: int,
    item: Callable[[Any, str], T],
    optional: bool = True,
) -> list[T]:
    value = obj.get(key, [] if optional else _MISSING)
    if value is _MISSING:
        raise ContractError(_join(path, key), "is required")
    if type(value) is not list:
        raise ContractError(_join(path, key), "must be a list")
    if len(value) > limit:
        raise ContractError(_join(path, key), f"must have at most {limit} items (got {len(value)})")
    if not value:
        return []
    list_path = _join(path, key)
    return [item(entry, f"{list_path}[{index}]") for index, entry in enumerate(value)]


_PROBLEM_KEYS = _known(Problem)
_RESOURCE_KEYS = _known(ResourceStatus)
_BUNDLE_KEYS = _known(BundleStatus)
_SOURCE_KEYS = _known(SourceStatus)
_REPORT_KEYS = _known(StatusReport)


def _problem(raw: Any, path: str) -> Problem:
    obj = _mapping(raw, path, _PROBLEM_KEYS)
    return Problem(
        file=_str(obj, "file", path, MAX_SHORT),
        line=_opt_int(obj, "line", path),
        message=_str(obj, "message", path, MAX_MESSAGE),
    )


def _resource(raw: Any, path: str) -> ResourceStatus:
    obj = _mapping(raw, path, _RESOURCE_KEYS)
    return ResourceStatus(
        kind=_str(obj, "kind", path, MAX_NAME),
        namespace=_str(obj, "namespace", path, MAX_NAME, ""),
        name=_str(obj, "name", path, MAX_NAME),
        status=_str(obj, "status", path, MAX_NAME),
        message=_str(obj, "message", path, MAX_MESSAGE, ""),
    )


_BUNDLE_TEXT = (
    ("release", MAX_NAME),
    ("namespace", MAX_NAME),
    ("chart", MAX_SHORT),
    ("chart_version", MAX_SHORT),
    ("digest", MAX_SHORT),
    ("values_digest", MAX_SHORT),
    ("message", MAX_MESSAGE),
)
_BUNDLE_OPTIONAL_TEXT = (("desired_commit", MAX_SHORT), ("applied_commit", MAX_SHORT))
_BUNDLE_COUNTS = ("resources_ready", "resources_total")


def _bundle(raw: Any, path: str) -> BundleStatus:
    # Table-driven: every agent's report carries dozens of bundles' worth of these fields.
    obj = _mapping(raw, path, _BUNDLE_KEYS)
    fields: dict[str, Any] = {"bundle": _name(obj, "bundle", path)}
    if fields["bundle"] in (".", ".."):
        raise ContractError(_join(path, "bundle"), "must not be '.' or '..'")
    state = _str(obj, "state", path, 32)
    if state not in _SEVERITY:
        raise ContractError(_join(path, "state"), f"must be one of {', '.join(BUNDLE_STATES)}")
    fields["state"] = state
    for key, limit in _BUNDLE_TEXT:
        value = obj.get(key, "")
        if type(value) is not str or len(value) > limit:
            _check_str(value, _join(path, key), limit)
        fields[key] = value
    for key, limit in _BUNDLE_OPTIONAL_TEXT:
        value = obj.get(key)
        if value is not None and (type(value) is not str or len(value) > limit):
            _check_str(value, _join(path, key), limit)
        fields[key] = value
    for key in _BUNDLE_COUNTS:
        value = obj.get(key, 0)
        if type(value) is not int or not 0 <= value <= MAX_INT:
            _check_int(value, _join(path, key))
        fields[key] = value
    fields["helm_revision"] = _opt_int(obj, "helm_revision", path)
    fields["non_ready"] = _list(obj, "non_ready", path, MAX_RESOURCES, _resource)
    fields["modified"] = _list(obj, "modified", path, MAX_RESOURCES, _resource)
    fields["last_transition"] = _timestamp(obj, "last_transition", path, optional=True)
    return BundleStatus(**fields)


def _source(raw: Any, path: str) -> SourceStatus:
    obj = _mapping(raw, path, _SOURCE_KEYS)
    return SourceStatus(
        url=_str(obj, "url", path, MAX_SHORT),
        ref=_str(obj, "ref", path, MAX_SHORT),
        desired_commit=_opt_str(obj, "desired_commit", path, MAX_SHORT),
        applied_commit=_opt_str(obj, "applied_commit", path, MAX_SHORT),
        error=_opt_str(obj, "error", path, MAX_MESSAGE),
        errors=_list(obj, "errors", path, MAX_PROBLEMS, _problem),
        **_signature(obj, path),
    )


def _errors(raw: Any, path: str) -> ErrorFields:
    if raw is None:
        return ErrorFields()
    obj = _mapping(raw, path)
    return ErrorFields(**{key: _opt_str(obj, key, path, MAX_MESSAGE) for key, _ in ErrorFields.LABELS})


SIGNATURE_STATES = ("verified", "refused")


def _signature(obj: Mapping[str, Any], path: str) -> dict[str, str | None]:
    state = _opt_str(obj, "signature", path, 32)
    if state is not None and state not in SIGNATURE_STATES:
        raise ContractError(_join(path, "signature"), f"must be one of {', '.join(SIGNATURE_STATES)}")
    return {
        "signature": state,
        "signature_commit": _opt_str(obj, "signature_commit", path, MAX_SHORT),
        "signature_signer": _opt_str(obj, "signature_signer", path, MAX_SHORT),
        "signature_reason": _opt_str(obj, "signature_reason", path, MAX_MESSAGE),
    }


def _labels(raw: Any, path: str) -> dict[str, str]:
    obj = _mapping(raw, path)
    if len(obj) > MAX_LABELS:
        raise ContractError(path, f"must have at most {MAX_LABELS} entries (got {len(obj)})")
    labels: dict[str, str] = {}
    for key, value in obj.items():
        _check_str(key, f"{path} key", MAX_NAME, allow_empty=False)
        labels[key] = _check_str(value, f"{path}.{key}", MAX_SHORT)
    return labels


def check_cluster_name(raw: Any, path: str = "cluster") -> str:
    """The cluster name if it is a valid DNS-style name, else a ContractError."""
    name = _check_str(raw, path, MAX_NAME, allow_empty=False)
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


def _decode(raw: Mapping[str, Any] | bytes | str) -> Any:
    """The JSON document of ``raw``: strict UTF-8, no repeated keys, every string valid Unicode text."""
    if isinstance(raw, Mapping):
        document: Any = raw
        suspicious = True
    else:
        try:
            text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        except UnicodeDecodeError as exc:
            raise ContractError("", f"body is not valid UTF-8 (at byte {exc.start})") from None
        try:
            document = json.loads(text, object_pairs_hook=unique_object)
        except DuplicateKeyError as exc:
            raise ContractError("", f"body is not acceptable JSON: {exc}") from None
        except (ValueError, RecursionError) as exc:
            raise ContractError("", f"body is not valid JSON: {exc}") from None
        suspicious = may_hold_bad_text(text)
    if suspicious:
        found = find_bad_text(document, "")
        if found is not None:
            raise ContractError(*found)
    return document


def parse_report(raw: Mapping[str, Any] | bytes | str) -> StatusReport:
    """Validate a report (JSON bytes/text or a decoded mapping) and return it at the current version.

    Strict: unknown fields, repeated keys, duplicate bundle names, invalid Unicode, timestamps that
    are not RFC 3339 (or lie outside 2000..2100) and integers past 2^53 - 1 are all rejected.
    """
    obj = _mapping(_decode(raw), "report")
    version = _int(obj, "version", "")
    if version not in SUPPORTED_VERSIONS:
        supported = ", ".join(str(v) for v in SUPPORTED_VERSIONS)
        raise ContractError("version", f"unsupported version {version} (supported: {supported})")
    if version == 1:
        obj = _upgrade_v1(obj)
    if "cluster" not in obj:
        raise ContractError("cluster", "is required")
    if "source" not in obj:
        raise ContractError("source", "is required")
    _mapping(obj, "", _REPORT_KEYS)
    report = StatusReport(
        version=CURRENT_VERSION,
        cluster=check_cluster_name(obj["cluster"]),
        sequence=_int(obj, "sequence", ""),
        generated_at=_timestamp(obj, "generated_at", ""),
        agent_version=_str(obj, "agent_version", "", MAX_SHORT, ""),
        interval_seconds=_check_int(
            _int(obj, "interval_seconds", ""), "interval_seconds", 1, MAX_INTERVAL_SECONDS
        ),
        labels=_labels(obj.get("labels", {}), "labels"),
        source=_source(obj["source"], "source"),
        bundles=_list(obj, "bundles", "", MAX_BUNDLES, _bundle, optional=False),
        agent_arch=_str(obj, "agent_arch", "", MAX_NAME, ""),
        agent_image=_str(obj, "agent_image", "", MAX_SHORT, ""),
        self_upgrade_from=_str(obj, "self_upgrade_from", "", MAX_SHORT, ""),
        self_upgrade_to=_str(obj, "self_upgrade_to", "", MAX_SHORT, ""),
        self_upgrade_result=_str(obj, "self_upgrade_result", "", MAX_MESSAGE, ""),
        errors=_errors(obj.get("errors"), "errors"),
        rollout=_rollout(obj.get("rollout")),
    )
    _check_unique_bundles(report.bundles)
    return report


def _check_unique_bundles(bundles: list[BundleStatus]) -> None:
    if len({b.bundle for b in bundles}) == len(bundles):
        return
    first: dict[str, int] = {}
    for index, b in enumerate(bundles):
        if b.bundle in first:
            raise ContractError(
                f"bundles[{index}].bundle",
                f"duplicate bundle name {b.bundle!r} (also bundles[{first[b.bundle]}])",
            )
        first[b.bundle] = index


def _rollout(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        return rollout_contract.parse(raw)
    except rollout_contract.RolloutContractError as exc:
        raise ContractError(exc.field_path, exc.message) from None


def to_v1_dict(report: StatusReport) -> dict[str, Any]:
    """The report as the previous contract version would have carried it (for tests and old peers)."""
    data = report.to_json_dict()
    data["version"] = 1
    data.pop("errors", None)
    for key in ("errors", "signature", "signature_commit", "signature_signer", "signature_reason"):
        data["source"].pop(key, None)
    for bundle in data["bundles"]:
        bundle.pop("non_ready", None)
        bundle.pop("modified", None)
    return data
