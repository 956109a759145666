"""One small broken repo per kind of mistake: validate names the file and the line, and says what
is wrong. Each case starts from a valid repo and changes one file."""

from __future__ import annotations

import pathlib
import textwrap
from collections.abc import Callable

import pytest

from agent import fleet
from tests.unit.fleet.repos import HEADER, base_files, bundle, cluster, write_repo

Files = dict[str, str]

CASES: list[tuple[str, Callable[[Files], None], str, int, str]] = []


def case(file: str, line: int, expected: str) -> Callable[[Callable[[Files], None]], Callable[[Files], None]]:
    def register(change: Callable[[Files], None]) -> Callable[[Files], None]:
        CASES.append((change.__name__, change, file, line, expected))
        return change

    return register


@case("clusters/eu-1.yaml", 5, "YAML syntax error: mapping values are not allowed")
def yaml_syntax_error(files: Files) -> None:
    files["clusters/eu-1.yaml"] = f"{HEADER}kind: Cluster\nname: eu-1\nlabels:\n  region: eu: west\n"


@case("clusters/eu-1.yaml", 6, "duplicate key 'region' (first set on line 5)")
def duplicate_key(files: Files) -> None:
    files["clusters/eu-1.yaml"] = f"{HEADER}kind: Cluster\nname: eu-1\nlabels:\n  region: eu\n  region: us\n"


@case("bundles/web/bundle.yaml", 5, "unknown field 'chrt' in the top level (did you mean 'chart'?)")
def misspelled_top_level_field(files: Files) -> None:
    files["bundles/web/bundle.yaml"] = files["bundles/web/bundle.yaml"].replace("chart:", "chrt:")


@case(
    "bundles/web/bundle.yaml",
    12,
    "unknown field 'clusterSelecter' in targets[0] (did you mean 'clusterSelector'?)",
)
def misspelled_nested_field(files: Files) -> None:
    files["bundles/web/bundle.yaml"] = files["bundles/web/bundle.yaml"].replace(
        "- clusterSelector: {}", "- clusterSelecter: {}"
    )


@case("bundles/web/bundle.yaml", 9, "values: expected a mapping, got list")
def values_of_wrong_type(files: Files) -> None:
    files["bundles/web/bundle.yaml"] = files["bundles/web/bundle.yaml"].replace(
        "  replicas: 1", "  - replicas"
    )


@case("bundles/base/bundle.yaml", 9, "paused: expected true or false, got string 'sometimes'")
def paused_of_wrong_type(files: Files) -> None:
    files["bundles/base/bundle.yaml"] += "paused: sometimes\n"


@case("clusters/us-1.yaml", 7, "labels.tier: expected a string, got integer 1")
def unquoted_numeric_label(files: Files) -> None:
    files["clusters/us-1.yaml"] += "  tier: 1\n"


@case("clusters/us-1.yaml", 3, "name: 'US_1' is not valid: use lowercase letters")
def invalid_name(files: Files) -> None:
    files["clusters/us-1.yaml"] = cluster("US_1", region="us")


@case("clusters/us-1.yaml", 2, "a file under clusters/ must have kind 'Cluster', got 'Bundle'")
def wrong_kind(files: Files) -> None:
    files["clusters/us-1.yaml"] = files["clusters/us-1.yaml"].replace("kind: Cluster", "kind: Bundle")


@case("clusters/us-1.yaml", 1, "apiVersion must be 'flotilla.dev/v1alpha1', got 'v1'")
def wrong_api_version(files: Files) -> None:
    files["clusters/us-1.yaml"] = files["clusters/us-1.yaml"].replace("flotilla.dev/v1alpha1", "v1")


@case("bundles/base/bundle.yaml", 1, "missing required field 'namespace'")
def missing_required_field(files: Files) -> None:
    files["bundles/base/bundle.yaml"] = files["bundles/base/bundle.yaml"].replace("namespace: base\n", "")


@case("bundles/web/bundle.yaml", 6, "chart.path '../../charts/missing': no such directory (charts/missing)")
def missing_chart_path(files: Files) -> None:
    files["bundles/web/bundle.yaml"] = files["bundles/web/bundle.yaml"].replace(
        "charts/app", "charts/missing"
    )


@case("bundles/web/bundle.yaml", 6, "charts has no Chart.yaml")
def chart_path_without_chart_yaml(files: Files) -> None:
    files["bundles/web/bundle.yaml"] = files["bundles/web/bundle.yaml"].replace(
        "../../charts/app", "../../charts"
    )


@case("charts/app/Chart.yaml", 3, "a chart needs a semver 'version' (like 1.2.3), got 'one'")
def local_chart_without_a_semver_version(files: Files) -> None:
    files["charts/app/Chart.yaml"] = "apiVersion: v2\nname: app\nversion: one\n"


@case("bundles/web/bundle.yaml", 6, "is not a path inside the fleet repo")
def chart_path_outside_the_repo(files: Files) -> None:
    files["bundles/web/bundle.yaml"] = files["bundles/web/bundle.yaml"].replace(
        "../../charts/app", "../../../x"
    )


