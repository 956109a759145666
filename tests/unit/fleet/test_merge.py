"""Values merge like Helm's: mappings deep, everything else replaced, null deletes; later wins."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from agent.fleet.merge import deep_merge, merge_values
from tests.unit.fleet.repos import relaxed


def test_mappings_merge_deeply_and_later_layers_win() -> None:
    merged = merge_values([{"a": {"x": 1, "y": 1}, "b": 1}, {"a": {"y": 2, "z": 2}}, {"a": {"z": 3}}])
    assert merged == {"a": {"x": 1, "y": 2, "z": 3}, "b": 1}


def test_lists_and_scalars_are_replaced_whole() -> None:
    assert merge_values([{"l": [1, 2, 3], "m": {"k": 1}}, {"l": [9], "m": "flat"}]) == {"l": [9], "m": "flat"}
    assert merge_values([{"m": "flat"}, {"m": {"k": 1}}]) == {"m": {"k": 1}}


def test_null_removes_a_key() -> None:
    assert merge_values([{"a": {"x": 1, "y": 2}}, {"a": {"x": None}}]) == {"a": {"y": 2}}
    assert merge_values([{"a": 1}, {"a": None, "b": {"c": None, "d": 1}}]) == {"b": {"d": 1}}


def test_inputs_are_not_modified() -> None:
    base = {"a": {"x": [1]}}
    overlay = {"a": {"y": {"z": 1}}}
    merged = deep_merge(base, overlay)
    merged["a"]["x"].append(2)
    merged["a"]["y"]["z"] = 5
    assert base == {"a": {"x": [1]}}
    assert overlay == {"a": {"y": {"z": 1}}}


KEYS = st.sampled_from(["a", "b", "c", "d"])
LEAVES = st.one_of(st.integers(), st.text(max_size=3), st.booleans(), st.lists(st.integers(), max_size=2))
VALUES = st.recursive(LEAVES, lambda inner: st.dictionaries(KEYS, inner, max_size=3), max_leaves=10)
LAYERS = st.dictionaries(KEYS, VALUES, max_size=4)


def leaves(tree: dict[str, Any], prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    """Every non-mapping value by its path."""
    found: dict[tuple[str, ...], Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            found.update(leaves(value, (*prefix, key)))
        else:
            found[(*prefix, key)] = value
    return found


def mappings(tree: dict[str, Any], prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """The path of every mapping below the root."""
    found: set[tuple[str, ...]] = set()
    for key, value in tree.items():
        if isinstance(value, dict):
            found |= {(*prefix, key), *mappings(value, (*prefix, key))}
    return found


def lookup(tree: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        tree = tree[key]
    return tree


@relaxed
@given(base=LAYERS, overlay=LAYERS)
def test_every_leaf_of_the_later_layer_wins(base: dict[str, Any], overlay: dict[str, Any]) -> None:
    merged = deep_merge(base, overlay)
    for path, value in leaves(overlay).items():
        assert lookup(merged, path) == value


@relaxed
@given(base=LAYERS, overlay=LAYERS)
def test_earlier_leaves_survive_unless_overridden(base: dict[str, Any], overlay: dict[str, Any]) -> None:
    merged = deep_merge(base, overlay)
    overridden = leaves(overlay)
    for path, value in leaves(base).items():
        replaced_by_a_later_value = any(path[:length] in overridden for length in range(1, len(path) + 1))
        replaced_by_a_later_mapping = path in mappings(overlay)
        if not (replaced_by_a_later_value or replaced_by_a_later_mapping):
            assert lookup(merged, path) == value


@relaxed
@given(layers=st.lists(LAYERS, max_size=4))
def test_merging_is_associative_so_layering_order_is_all_that_matters(layers: list[dict[str, Any]]) -> None:
    one_by_one: dict[str, Any] = {}
    for layer in layers:
        one_by_one = deep_merge(one_by_one, layer)
    assert merge_values(layers) == one_by_one
