"""The contract is strict: invalid Unicode, odd timestamps, huge integers, unknown fields, repeated keys
and duplicate bundles are rejected with the field named; valid text of every kind still passes."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.contract import MAX_INT, ContractError, parse_report
from hub.fast_contract import fast_parse
from hub.wire_text import timestamp_problem
from tests.unit.hub.factory import make_bundle, make_report

_BAD_CHARS = ["\ud800", "\udfff", "\ufffe", "\uffff", "\ufdd0", "\ufdef", "\U0001fffe", "\U0010ffff", "\x00"]


def _body(mutate: Any) -> bytes:
    data = make_report(bundles=[make_bundle(f"b{i}") for i in range(3)]).to_json_dict()
    mutate(data)
    return json.dumps(data).encode()  # ensure_ascii: bad characters travel as \u escapes


def _rejects(body: bytes | str | dict[str, Any], field: str) -> ContractError:
    with pytest.raises(ContractError) as err:
        parse_report(body)
    assert err.value.field_path == field, str(err.value)
    return err.value


@pytest.mark.parametrize("char", _BAD_CHARS)
@pytest.mark.parametrize(
    ("where", "field"),
    [
        (lambda d, c: d["labels"].__setitem__("region", "eu" + c), "labels.region"),
        (lambda d, c: d["labels"].__setitem__("k" + c, "v"), "labels key"),
        (lambda d, c: d["bundles"][2].__setitem__("message", c), "bundles[2].message"),
        (lambda d, c: d["source"].__setitem__("url", c), "source.url"),
        (lambda d, c: d.__setitem__("agent_version", c), "agent_version"),
    ],
)
def test_invalid_text_is_rejected_wherever_it_is(char: str, where: Any, field: str) -> None:
    escaped = _body(lambda d: where(d, char))
    error = _rejects(escaped, field)
    assert "valid Unicode" in error.message
    if char < "\ud800" or char > "\udfff":  # also as raw UTF-8, where UTF-8 can carry it
        _rejects(escaped.decode().encode("utf-8"), field)
        data = json.loads(escaped)
        _rejects(data, field)


def test_raw_bytes_that_are_not_utf8_are_rejected() -> None:
    body = make_report(labels={"region": "XX"}).to_json().encode().replace(b"XX", b"\xed\xa0\x80")
    with pytest.raises(ContractError, match="not valid UTF-8"):
        parse_report(body)


@given(st.text(st.characters(exclude_categories=("Cs",)), max_size=40))
def test_any_valid_text_is_accepted(text: str) -> None:
    text = "".join(
        c for c in text if c != "\x00" and not (0xFDD0 <= ord(c) <= 0xFDEF) and ord(c) & 0xFFFE != 0xFFFE
    )
    for ensure_ascii in (True, False):
        body = _body(lambda d: d["bundles"][0].__setitem__("message", text))
        if not ensure_ascii:
            body = json.dumps(json.loads(body), ensure_ascii=False).encode()
        assert parse_report(body).bundles[0].message == text


@pytest.mark.parametrize(
    "stamp",
    [
        "yesterday",
        "2026-01-01",
        "2026-01-01T00:00:00",  # no zone
        "2026-01-01T00:00:00+0000",  # not RFC 3339's offset form
        "2026-W01-1T00:00:00Z",
        "20260101T000000Z",
        "2026-02-30T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "1970-01-01T00:00:00Z",
        "\uff12\uff10\uff12\uff16-01-01T00:00:00Z",  # full-width digits
    ],
)
def test_timestamps_must_be_rfc3339_within_the_window(stamp: str) -> None:
    assert timestamp_problem(stamp) is not None
    _rejects(_body(lambda d: d.__setitem__("generated_at", stamp)), "generated_at")
    _rejects(
        _body(lambda d: d["bundles"][1].__setitem__("last_transition", stamp)), "bundles[1].last_transition"
    )


@pytest.mark.parametrize(
    "stamp", ["2026-01-01T00:00:00Z", "2026-01-01t00:00:00.123456789+05:30", "2026-01-01 00:00:00-01:00"]
)
def test_rfc3339_forms_are_accepted(stamp: str) -> None:
    assert timestamp_problem(stamp) is None


@pytest.mark.parametrize("value", [MAX_INT + 1, 2**63 - 1, 2**64, 10**300])
@pytest.mark.parametrize(
    ("where", "field"),
    [
        (lambda d, v: d.__setitem__("sequence", v), "sequence"),
        (lambda d, v: d["bundles"][0].__setitem__("helm_revision", v), "bundles[0].helm_revision"),
        (lambda d, v: d["bundles"][0].__setitem__("resources_total", v), "bundles[0].resources_total"),
    ],
)
def test_integers_are_bounded_to_exact_json_numbers(value: int, where: Any, field: str) -> None:
    _rejects(_body(lambda d: where(d, value)), field)


def test_largest_exact_sequence_is_accepted() -> None:
    assert parse_report(_body(lambda d: d.__setitem__("sequence", MAX_INT))).sequence == MAX_INT


@pytest.mark.parametrize(
    ("where", "field"),
    [
        (lambda d: d.__setitem__("extra", 1), "extra"),
        (lambda d: d["source"].__setitem__("token", "x"), "source.token"),
        (lambda d: d["bundles"][1].__setitem__("stat", "Ready"), "bundles[1].stat"),
    ],
)
def test_unknown_fields_are_rejected(where: Any, field: str) -> None:
    error = _rejects(_body(where), field)
    assert "unknown field" in error.message


def test_unknown_fields_in_resources_and_problems_are_rejected() -> None:
    def resource(d: dict[str, Any]) -> None:
        d["bundles"][0]["non_ready"] = [{"kind": "Pod", "name": "p", "status": "x", "colour": "red"}]

    _rejects(_body(resource), "bundles[0].non_ready[0].colour")

    def problem(d: dict[str, Any]) -> None:
        d["source"]["errors"] = [{"file": "f", "line": 1, "message": "m", "severity": "high"}]

    _rejects(_body(problem), "source.errors[0].severity")


def test_repeated_json_keys_are_rejected() -> None:
    body = make_report().to_json().replace('"sequence":1', '"sequence":1,"sequence":99').encode()
    with pytest.raises(ContractError, match="appears twice"):
        parse_report(body)


def test_duplicate_bundle_names_are_rejected() -> None:
    report = make_report(bundles=[make_bundle("web"), make_bundle("db"), make_bundle("web", "Failed")])
    error = _rejects(report.to_json().encode(), "bundles[2].bundle")
    assert "also bundles[0]" in error.message


@pytest.mark.parametrize("name", [".", ".."])
def test_dot_bundle_names_are_rejected(name: str) -> None:
    _rejects(make_report(bundles=[make_bundle(name)]).to_json().encode(), "bundles[0].bundle")


def test_bundle_names_with_slashes_and_unicode_are_accepted() -> None:
    report = make_report(bundles=[make_bundle("team/web"), make_bundle("café ☕")])
    assert [b.bundle for b in parse_report(report.to_json().encode()).bundles] == ["team/web", "café ☕"]


def test_more_ready_resources_than_resources_is_rejected() -> None:
    bundle = replace(make_bundle("web"), resources_ready=99, resources_total=2)
    error = _rejects(
        make_report(bundles=[make_bundle("db"), bundle]).to_json().encode(), "bundles[1].resources_ready"
    )
    assert "99 > 2" in error.message
    assert fast_parse(make_report(bundles=[bundle]).to_json().encode()) is None  # the fast path defers