@case("bundles/web/bundle.yaml", 5, "chart needs exactly one of 'path', 'repo' or 'oci' (found path and oci)")
def two_chart_sources(files: Files) -> None:
    files["bundles/web/bundle.yaml"] = files["bundles/web/bundle.yaml"].replace(
        "  path: ../../charts/app\n", "  path: ../../charts/app\n  oci: oci://r.example.com/c/app\n"
    )


@case("bundles/web/bundle.yaml", 8, "chart.version 'latest' is neither a version nor a semver range")
def invalid_version_range(files: Files) -> None:
    files["bundles/web/bundle.yaml"] = files["bundles/web/bundle.yaml"].replace(
        "  path: ../../charts/app\n", "  repo: https://charts.example.com\n  name: app\n  version: latest\n"
    )


@case("bundles/web/bundle.yaml", 5, "a chart from 'repo' needs chart.version")
def repo_chart_without_version(files: Files) -> None:
    files["bundles/web/bundle.yaml"] = files["bundles/web/bundle.yaml"].replace(
        "  path: ../../charts/app\n", "  repo: https://charts.example.com\n  name: app\n"
    )


@case("bundles/web/bundle.yaml", 3, "bundle name 'webapp' must match its directory 'web'")
def bundle_name_differs_from_directory(files: Files) -> None:
    files["bundles/web/bundle.yaml"] = files["bundles/web/bundle.yaml"].replace("name: web", "name: webapp")


@case(
    "groups/arm.yaml", 7, "operator: 'in' is not one of In, NotIn, Exists, DoesNotExist (did you mean 'In'?)"
)
def invalid_selector_operator(files: Files) -> None:
    files["groups/arm.yaml"] = HEADER + textwrap.dedent(
        """\
        kind: ClusterGroup
        name: arm
        selector:
          matchExpressions:
            - key: arch
              operator: in
              values: [arm64]
        """
    )


@case("groups/arm.yaml", 6, "operator In needs a non-empty 'values' list")
def in_operator_without_values(files: Files) -> None:
    files["groups/arm.yaml"] = HEADER + "kind: ClusterGroup\nname: arm\nselector:\n  matchExpressions:\n"
    files["groups/arm.yaml"] += "    - key: arch\n      operator: In\n"


@case("bundles/web/bundle.yaml", 13, "unknown cluster group 'amr' (did you mean 'arm'?)")
def unknown_group_in_target(files: Files) -> None:
    files["bundles/web/bundle.yaml"] = files["bundles/web/bundle.yaml"].replace(
        "  - clusterSelector: {}\n", "  - clusterSelector: {}\n  - clusterGroup: amr\n"
    )


@case("bundles/web/bundle.yaml", 12, "unknown cluster 'eu-2' (did you mean 'eu-1'?)")
def unknown_cluster_in_target(files: Files) -> None:
    files["bundles/web/bundle.yaml"] = files["bundles/web/bundle.yaml"].replace(
        "  - clusterSelector: {}\n", "  - clusterName: eu-2\n"
    )


@case("bundles/web/bundle.yaml", 12, "a target needs clusterName, clusterSelector or clusterGroup")
def target_without_selector(files: Files) -> None:
    files["bundles/web/bundle.yaml"] = files["bundles/web/bundle.yaml"].replace(
        "  - clusterSelector: {}\n", "  - values: {a: 1}\n"
    )


@case("clusters/zz-copy.yaml", 3, "duplicate cluster name 'eu-1' (also in clusters/eu-1.yaml:3)")
def duplicate_cluster_name(files: Files) -> None:
    files["clusters/zz-copy.yaml"] = cluster("eu-1", region="eu")


@case(
    "bundles/web2/bundle.yaml",
    3,
    "bundles 'web' and 'web2' both install release 'web' in namespace 'web' on cluster eu-1",
)
def two_bundles_same_release_on_one_cluster(files: Files) -> None:
    files["bundles/web2/bundle.yaml"] = bundle(
        "web2", "releaseName: web\ntargets:\n  - clusterName: eu-1\n", namespace="web"
    )


@case("bundles/web/bundle.yaml", 8, "dependsOn unknown bundle 'bsae' (did you mean 'base'?)")
def depends_on_unknown_bundle(files: Files) -> None:
    files["bundles/web/bundle.yaml"] = files["bundles/web/bundle.yaml"].replace("  - base\n", "  - bsae\n")


@case("bundles/web/bundle.yaml", 8, "bundle 'web' depends on itself")
def depends_on_itself(files: Files) -> None:
    files["bundles/web/bundle.yaml"] = files["bundles/web/bundle.yaml"].replace("  - base\n", "  - web\n")


@case("bundles/api/bundle.yaml", 7, "dependsOn cycle: api -> web -> base -> api")
def depends_on_cycle(files: Files) -> None:
    files["bundles/api/bundle.yaml"] = bundle("api", "dependsOn: [web]\ntargets:\n  - clusterSelector: {}\n")
    files["bundles/base/bundle.yaml"] = files["bundles/base/bundle.yaml"].replace(
        "targets:", "dependsOn:\n  - api\ntargets:"
    )


