"""The planner is deterministic: the same repo gives the same plan and digests whatever the key
order in the YAML, the order files were written in, or the order bundles sit in memory."""

from __future__ import annotations

import dataclasses
import functools
import json
import pathlib
import random
import tempfile
from typing import Any

import yaml
from hypothesis import given
from hypothesis import strategies as st

from agent import fleet
from agent.fleet.output import render_json
from tests.unit.fleet.repos import HEADER, base_files, relaxed, relaxed_io, write_repo

KEYS = st.sampled_from(["image", "tag", "replicas", "region", "env", "limits"])
LEAVES = st.one_of(st.integers(-5, 5), st.text("abc", max_size=3), st.booleans())
VALUES = st.recursive(LEAVES, lambda inner: st.dictionaries(KEYS, inner, max_size=3), max_leaves=8)
LAYERS = st.dictionaries(KEYS, VALUES, max_size=4)


def shuffled(value: Any, rng: random.Random) -> Any:
    """The same data with every mapping's keys in a random order."""
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {key: shuffled(item, rng) for key, item in items}
    return value


def bundle_yaml(
    name: str, values: dict[str, Any], target_values: list[dict[str, Any]], rng: random.Random
) -> str:
    document = {
        "kind": "Bundle",
        "name": name,
        "namespace": name,
        "chart": {"path": "../../charts/app"},
        "values": values,
        "targets": [{"clusterSelector": {}, "values": layer} for layer in target_values],
    }
    return HEADER + yaml.safe_dump(shuffled(document, rng), sort_keys=False)


def write(values: dict[str, Any], targets: list[dict[str, Any]], seed: int) -> str:
    """Write the repo with a given key and file order; return its plan for eu-1 as JSON."""
    rng = random.Random(seed)
    files = base_files()
    files["bundles/web/bundle.yaml"] = bundle_yaml("web", values, targets, rng)
    items = list(files.items())
    rng.shuffle(items)
    with tempfile.TemporaryDirectory() as temp:
        root = write_repo(pathlib.Path(temp), dict(items))
        return render_json(fleet.plan_cluster(fleet.load_repo(root), "eu-1"))


@relaxed_io
@given(values=LAYERS, targets=st.lists(LAYERS, max_size=3), seeds=st.tuples(st.integers(), st.integers()))
def test_key_and_file_order_never_change_the_plan(
    values: dict[str, Any], targets: list[dict[str, Any]], seeds: tuple[int, int]
) -> None:
    assert write(values, targets, seeds[0]) == write(values, targets, seeds[1])


@relaxed_io
@given(values=LAYERS, targets=st.lists(LAYERS, min_size=1, max_size=3))
def test_the_last_matching_target_wins_over_earlier_layers(
    values: dict[str, Any], targets: list[dict[str, Any]]
) -> None:
    plan = json.loads(write(values, targets, 0))
    web = next(release for release in plan["releases"] if release["bundle"] == "web")
    for key, value in targets[-1].items():
        if not isinstance(value, dict):
            assert web["values"][key] == value


@functools.cache
def base_repo() -> fleet.FleetRepo:
    with tempfile.TemporaryDirectory() as temp:
        return fleet.load_repo(write_repo(pathlib.Path(temp), base_files()))


@relaxed
@given(seed=st.integers())
def test_in_memory_order_of_bundles_and_clusters_does_not_matter(seed: int) -> None:
    repo = base_repo()
    rng = random.Random(seed)

    def reordered(mapping: Any) -> dict[str, Any]:
        items = list(mapping.items())
        rng.shuffle(items)
        return dict(items)

    other = dataclasses.replace(
        repo,
        clusters=reordered(repo.clusters),
        groups=reordered(repo.groups),
        bundles=reordered(repo.bundles),
    )
    assert fleet.plan_cluster(repo, "eu-1") == fleet.plan_cluster(other, "eu-1")
