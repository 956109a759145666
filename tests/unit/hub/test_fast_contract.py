"""The hub's fast report parser gives the contract parser's answer: it takes an agent's report
itself, accepts nothing the contract refuses, and leaves every refusal (and its message naming the
field) to the contract's parser."""

from __future__ import annotations

import copy
import json
import random
import re
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub import fast_contract, rollout_contract
from hub.contract import (
    ContractError,
    ErrorFields,
    ResourceStatus,
    StatusReport,
    parse_report,
    to_v1_dict,
)
from hub.model import summarize, summary_to_json
from tests.benchmarks import hubload
from tests.unit.hub.factory import make_bundle, make_report


def _compact(data: Any) -> bytes:
    """How an agent encodes a report (``StatusReport.to_json``), for any document."""
    try:
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    except UnicodeEncodeError:  # a lone surrogate: only an escape can carry it
        return json.dumps(data, separators=(",", ":")).encode()


def _rich() -> dict[str, Any]:
    """A report using every part of the contract: errors, problems, signature, resources, rollout."""
    pod = ResourceStatus("Pod", "apps", "web-1", "CrashLoopBackOff", "back-off 40s")
    report = make_report(
        bundles=[
            make_bundle("web", "Failed", message="boom", non_ready=[pod]),
            make_bundle("db"),
            replace(make_bundle("cache", "Paused"), modified=[pod], helm_revision=None, last_transition=""),
        ],
        source_error="fetch failed",
        labels={"région": "eu-ouest", "tier": "edge 𝄞"},
    )
    source = replace(report.source, signature="verified", signature_commit="a1b2c3d", signature_signer="k")
    facts = {"commit": "a1b2c3d", "wave": 1, "wave_name": "canary", "paused": False, "holding": False}
    facts |= {"failed": False, "waves": [{"name": "canary", "max_concurrent": "25%", "size": 3}]}
    report = replace(
        report,
        source=source,
        errors=ErrorFields(source="fetch failed", hub="503"),
        agent_arch="aarch64",
        agent_image="ghcr.example/flotilla-agent:0.3.1",
        rollout=rollout_contract.parse({"bundles": {"web": facts}}),  # as an agent sends it
    )
    return report.to_json_dict()


def test_agent_reports_take_the_fast_path_with_the_contract_result() -> None:
    rng = random.Random(3)
    bodies = [hubload.report_body(f"edge-{i}", i, 10, rng) for i in range(20)]
    bodies += [make_report().to_json().encode(), _compact(_rich())]
    unreachable = replace(make_report(), errors=ErrorFields(cluster_api="connection refused"))
    bodies.append(unreachable.to_json().encode())  # every bundle Ready, but Failed: its API is unreachable
    for body in bodies:
        fast = fast_contract.fast_parse(body)
        assert fast is not None, body[:200]
        assert fast == parse_report(body)
        assert fast.to_json().encode() == body
        _same_summary(body, fast)


def test_errors_null_is_no_errors_as_in_the_contract() -> None:
    data = make_report().to_json_dict()
    data["errors"] = None
    body = _compact(data)
    assert fast_contract.fast_parse(body) == parse_report(body)
    assert parse_report(body).errors == ErrorFields()


def test_a_repeated_key_is_refused_by_the_contract_not_taken_as_its_last_value() -> None:
    body = make_report().to_json().encode().replace(b'"sequence":1,', b'"sequence":1,"sequence":2,', 1)
    assert fast_contract.fast_parse(body) is None
    with pytest.raises(ContractError, match="appears twice"):
        fast_contract.parse(body)
    inner = make_report().to_json().encode().replace(b'"ref":"main"', b'"ref":"main","ref":"dev"', 1)
    with pytest.raises(ContractError, match="appears twice"):
        fast_contract.parse(inner)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d["labels"].__setitem__("region", "eu\ud800"), "labels.region"),
        (lambda d: d["bundles"][0].__setitem__("message", "\ufffe"), "bundles[0].message"),
        (lambda d: d["source"].__setitem__("url", "\x00"), "source.url"),
        (lambda d: d.__setitem__("generated_at", "2026-01-01 00:00"), "generated_at"),
        (lambda d: d.__setitem__("generated_at", "9999-01-01T00:00:00Z"), "generated_at"),
        (lambda d: d.__setitem__("sequence", 2**63 - 1), "sequence"),
        (lambda d: d.__setitem__("colour", "red"), "colour"),
        (lambda d: d["bundles"].append(dict(d["bundles"][0])), "bundles[1].bundle"),
        (lambda d: d["bundles"][0].__setitem__("state", "Fine"), "bundles[0].state"),
        (lambda d: d.__setitem__("cluster", "Edge_1"), "cluster"),
    ],
)
def test_refusals_keep_the_contract_message_naming_the_field(mutate: Any, field: str) -> None:
    data = make_report().to_json_dict()
    mutate(data)
    body = _compact(data)
    assert fast_contract.fast_parse(body) is None
    with pytest.raises(ContractError) as err:
        fast_contract.parse(body)
    assert err.value.field_path == field


