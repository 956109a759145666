"""Nothing outside the fleet repo is ever read: every symlink that leads out (or loops) is a
problem named as a symlink, and the marker in the outside file appears in no output."""

from __future__ import annotations

import io
import os
import pathlib
from collections.abc import Callable

import pytest

from agent import fleet
from agent.fleet import commands
from tests.unit.fleet.repos import base_files, bundle, cluster, write_repo

MARKER = "OUTSIDE-MARKER-7f3a"
Attack = Callable[[pathlib.Path, pathlib.Path], str]
"""Plants a symlink in the repo (first argument) to the outside directory; returns the link's path."""


def link(root: pathlib.Path, relative: str, target: pathlib.Path | str) -> str:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        path.unlink()
    path.symlink_to(target)
    return relative


def cluster_file(root: pathlib.Path, outside: pathlib.Path) -> str:
    return link(root, "clusters/evil.yaml", outside / "cluster.yaml")


def group_file(root: pathlib.Path, outside: pathlib.Path) -> str:
    return link(root, "groups/arm.yaml", outside / "shadow")


def clusters_dir(root: pathlib.Path, outside: pathlib.Path) -> str:
    for path in (root / "clusters").iterdir():
        path.unlink()
    (root / "clusters").rmdir()
    return link(root, "clusters", outside / "clusters")


def bundle_dir(root: pathlib.Path, outside: pathlib.Path) -> str:
    return link(root, "bundles/evil", outside / "bundle")


def bundle_file(root: pathlib.Path, outside: pathlib.Path) -> str:
    return link(root, "bundles/web/bundle.yaml", outside / "bundle" / "bundle.yaml")


def values_file(root: pathlib.Path, outside: pathlib.Path) -> str:
    link(root, "bundles/web/values/prod.yaml", outside / "values.yaml")
    return "bundles/web/bundle.yaml"


def chart_template(root: pathlib.Path, outside: pathlib.Path) -> str:
    link(root, "charts/app/templates/leak.yaml", outside / "template.yaml")
    return "charts/app"


def chart_files_dir(root: pathlib.Path, outside: pathlib.Path) -> str:
    link(root, "charts/app/files", outside)
    return "charts/app"


def chart_file(root: pathlib.Path, outside: pathlib.Path) -> str:
    link(root, "charts/app/Chart.yaml", outside / "Chart.yaml")
    return "charts/app"


def chart_path(root: pathlib.Path, outside: pathlib.Path) -> str:
    link(root, "charts/evil", outside / "chart")
    (root / "bundles/web/bundle.yaml").write_text(
        (root / "bundles/web/bundle.yaml").read_text().replace("charts/app", "charts/evil")
    )
    return "bundles/web/bundle.yaml"


ATTACKS = [cluster_file, group_file, clusters_dir, bundle_dir, bundle_file, values_file, chart_template,
           chart_files_dir, chart_file, chart_path]  # fmt: skip


@pytest.fixture
def outside(tmp_path: pathlib.Path) -> pathlib.Path:
    """Files a commit must never be able to read: each is valid for what it pretends to be."""
    where = tmp_path / "outside"
    (where / "clusters").mkdir(parents=True)
    (where / "bundle").mkdir()
    (where / "chart" / "templates").mkdir(parents=True)
    (where / "cluster.yaml").write_text(cluster("evil", leak=MARKER))
    (where / "clusters" / "eu-1.yaml").write_text(cluster("eu-1", leak=MARKER))
    (where / "shadow").write_text("".join(f"root{i}:{MARKER}:19000:0:99999:7:::\n" for i in range(5)))
    (where / "bundle" / "bundle.yaml").write_text(
        bundle("evil", f"values:\n  leak: {MARKER}\ntargets:\n  - clusterSelector: {{}}\n").replace(
            "../../charts/app", "../../../repo/charts/app"
        )
    )
    (where / "values.yaml").write_text(f"leak: {MARKER}\n")
    (where / "template.yaml").write_text(f"kind: ConfigMap\ndata:\n  leak: {MARKER}\n")
    (where / "Chart.yaml").write_text(f"apiVersion: v2\nname: app\nversion: 1.0.0\ndescription: {MARKER}\n")
    (where / "chart" / "Chart.yaml").write_text("apiVersion: v2\nname: evil\nversion: 1.0.0\n")
    (where / "chart" / "templates" / "cm.yaml").write_text(f"data: {MARKER}\n")
    return where


