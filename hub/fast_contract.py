"""A fast path for :func:`hub.contract.parse_report`: the same answer, in C for the common report.

The contract's parser walks the decoded document in Python (about a third of the hub's CPU per
report). Here the report is decoded by msgspec straight into typed structs whose types carry the
contract's bounds (lengths, ranges, states, unknown fields); what msgspec cannot express (the
cluster-name pattern, RFC 3339 timestamps, duplicate bundle names, the rollout part) is checked
after it in Python.

This path only ever *accepts*: it returns None for anything it does not accept, and the caller then
runs the contract's own parser, which accepts or rejects with the message naming the field. So no
report is accepted here that the contract would reject, and every error message stays the
contract's. Two more conditions keep that true:

* the body must be the canonical encoding of what was decoded (re-encoding it gives the same bytes,
  which an agent's ``StatusReport.to_json()`` does): then no object repeats a key, which msgspec
  would otherwise accept silently (the last value winning);
* a body that may carry a lone surrogate, U+0000 or a non-character (:func:`may_hold_bad_text`)
  goes to the contract's parser, which names the field.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from msgspec import Meta, Struct
from msgspec.structs import asdict

from hub import contract, contract_parse, rollout_contract, wire_text
from hub.contract import (
    MAX_BUNDLES,
    MAX_INT,
    MAX_INTERVAL_SECONDS,
    MAX_LABELS,
    MAX_MESSAGE,
    MAX_NAME,
    MAX_PROBLEMS,
    MAX_RESOURCES,
    MAX_SHORT,
    BundleStatus,
    ErrorFields,
    Problem,
    ResourceStatus,
    SourceStatus,
    StatusReport,
    cluster_health,
)
from hub.report_facts import ReportFacts
from hub.wire_text import may_hold_bad_text, timestamp_problem

_Name = Annotated[str, Meta(max_length=MAX_NAME)]
_NonEmptyName = Annotated[str, Meta(min_length=1, max_length=MAX_NAME)]
_Short = Annotated[str, Meta(max_length=MAX_SHORT)]
_Message = Annotated[str, Meta(max_length=MAX_MESSAGE)]
_Stamp = Annotated[str, Meta(max_length=64)]
_Count = Annotated[int, Meta(ge=0, le=MAX_INT)]
_State = Literal["Failed", "Degraded", "Modified", "InProgress", "Pending", "Paused", "Ready"]

# Field order is the contract dataclasses' order: that is the order an agent writes them in.


class _Problem(Struct, kw_only=True, forbid_unknown_fields=True):
    file: _Short
    line: _Count | None = None
    message: _Message


class _Resource(Struct, kw_only=True, forbid_unknown_fields=True):
    kind: _Name
    namespace: _Name = ""
    name: _Name
    status: _Name
    message: _Message = ""


_Resources = Annotated[list[_Resource], Meta(max_length=MAX_RESOURCES)]


class _Bundle(Struct, kw_only=True, forbid_unknown_fields=True):
    bundle: _NonEmptyName
    release: _Name = ""
    namespace: _Name = ""
    state: _State
    desired_commit: _Short | None = None
    applied_commit: _Short | None = None
    chart: _Short = ""
    chart_version: _Short = ""
    digest: _Short = ""
    values_digest: _Short = ""
    helm_revision: _Count | None = None
    resources_ready: _Count = 0
    resources_total: _Count = 0
    non_ready: _Resources = []
    modified: _Resources = []
    message: _Message = ""
    last_transition: _Stamp = ""


class _Source(Struct, kw_only=True, forbid_unknown_fields=True):
    url: _Short
    ref: _Short
    desired_commit: _Short | None = None
    applied_commit: _Short | None = None
    error: _Message | None = None
    errors: Annotated[list[_Problem], Meta(max_length=MAX_PROBLEMS)] = []
    signature: Literal["verified", "refused"] | None = None
    signature_commit: _Short | None = None
    signature_signer: _Short | None = None
    signature_reason: _Message | None = None


class _Errors(Struct, kw_only=True):  # unknown keys are dropped, as the contract does
    source: _Message | None = None
    fleet_repo: _Message | None = None
    cluster_api: _Message | None = None
    hub: _Message | None = None


class _Report(Struct, kw_only=True, forbid_unknown_fields=True):
    version: Literal[2]  # version 1 is upgraded by the contract's parser
    cluster: _NonEmptyName
    sequence: _Count
    generated_at: _Stamp
    agent_version: _Short = ""
    interval_seconds: Annotated[int, Meta(ge=1, le=MAX_INTERVAL_SECONDS)]
    labels: Annotated[dict[_NonEmptyName, _Short], Meta(max_length=MAX_LABELS)] = {}
    source: _Source
    bundles: Annotated[list[_Bundle], Meta(max_length=MAX_BUNDLES)]
    agent_arch: _Name = ""
    agent_image: _Short = ""
    self_upgrade_from: _Short = ""
    self_upgrade_to: _Short = ""
    self_upgrade_result: _Message = ""
    errors: _Errors | None = None
    rollout: Any = None  # replaced by its checked form (rollout_contract.parse) once accepted

    @property
    def health(self) -> str:  # as StatusReport.health
        api_error = None if self.errors is None else self.errors.cluster_api
        return cluster_health((b.state for b in self.bundles), self.source.error, api_error)


# wire_text's test for escapes that may spell a bad character, on the undecoded bytes
_BAD_ESCAPE = re.compile(wire_text._BAD_ESCAPE.pattern.encode())
T = TypeVar("T")
_new = object.__new__
_set_attribute = object.__setattr__
_DECODER = msgspec.json.Decoder(_Report)
_ENCODER = msgspec.json.Encoder()
_CLUSTER_NAME = contract_parse.CLUSTER_NAME


def facts(body: bytes) -> _Report | None:
    """The report in ``body``, as the decoded struct (what :func:`hub.model.summarize` reads), if it is
    a canonical, valid current-version report; otherwise None (the caller then runs
    :func:`hub.contract.parse_report`, which decides and names the field)."""
    if _suspicious(body):
        return None
    try:
        raw = _DECODER.decode(body)
    except (msgspec.DecodeError, RecursionError):
        return None
    if _ENCODER.encode(raw) != body:  # not canonical: a repeated key may hide in it
        return None
    if not _CLUSTER_NAME.match(raw.cluster) or timestamp_problem(raw.generated_at) is not None:
        return None
    for b in raw.bundles:
        if b.bundle in (".", "..") or (b.last_transition and timestamp_problem(b.last_transition)):
            return None
        if b.resources_ready > b.resources_total:
            return None
    if len({b.bundle for b in raw.bundles}) != len(raw.bundles):
        return None
    if raw.rollout is not None:
        try:
            raw.rollout = rollout_contract.parse(raw.rollout)
        except rollout_contract.RolloutContractError:
            return None
    return raw


def fast_parse(body: bytes) -> StatusReport | None:
    """:func:`facts` as the contract's :class:`StatusReport` (the same value parse_report gives)."""
    raw = facts(body)
    if raw is None:
        return None
    fields = asdict(raw)
    source = asdict(raw.source)
    source["errors"] = [_build(Problem, asdict(p)) for p in raw.source.errors]
    fields["source"] = _build(SourceStatus, source)
    fields["bundles"] = [_bundle(b) for b in raw.bundles]
    fields["errors"] = ErrorFields() if raw.errors is None else _build(ErrorFields, asdict(raw.errors))
    report: StatusReport = _build(StatusReport, fields)
    return report


