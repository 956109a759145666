"""The fast validity check compiled from the schemas agrees with jsonschema on every document."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.fleet import fastschema, schemacheck
from agent.fleet.yamldoc import Document, parse_document
from tests.unit.fleet.repos import relaxed
from tests.unit.fleet.strategies import DATA, FIELD_NAMES
from tests.unit.fleet.test_example_repo import EXAMPLE

KIND_OF_FOLDER: dict[str, schemacheck.Kind] = {
    "clusters": "Cluster",
    "groups": "ClusterGroup",
    "bundles": "Bundle",
}


def example_documents() -> list[tuple[schemacheck.Kind, Any]]:
    documents = []
    for folder, kind in KIND_OF_FOLDER.items():
        for path in sorted((EXAMPLE / folder).rglob("*.yaml")):
            if folder == "bundles" and path.name != "bundle.yaml":
                continue
            parsed = parse_document(path.name, path.read_text())
            assert isinstance(parsed, Document)
            documents.append((kind, parsed.data))
    return documents


EXAMPLES = example_documents()


def agree(kind: schemacheck.Kind, data: Any) -> None:
    schema = schemacheck.inlined_schema(kind)
    expected = jsonschema.Draft202012Validator(schema).is_valid(data)
    assert fastschema.compile_schema(schema)(data) is expected, data


def test_every_example_document_is_valid_for_both() -> None:
    for kind, data in EXAMPLES:
        assert fastschema.compile_schema(schemacheck.inlined_schema(kind))(data)
        agree(kind, data)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths(item, (*prefix, index))
    return found


@relaxed
@given(
    example=st.sampled_from(EXAMPLES),
    choice=st.integers(min_value=0),
    mutation=st.sampled_from(["replace", "delete", "add"]),
    key=FIELD_NAMES,
    value=DATA,
)
def test_agrees_with_jsonschema_on_mutated_documents(
    example: tuple[schemacheck.Kind, Any], choice: int, mutation: str, key: str, value: Any
) -> None:
    kind, original = example
    data = copy.deepcopy(original)
    candidates = paths(data)[1:]
    path = candidates[choice % len(candidates)]
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    if mutation == "replace":
        parent[path[-1]] = value
    elif mutation == "delete":
        del parent[path[-1]]
    elif isinstance(parent, dict):
        parent[key] = value
    agree(kind, data)


@pytest.mark.parametrize(
    ("schema", "instance", "valid"),
    [
        ({"const": True}, 1, False),
        ({"enum": [1, 2]}, True, False),
        ({"type": "integer"}, True, False),
        ({"type": "number"}, 1.5, True),
        ({"maximum": 3}, "text", True),
        ({"additionalProperties": False, "properties": {"a": {}}}, {"a": 1, "b": 2}, False),
    ],
)
def test_json_semantics_for_booleans_and_types(schema: dict[str, Any], instance: Any, valid: bool) -> None:
    assert fastschema.compile_schema(schema)(instance) is valid
    assert jsonschema.Draft202012Validator(schema).is_valid(instance) is valid


def test_an_unsupported_keyword_fails_at_compile_time() -> None:
    with pytest.raises(ValueError, match="'oneOf' is not supported"):
        fastschema.compile_schema({"oneOf": [{"type": "string"}]})
