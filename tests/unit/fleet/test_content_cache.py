"""The agent's content cache never changes an answer: after any edit, a load that reuses the last
load's work gives exactly what a fresh load of the same files gives."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable

import pytest

from agent import fleet
from tests.unit.fleet.repos import base_files, bundle, cluster, write_repo

Edit = Callable[[pathlib.Path], None]


def summary(loaded: fleet.LoadedFleet, cache: fleet.ContentCache | None = None) -> object:
    plans = {}
    for name in ("eu-1", "us-1", "eu-2"):
        try:
            plan = fleet.plan_agent(loaded, name, cache)
        except (fleet.FleetRepoError, fleet.UnknownClusterError) as error:
            plans[name] = type(error).__name__
            continue
        plans[name] = (
            [(r.bundle, r.digest, r.values) for r in plan.plan.releases],
            plan.blocked,
            sorted(plan.protected_bundles),
        )
    return loaded.problems, plans


def rewrite(path: pathlib.Path, old: str, new: str) -> None:
    path.write_text(path.read_text().replace(old, new))


EDITS: dict[str, Edit] = {
    "values file, same size": lambda root: rewrite(root / "bundles/web/values/prod.yaml", "2", "3"),
    "values file deleted": lambda root: (root / "bundles/web/values/prod.yaml").unlink(),
    "values file now a symlink out": lambda root: (
        (root / "bundles/web/values/prod.yaml").unlink(),
        (root / "bundles/web/values/prod.yaml").symlink_to(root.parent / "outside.yaml"),
    ),
    "values file now a symlink inside": lambda root: (
        (root / "bundles/web/values/prod.yaml").unlink(),
        (root / "bundles/web/values/prod.yaml").symlink_to("../../../shared.yaml"),
    ),
    "shared target edited": lambda root: (root / "shared.yaml").write_text("replicas: 9\n"),
    "chart template edited": lambda root: rewrite(root / "charts/app/templates/cm.yaml", "v1", "v2"),
    "chart file added": lambda root: (root / "charts/app/templates/new.yaml").write_text("kind: Secret\n"),
    "chart version broken": lambda root: rewrite(root / "charts/app/Chart.yaml", "1.0.0", "one"),
    "chart file symlinked out": lambda root: (root / "charts/app/templates/x.yaml").symlink_to(
        root.parent / "outside.yaml"
    ),
    "cluster relabelled": lambda root: rewrite(root / "clusters/eu-1.yaml", "arm64", "amd64"),
    "cluster added": lambda root: (root / "clusters/eu-2.yaml").write_text(cluster("eu-2", arch="arm64")),
    "bundle added": lambda root: write_repo(
        root,
        {"bundles/api/bundle.yaml": bundle("api", "dependsOn: [web]\ntargets:\n  - clusterGroup: arm\n")},
    ),
    "bundle broken": lambda root: rewrite(root / "bundles/base/bundle.yaml", "namespace:", "namepsace:"),
    "bundle directory removed": lambda root: (
        [path.unlink() for path in (root / "bundles/base").iterdir()] and (root / "bundles/base").rmdir()
    ),
}


@pytest.mark.parametrize("edits", [[name] for name in EDITS] + [list(EDITS)], ids=[*EDITS, "all in turn"])
def test_a_cached_load_equals_a_fresh_load_after_every_edit(tmp_path: pathlib.Path, edits: list[str]) -> None:
    files = base_files()
    files["bundles/web/bundle.yaml"] = bundle(
        "web", "dependsOn: [base]\nvaluesFiles: [values/prod.yaml]\ntargets:\n  - clusterSelector: {}\n"
    )
    files["bundles/web/values/prod.yaml"] = "replicas: 2\n"
    files["shared.yaml"] = "replicas: 5\n"
    root = write_repo(tmp_path / "repo", files)
    (tmp_path / "outside.yaml").write_text("leak: OUTSIDE\n")
    cache = fleet.ContentCache()
    fleet.load_fleet(root, cache=cache)
    for name in edits:
        if name == "shared target edited" and not (root / "bundles/web/values/prod.yaml").is_symlink():
            EDITS["values file now a symlink inside"](root)
            fleet.load_fleet(root, cache=cache)
        if (
            not os.path.lexists(root / "bundles/web/values/prod.yaml")
            and "values file" in name
            and "deleted" not in name
        ):
            (root / "bundles/web/values/prod.yaml").write_text("replicas: 2\n")
        EDITS[name](root)
        assert summary(fleet.load_fleet(root, cache=cache), cache) == summary(fleet.load_fleet(root)), name
        assert summary(fleet.load_fleet(root, cache=cache), cache) == summary(fleet.load_fleet(root)), name