def _build(cls: type[T], values: dict[str, Any]) -> T:
    """An instance of the frozen contract dataclass ``cls`` with these (already checked) field values,
    without its generated ``__init__`` (one ``object.__setattr__`` per field: twice the cost)."""
    obj = _new(cls)
    _set_attribute(obj, "__dict__", values)
    return obj


def _suspicious(body: bytes) -> bool:
    """True when a string in ``body`` may hold a character the contract refuses (or is not UTF-8)."""
    if _BAD_ESCAPE.search(body) is not None:
        return True
    if body.isascii():
        return False
    try:
        return may_hold_bad_text(body.decode("utf-8"))
    except UnicodeDecodeError:
        return True


def _resources(items: list[_Resource]) -> list[ResourceStatus]:
    return [_build(ResourceStatus, asdict(r)) for r in items]


def _bundle(b: _Bundle) -> BundleStatus:
    fields = asdict(b)
    fields["non_ready"] = _resources(b.non_ready) if b.non_ready else []
    fields["modified"] = _resources(b.modified) if b.modified else []
    return _build(BundleStatus, fields)


def parse(body: bytes) -> StatusReport:
    """:func:`hub.contract.parse_report` of ``body``, by the fast path when it accepts it."""
    return fast_parse(body) or contract.parse_report(body)


def parse_facts(body: bytes) -> ReportFacts:
    """The accepted report in ``body`` (the fast path's struct, or the contract's StatusReport);
    :class:`hub.contract.ContractError` naming the field when the contract refuses it."""
    return facts(body) or contract.parse_report(body)
