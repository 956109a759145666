"""YAML parsing: data stays JSON-compatible, every key has its line, mistakes are located."""

from __future__ import annotations

import pytest

from agent.fleet.errors import Problem
from agent.fleet.yamldoc import Document, parse_document


def parsed(text: str) -> Document:
    result = parse_document("f.yaml", text)
    assert isinstance(result, Document), result
    return result


def problem(text: str) -> Problem:
    result = parse_document("f.yaml", text)
    assert isinstance(result, Problem), result
    return result


def test_records_the_line_of_every_key_and_item() -> None:
    document = parsed("a: 1\nb:\n  c:\n    - x\n    - y\n")
    assert document.data == {"a": 1, "b": {"c": ["x", "y"]}}
    assert document.lines[("b", "c", 1)] == 5
    assert document.line_of(("b", "c", 7, "missing")) == 3


def test_keeps_values_json_compatible() -> None:
    document = parsed("when: 2024-01-02\nyes_no: yes\nn: 0x10\nempty:\n")
    assert document.data == {"when": "2024-01-02", "yes_no": True, "n": 16, "empty": None}


def test_duplicate_key_names_both_lines() -> None:
    assert problem("a: 1\nb:\n  c: 1\n  c: 2\n") == Problem(
        "f.yaml", 4, "duplicate key 'c' (first set on line 3)"
    )


def test_syntax_error_is_located() -> None:
    found = problem("a: 1\nb: [1, 2\nc: 3\n")
    assert found.line in (2, 3)
    assert found.message.startswith("YAML syntax error")


def test_several_documents_are_refused() -> None:
    assert "single YAML document" in problem("a: 1\n---\nb: 2\n").message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: .nan\n", "not a finite number"),
        ("a: !!set {x}\n", "unsupported YAML tag"),
        ("a: !custom 1\n", "unsupported YAML tag"),
        ("? [1, 2]\n: x\n", "mapping key must be a plain scalar"),
    ],
)
def test_values_that_are_not_plain_data_are_refused(text: str, message: str) -> None:
    assert message in problem(text).message


def test_merge_keys_are_supported_and_explicit_keys_win() -> None:
    document = parsed("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\n")
    assert document.data["other"] == {"x": 1, "y": 3}


def test_empty_file_is_an_empty_mapping() -> None:
    assert parsed("").data == {}