def test_an_older_contract_version_is_upgraded_by_the_contract() -> None:
    body = _compact(to_v1_dict(make_report(bundles=[make_bundle()])))
    assert fast_contract.fast_parse(body) is None
    assert fast_contract.parse(body) == parse_report(body)


def test_lengths_count_characters_at_the_limit_as_the_contract_does() -> None:
    for text in ("é" * 253, "𝄞" * 253, "𝄞" * 254, "x" * 254):
        data = make_report().to_json_dict()
        data["bundles"] = [make_bundle().__dict__ | {"release": text}]
        data["bundles"][0]["non_ready"] = data["bundles"][0]["modified"] = []
        body = _compact(data)
        fast = fast_contract.fast_parse(body)
        try:
            expected = parse_report(body)
        except ContractError:
            assert fast is None
        else:
            assert fast == expected


# --- every kind of wrong value, anywhere in a report -----------------------------------------------

_VALUES = [
    None,
    "",
    ".",
    "..",
    "Ready",
    "verified",
    "x" * 65,
    "x" * 254,
    "x" * 513,
    "x" * 4097,
    "2026-02-30T00:00:00Z",
    "1999-12-31T23:59:59Z",
    "2026-01-01T00:00:00+02:00",
    "\ud800",
    "\ufdd0",
    -1,
    0,
    1,
    2**53 - 1,
    2**53,
    2**64,
    1.0,
    True,
    [],
    [{}],
    {},
    {"x": 1},
]


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*path, index))
    return found


def _at(data: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        data = data[step]
    return data


_RICH = _rich()
_PATHS = [p for p in _paths(_RICH) if p]


def _edited(edits: list[tuple[tuple[Any, ...], str, Any]]) -> bytes:
    data = json.loads(json.dumps(_RICH))
    for path, how, shared in edits:
        value = copy.deepcopy(shared)  # never one of _VALUES itself (an edit may append into it)
        try:
            parent = _at(data, path[:-1])
            if how == "set":
                parent[path[-1]] = value
            elif how == "delete":
                del parent[path[-1]]
            elif isinstance(parent, dict):
                parent[f"{path[-1]}_extra"] = value
            else:
                parent.append(value)
        except (KeyError, IndexError, TypeError, AttributeError):
            continue  # an earlier edit removed or replaced that place
    return _compact(data)


def _contract(body: bytes) -> Any:
    """The contract parser's answer: the report, or the error it refuses it with."""
    try:
        return parse_report(body)
    except ContractError as exc:
        return exc


def _agrees(body: bytes) -> None:
    fast = fast_contract.fast_parse(body)
    expected = _contract(body)
    if isinstance(expected, ContractError):
        assert fast is None, f"the fast path accepted what the contract refuses: {expected}"
        with pytest.raises(ContractError, match=re.escape(str(expected))):
            fast_contract.parse(body)
    else:
        assert fast is None or fast == expected
        assert fast_contract.parse(body) == expected
        _same_summary(body, expected)


def _same_summary(body: bytes, report: StatusReport) -> None:
    """Ingest summarises what parse_facts gives (the fast path's struct): the same summary and health."""
    facts = fast_contract.parse_facts(body)
    assert facts.health == report.health
    assert summarize(facts, 1_800_000_000.0) == summarize(report, 1_800_000_000.0)
    assert summary_to_json(summarize(facts, 1.0)) == summary_to_json(summarize(report, 1.0))


def test_every_single_wrong_value_anywhere_gets_the_contract_answer() -> None:
    for path in _PATHS:
        _agrees(_edited([(path, "delete", None)]))
        for value in _VALUES:
            _agrees(_edited([(path, "set", value)]))
            _agrees(_edited([(path, "add", value)]))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(_PATHS),
            st.sampled_from(["set", "delete", "add"]),
            st.sampled_from(_VALUES),
        ),
        min_size=2,
        max_size=4,
    )
)
def test_combined_edits_get_the_contract_answer(edits: list[tuple[Any, str, Any]]) -> None:
    _agrees(_edited(edits))
