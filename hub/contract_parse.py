"""Parsing a report: :func:`parse_report` validates a report and upgrades version 1 to the current
version; :func:`to_v1_dict` writes a report as version 1 would have carried it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from hub import rollout_contract
from hub.contract_fields import (
    check_int,
    check_str,
    join_path,
    read_int,
    read_list,
    read_name,
    read_object,
    read_opt_int,
    read_opt_str,
    read_str,
    read_timestamp,
    wire_keys,
)
from hub.contract_types import (
    BUNDLE_SEVERITY,
    BUNDLE_STATES,
    CURRENT_VERSION,
    MAX_BUNDLES,
    MAX_INT,
    MAX_INTERVAL_SECONDS,
    MAX_LABELS,
    MAX_MESSAGE,
    MAX_NAME,
    MAX_PROBLEMS,
    MAX_RESOURCES,
    MAX_SHORT,
    SIGNATURE_STATES,
    SUPPORTED_VERSIONS,
    BundleStatus,
    ContractError,
    ErrorFields,
    Problem,
    ResourceStatus,
    SourceStatus,
    StatusReport,
)
from hub.wire_text import DuplicateKeyError, find_bad_text, may_hold_bad_text, unique_object

CLUSTER_NAME = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,251}[a-z0-9])?$")


_PROBLEM_KEYS = wire_keys(Problem)
_RESOURCE_KEYS = wire_keys(ResourceStatus)
_BUNDLE_KEYS = wire_keys(BundleStatus)
_SOURCE_KEYS = wire_keys(SourceStatus)
_REPORT_KEYS = wire_keys(StatusReport)


def _problem(raw: Any, path: str) -> Problem:
    obj = read_object(raw, path, _PROBLEM_KEYS)
    return Problem(
        file=read_str(obj, "file", path, MAX_SHORT),
        line=read_opt_int(obj, "line", path),
        message=read_str(obj, "message", path, MAX_MESSAGE),
    )


def _resource(raw: Any, path: str) -> ResourceStatus:
    obj = read_object(raw, path, _RESOURCE_KEYS)
    return ResourceStatus(
        kind=read_str(obj, "kind", path, MAX_NAME),
        namespace=read_str(obj, "namespace", path, MAX_NAME, ""),
        name=read_str(obj, "name", path, MAX_NAME),
        status=read_str(obj, "status", path, MAX_NAME),
        message=read_str(obj, "message", path, MAX_MESSAGE, ""),
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
    obj = read_object(raw, path, _BUNDLE_KEYS)
    fields: dict[str, Any] = {"bundle": read_name(obj, "bundle", path)}
    if fields["bundle"] in (".", ".."):
        raise ContractError(join_path(path, "bundle"), "must not be '.' or '..'")
    state = read_str(obj, "state", path, 32)
    if state not in BUNDLE_SEVERITY:
        raise ContractError(join_path(path, "state"), f"must be one of {', '.join(BUNDLE_STATES)}")
    fields["state"] = state
    for key, limit in _BUNDLE_TEXT:
        value = obj.get(key, "")
        if type(value) is not str or len(value) > limit:
            check_str(value, join_path(path, key), limit)
        fields[key] = value
    for key, limit in _BUNDLE_OPTIONAL_TEXT:
        value = obj.get(key)
        if value is not None and (type(value) is not str or len(value) > limit):
            check_str(value, join_path(path, key), limit)
        fields[key] = value
    for key in _BUNDLE_COUNTS:
        value = obj.get(key, 0)
        if type(value) is not int or not 0 <= value <= MAX_INT:
            check_int(value, join_path(path, key))
        fields[key] = value
    if fields["resources_ready"] > fields["resources_total"]:
        raise ContractError(
            join_path(path, "resources_ready"),
            f"must not exceed resources_total ({fields['resources_ready']} > {fields['resources_total']})",
        )
    fields["helm_revision"] = read_opt_int(obj, "helm_revision", path)
    fields["non_ready"] = read_list(obj, "non_ready", path, MAX_RESOURCES, _resource)
    fields["modified"] = read_list(obj, "modified", path, MAX_RESOURCES, _resource)
    fields["last_transition"] = read_timestamp(obj, "last_transition", path, optional=True)
    return BundleStatus(**fields)


def _source(raw: Any, path: str) -> SourceStatus:
    obj = read_object(raw, path, _SOURCE_KEYS)
    return SourceStatus(
        url=read_str(obj, "url", path, MAX_SHORT),
        ref=read_str(obj, "ref", path, MAX_SHORT),
        desired_commit=read_opt_str(obj, "desired_commit", path, MAX_SHORT),
        applied_commit=read_opt_str(obj, "applied_commit", path, MAX_SHORT),
        error=read_opt_str(obj, "error", path, MAX_MESSAGE),
        errors=read_list(obj, "errors", path, MAX_PROBLEMS, _problem),
        **_signature(obj, path),
    )


def _errors(raw: Any, path: str) -> ErrorFields:
    if raw is None:
        return ErrorFields()
    obj = read_object(raw, path)
    return ErrorFields(**{key: read_opt_str(obj, key, path, MAX_MESSAGE) for key, _ in ErrorFields.LABELS})


def _signature(obj: Mapping[str, Any], path: str) -> dict[str, str | None]:
    state = read_opt_str(obj, "signature", path, 32)
    if state is not None and state not in SIGNATURE_STATES:
        raise ContractError(join_path(path, "signature"), f"must be one of {', '.join(SIGNATURE_STATES)}")
    return {
        "signature": state,
        "signature_commit": read_opt_str(obj, "signature_commit", path, MAX_SHORT),
        "signature_signer": read_opt_str(obj, "signature_signer", path, MAX_SHORT),
        "signature_reason": read_opt_str(obj, "signature_reason", path, MAX_MESSAGE),
    }


def _labels(raw: Any, path: str) -> dict[str, str]:
    obj = read_object(raw, path)
    if len(obj) > MAX_LABELS:
        raise ContractError(path, f"must have at most {MAX_LABELS} entries (got {len(obj)})")
    labels: dict[str, str] = {}
    for key, value in obj.items():
        check_str(key, f"{path} key", MAX_NAME, allow_empty=False)
        labels[key] = check_str(value, f"{path}.{key}", MAX_SHORT)
    return labels


def check_cluster_name(raw: Any, path: str = "cluster") -> str:
    """The cluster name if it is a valid DNS-style name, else a ContractError."""
    name = check_str(raw, path, MAX_NAME, allow_empty=False)
    if not CLUSTER_NAME.match(name):
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
    obj = read_object(_decode(raw), "report")
    version = read_int(obj, "version", "")
    if version not in SUPPORTED_VERSIONS:
        supported = ", ".join(str(v) for v in SUPPORTED_VERSIONS)
        raise ContractError("version", f"unsupported version {version} (supported: {supported})")
    if version == 1:
        obj = _upgrade_v1(obj)
    if "cluster" not in obj:
        raise ContractError("cluster", "is required")
    if "source" not in obj:
        raise ContractError("source", "is required")
    read_object(obj, "", _REPORT_KEYS)
    report = StatusReport(
        version=CURRENT_VERSION,
        cluster=check_cluster_name(obj["cluster"]),
        sequence=read_int(obj, "sequence", ""),
        generated_at=read_timestamp(obj, "generated_at", ""),
        agent_version=read_str(obj, "agent_version", "", MAX_SHORT, ""),
        interval_seconds=check_int(
            read_int(obj, "interval_seconds", ""), "interval_seconds", 1, MAX_INTERVAL_SECONDS
        ),
        labels=_labels(obj.get("labels", {}), "labels"),
        source=_source(obj["source"], "source"),
        bundles=read_list(obj, "bundles", "", MAX_BUNDLES, _bundle, optional=False),
        agent_arch=read_str(obj, "agent_arch", "", MAX_NAME, ""),
        agent_image=read_str(obj, "agent_image", "", MAX_SHORT, ""),
        self_upgrade_from=read_str(obj, "self_upgrade_from", "", MAX_SHORT, ""),
        self_upgrade_to=read_str(obj, "self_upgrade_to", "", MAX_SHORT, ""),
        self_upgrade_result=read_str(obj, "self_upgrade_result", "", MAX_MESSAGE, ""),
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
