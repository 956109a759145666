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
from tests.unit.fleet.strategies import DATA, FIELD_NAMES


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
