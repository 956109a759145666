"""Selector semantics follow Kubernetes; the fleet-wide index agrees with the per-cluster check."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.fleet.model import (
    Bundle,
    ChartSource,
    Cluster,
    ClusterGroup,
    LabelSelector,
    Origin,
    Requirement,
    Target,
)
from agent.fleet.selectors import ClusterIndex, matching_targets, selector_matches, target_matches
from tests.unit.fleet.repos import relaxed

ORIGIN = Origin("f.yaml", 1)
EU_ARM = Cluster("eu-1", {"region": "eu", "arch": "arm64"}, ORIGIN)
US_AMD = Cluster("us-1", {"region": "us", "arch": "amd64"}, ORIGIN)
BARE = Cluster("bare", {}, ORIGIN)
ARM_GROUP = ClusterGroup("arm", LabelSelector(match_labels={"arch": "arm64"}), ORIGIN)


@pytest.mark.parametrize(
    ("operator", "values", "labels", "expected"),
    [
        ("In", ("eu", "us"), {"region": "eu"}, True),
        ("In", ("eu",), {"region": "us"}, False),
        ("In", ("eu",), {}, False),
        ("NotIn", ("eu",), {"region": "us"}, True),
        ("NotIn", ("eu",), {"region": "eu"}, False),
        ("NotIn", ("eu",), {}, True),  # a cluster without the key is "not in"
        ("Exists", (), {"region": ""}, True),
        ("Exists", (), {}, False),
        ("DoesNotExist", (), {}, True),
        ("DoesNotExist", (), {"region": "eu"}, False),
    ],
)
def test_match_expression_operators(
    operator: str, values: tuple[str, ...], labels: dict[str, str], expected: bool
) -> None:
    selector = LabelSelector(match_expressions=(Requirement("region", operator, values),))  # type: ignore[arg-type]
    assert selector_matches(selector, labels) is expected


def test_empty_selector_matches_every_cluster() -> None:
    assert all(selector_matches(LabelSelector(), cluster.labels) for cluster in (EU_ARM, US_AMD, BARE))


def test_match_labels_and_expressions_must_all_hold() -> None:
    selector = LabelSelector(
        match_labels={"arch": "arm64"}, match_expressions=(Requirement("region", "In", ("us",)),)
    )
    assert not selector_matches(selector, EU_ARM.labels)
    assert not selector_matches(selector, US_AMD.labels)
    assert selector_matches(selector, {"arch": "arm64", "region": "us"})


def test_fields_of_one_target_are_anded() -> None:
    groups = {"arm": ARM_GROUP}
    target = Target(line=1, cluster_name="us-1", cluster_group="arm")
    assert not target_matches(target, US_AMD, groups)  # right name, wrong group
    assert not target_matches(target, EU_ARM, groups)  # right group, wrong name
    assert target_matches(Target(line=1, cluster_name="eu-1", cluster_group="arm"), EU_ARM, groups)


def test_a_target_with_an_unknown_group_or_no_field_matches_nothing() -> None:
    assert not target_matches(Target(line=1, cluster_group="ghost"), EU_ARM, {})
    assert not target_matches(Target(line=1), EU_ARM, {})


def test_targets_are_ored_and_kept_in_file_order() -> None:
    first = Target(line=1, cluster_selector=LabelSelector(), values={"n": 1})
    second = Target(line=2, cluster_group="arm", values={"n": 2})
    third = Target(line=3, cluster_name="us-1", values={"n": 3})
    bundle = Bundle(
        "b",
        "b",
        "b",
        ChartSource(kind="oci", oci_ref="oci://x/y", version="1"),
        ORIGIN,
        targets=(first, second, third),
    )
    assert matching_targets(bundle, EU_ARM, {"arm": ARM_GROUP}) == (first, second)
    assert matching_targets(bundle, US_AMD, {"arm": ARM_GROUP}) == (first, third)


KEYS = st.sampled_from(["region", "arch", "tier"])
VALUES = st.sampled_from(["a", "b", "c", ""])
LABELS = st.dictionaries(KEYS, VALUES, max_size=3)
REQUIREMENTS = st.one_of(
    st.builds(
        Requirement,
        KEYS,
        st.sampled_from(["In", "NotIn"]),
        st.lists(VALUES, min_size=1, max_size=3).map(tuple),
    ),
    st.builds(Requirement, KEYS, st.sampled_from(["Exists", "DoesNotExist"])),
)
SELECTORS = st.builds(
    LabelSelector,
    match_labels=st.dictionaries(KEYS, VALUES, max_size=2),
    match_expressions=st.lists(REQUIREMENTS, max_size=3).map(tuple),
)


@relaxed
@given(clusters=st.lists(LABELS, max_size=8), selector=SELECTORS)
def test_fleet_index_selects_exactly_the_clusters_the_predicate_matches(
    clusters: list[dict[str, str]], selector: LabelSelector
) -> None:
    fleet = [Cluster(f"c{i}", labels, ORIGIN) for i, labels in enumerate(clusters)]
    expected = {cluster.name for cluster in fleet if selector_matches(selector, cluster.labels)}
    index = ClusterIndex(fleet)
    assert index.names_of(index.select(selector)) == expected


@relaxed
@given(
    clusters=st.lists(LABELS, min_size=1, max_size=6),
    selector=st.none() | SELECTORS,
    group=st.none() | st.sampled_from(["arm", "ghost"]),
    name=st.none() | st.sampled_from(["c0", "c1", "nope"]),
)
def test_fleet_index_agrees_with_per_cluster_targeting(
    clusters: list[dict[str, str]], selector: LabelSelector | None, group: str | None, name: str | None
) -> None:
    fleet = [Cluster(f"c{i}", labels, ORIGIN) for i, labels in enumerate(clusters)]
    groups = {"arm": ClusterGroup("arm", LabelSelector(match_labels={"arch": "a"}), ORIGIN)}
    target = Target(line=1, cluster_name=name, cluster_selector=selector, cluster_group=group)
    bundle = Bundle(
        "b", "b", "b", ChartSource(kind="oci", oci_ref="oci://x/y", version="1"), ORIGIN, targets=(target,)
    )
    expected = {cluster.name for cluster in fleet if matching_targets(bundle, cluster, groups)}
    index = ClusterIndex(fleet)
    assert index.names_of(index.targeted(bundle, groups)) == expected