def repo_with_values_file(root: pathlib.Path) -> pathlib.Path:
    files = base_files()
    files["bundles/web/bundle.yaml"] = bundle(
        "web", "valuesFiles: [values/prod.yaml]\ntargets:\n  - clusterSelector: {}\n"
    )
    files["bundles/web/values/prod.yaml"] = "replicas: 2\n"
    return write_repo(root, files)


def outputs(root: pathlib.Path) -> tuple[list[fleet.Problem], str]:
    """The problems, and everything validate and plan print, for every cluster, in both formats."""
    problems = fleet.validate_repo(root)
    printed = io.StringIO()
    commands.validate(str(root), stdout=printed, stderr=printed)
    for name in ("eu-1", "us-1", "evil"):
        for output_format in ("table", "json"):
            commands.plan(str(root), name, output_format, stdout=printed, stderr=printed)
    loaded = fleet.load_fleet(root)
    for name in loaded.clusters:
        printed.write(repr(fleet.plan_agent(loaded, name)))
    return problems, printed.getvalue() + repr(loaded)


@pytest.mark.parametrize("attack", ATTACKS, ids=[attack.__name__ for attack in ATTACKS])
def test_a_symlink_out_of_the_repo_is_a_problem_and_never_read(
    tmp_path: pathlib.Path, outside: pathlib.Path, attack: Attack
) -> None:
    root = repo_with_values_file(tmp_path / "repo")
    where = attack(root, outside)
    problems, printed = outputs(root)
    assert MARKER not in printed
    mine = [p for p in problems if p.file == where]
    assert mine, problems
    assert any("symlink" in p.message and "outside the fleet repo" in p.message for p in mine), mine


LOOPS = {
    "cluster file": ("clusters/loop.yaml", "clusters/loop.yaml"),
    "values file": ("bundles/web/values/prod.yaml", "bundles/web/bundle.yaml"),
    "chart file": ("charts/app/templates/loop.yaml", "charts/app"),
}


@pytest.mark.parametrize("where", list(LOOPS))
def test_a_symlink_loop_is_a_problem_not_a_traceback(tmp_path: pathlib.Path, where: str) -> None:
    root = repo_with_values_file(tmp_path / "repo")
    relative, reported = LOOPS[where]
    (root / relative).unlink(missing_ok=True)
    link(root, relative, os.path.basename(relative) + ".other")
    link(root, relative + ".other", os.path.basename(relative))
    problems = fleet.validate_repo(root)
    assert any(p.file == reported and "symlink loop" in p.message for p in problems), problems


def test_chart_path_that_is_a_symlink_loop(tmp_path: pathlib.Path) -> None:
    root = repo_with_values_file(tmp_path / "repo")
    link(root, "charts/a", "b")
    link(root, "charts/b", "a")
    text = (root / "bundles/web/bundle.yaml").read_text().replace("charts/app", "charts/a")
    (root / "bundles/web/bundle.yaml").write_text(text)
    problems = fleet.validate_repo(root)
    assert [(p.file, p.line) for p in problems] == [("bundles/web/bundle.yaml", 6)]
    assert "symlink loop" in problems[0].message


def test_symlinks_to_files_inside_the_repo_are_followed(tmp_path: pathlib.Path) -> None:
    root = repo_with_values_file(tmp_path / "repo")
    (root / "shared.yaml").write_text("replicas: 3\n")
    link(root, "bundles/web/values/prod.yaml", "../../../shared.yaml")
    link(root, "clusters/eu-2.yaml", "../eu-2.real")
    (root / "eu-2.real").write_text(cluster("eu-2"))
    repo = fleet.load_repo(root)
    assert "eu-2" in repo.clusters
    web = next(r for r in fleet.plan_cluster(repo, "eu-1").releases if r.bundle == "web")
    assert web.values["replicas"] == 3


def test_a_broken_symlinked_bundle_blocks_only_itself(tmp_path: pathlib.Path, outside: pathlib.Path) -> None:
    root = repo_with_values_file(tmp_path / "repo")
    bundle_dir(root, outside)
    plan = fleet.plan_agent(fleet.load_fleet(root), "eu-1")
    assert [r.bundle for r in plan.plan.releases] == ["base", "web"]
    assert "evil" in plan.protected_bundles