@case("bundles/web/bundle.yaml", 8, "depends on 'base', which is not targeted at cluster us-1")
def dependency_not_targeted_where_dependent_is(files: Files) -> None:
    files["bundles/base/bundle.yaml"] = files["bundles/base/bundle.yaml"].replace(
        "  - clusterSelector: {}", "  - clusterGroup: arm"
    )


@case("bundles/web/values/prod.yaml", 2, "duplicate key 'a'")
def broken_values_file(files: Files) -> None:
    files["bundles/web/values/prod.yaml"] = "a: 1\na: 2\n"
    files["bundles/web/bundle.yaml"] += "valuesFiles: [values/prod.yaml]\n"


@case(
    "bundles/web/bundle.yaml",
    14,
    "values file 'values/none.yaml': no such file (bundles/web/values/none.yaml)",
)
def missing_values_file(files: Files) -> None:
    files["bundles/web/bundle.yaml"] += "valuesFiles:\n  - values/none.yaml\n"


@case("bundles/web/values/list.yaml", 1, "a values file must be a YAML mapping")
def values_file_not_a_mapping(files: Files) -> None:
    files["bundles/web/values/list.yaml"] = "- a\n- b\n"
    files["bundles/web/bundle.yaml"] += "valuesFiles: [values/list.yaml]\n"


@case("bundles/empty", 0, "bundle directory has no bundle.yaml")
def bundle_directory_without_bundle_file(files: Files) -> None:
    files["bundles/empty/README.md"] = "nothing here\n"


@pytest.mark.parametrize(
    ("change", "file", "line", "expected"),
    [pytest.param(change, file, line, expected, id=name) for name, change, file, line, expected in CASES],
)
def test_each_mistake_is_reported_at_its_file_and_line(
    tmp_path: pathlib.Path, change: Callable[[Files], None], file: str, line: int, expected: str
) -> None:
    files = base_files()
    change(files)
    problems = fleet.validate_repo(write_repo(tmp_path, files))
    assert [(p.file, p.line) for p in problems] == [(file, line)], problems
    assert expected in problems[0].message


def test_the_base_repo_is_valid(tmp_path: pathlib.Path) -> None:
    assert fleet.validate_repo(write_repo(tmp_path, base_files())) == []


def test_every_problem_is_reported_not_only_the_first(tmp_path: pathlib.Path) -> None:
    files = base_files()
    for _, change, *_ in CASES[:6]:
        change(files)
    problems = fleet.validate_repo(write_repo(tmp_path, files))
    assert len(problems) >= 5
    assert problems == sorted(problems)


def test_load_repo_raises_with_every_problem(tmp_path: pathlib.Path) -> None:
    files = base_files()
    misspelled_top_level_field(files)
    duplicate_cluster_name(files)
    with pytest.raises(fleet.FleetRepoError) as raised:
        fleet.load_repo(write_repo(tmp_path, files))
    assert [problem.file for problem in raised.value.problems] == [
        "bundles/web/bundle.yaml",
        "clusters/zz-copy.yaml",
    ]


def test_not_a_fleet_repo(tmp_path: pathlib.Path) -> None:
    assert [p.message for p in fleet.validate_repo(tmp_path)] == [
        "no clusters/ directory: is this a fleet repo?",
    ]
    assert "is not a directory" in fleet.validate_repo(tmp_path / "nowhere")[0].message


def test_no_bundles_directory_is_a_fleet_with_no_bundles(tmp_path: pathlib.Path) -> None:
    """Git keeps no empty directory: deleting the last bundle removes bundles/ itself."""
    files = {name: text for name, text in base_files().items() if not name.startswith("bundles/")}
    repo = fleet.load_repo(write_repo(tmp_path, files))
    assert repo.bundles == {}
    assert fleet.plan_cluster(repo, "eu-1").releases == ()


def test_a_file_that_is_not_utf8_is_a_problem(tmp_path: pathlib.Path) -> None:
    write_repo(tmp_path, base_files())
    (tmp_path / "clusters" / "bad.yaml").write_bytes(b"name: \xff\xfe\n")
    problems = fleet.validate_repo(tmp_path)
    assert [(p.file, p.line) for p in problems] == [("clusters/bad.yaml", 0)]
    assert "cannot read file" in problems[0].message


def test_a_cycle_through_a_bundle_with_another_problem_is_still_found(tmp_path: pathlib.Path) -> None:
    files = base_files()
    misspelled_top_level_field(files)  # web no longer loads: 'chrt'
    files["bundles/base/bundle.yaml"] = files["bundles/base/bundle.yaml"].replace(
        "targets:", "dependsOn:\n  - web\ntargets:"
    )
    problems = fleet.validate_repo(write_repo(tmp_path, files))
    assert [(p.file, p.line, p.message) for p in problems] == [
        ("bundles/base/bundle.yaml", 8, "dependsOn cycle: base -> web -> base"),
        ("bundles/web/bundle.yaml", 5, "unknown field 'chrt' in the top level (did you mean 'chart'?)"),
    ]
