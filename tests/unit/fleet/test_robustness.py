"""Whatever is in the files, loading and planning either succeed or report problems: no other
exception ever escapes for bad input."""

from __future__ import annotations

import pathlib
import tempfile
from typing import Any

import yaml
from hypothesis import given
from hypothesis import strategies as st

from agent import fleet
from tests.unit.fleet.repos import HEADER, base_files, relaxed_io, write_repo

FIELD_NAMES = st.sampled_from(
    ["name", "namespace", "chart", "path", "repo", "oci", "version", "values", "valuesFiles", "valuesFrom",
     "targets", "clusterName", "clusterSelector", "clusterGroup", "matchLabels", "matchExpressions", "key",
     "operator", "dependsOn", "paused", "helm", "timeoutSeconds", "kind", "labels", "x"]
)  # fmt: skip
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["web", "base", "../../charts/app", "../..", "In", "Exists", "^1.0", "eu-1", "arm"]),
    st.just("nul\x00byte"),
)  # fmt: skip
DATA = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(FIELD_NAMES, inner, max_size=5),
    max_leaves=25,
)


def check_no_crash(files: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory() as temp:
        root = write_repo(pathlib.Path(temp), files)
        problems = fleet.validate_repo(root)
        assert all(isinstance(problem, fleet.Problem) for problem in problems)
        if not problems:
            repo = fleet.load_repo(root)
            for name in repo.clusters:
                fleet.plan_cluster(repo, name)


@relaxed_io
@given(body=st.dictionaries(FIELD_NAMES, DATA, max_size=8))
def test_any_bundle_content_gives_problems_or_a_plan(body: dict[str, Any]) -> None:
    files = base_files()
    document = {"kind": "Bundle", "name": "web", **body}
    files["bundles/web/bundle.yaml"] = HEADER + yaml.safe_dump(document)
    check_no_crash(files)


@relaxed_io
@given(
    body=st.dictionaries(FIELD_NAMES, DATA, max_size=5), group=st.dictionaries(FIELD_NAMES, DATA, max_size=5)
)
def test_any_cluster_and_group_content_gives_problems_or_a_plan(
    body: dict[str, Any], group: dict[str, Any]
) -> None:
    files = base_files()
    files["clusters/eu-1.yaml"] = HEADER + yaml.safe_dump({"kind": "Cluster", **body})
    files["groups/arm.yaml"] = HEADER + yaml.safe_dump({"kind": "ClusterGroup", **group})
    check_no_crash(files)


@relaxed_io
@given(text=st.text(alphabet=st.sampled_from(list("ab:-[]{}&*!|>'\"#\n\t ?,%@`0")), max_size=60))
def test_any_text_gives_problems_or_a_plan(text: str) -> None:
    files = base_files()
    files["bundles/web/bundle.yaml"] = text
    files["clusters/us-1.yaml"] = text
    check_no_crash(files)
