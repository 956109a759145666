"""A bundle whose chart comes from an HTTP Helm repository (served on loopback): the agent installs
the newest version the semver range allows, and a range that matches nothing fails with Helm's
message."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.fixtures.registry import chart_repository_server
from tests.integration.agent.harness import APP_CHART, bundle_file, by_bundle, cluster_file, get

pytestmark = pytest.mark.cluster


@pytest.fixture
def chart_repository(cluster, tmp_path: Path) -> Iterator[str]:
    """A Helm repository with the test app chart at versions 1.0.0, 1.1.0 and 2.0.0."""
    served = tmp_path / "charts"
    served.mkdir()
    for version in ("1.0.0", "1.1.0", "2.0.0"):
        chart = tmp_path / f"app-{version}"
        shutil.copytree(APP_CHART, chart)
        metadata = yaml.safe_load((chart / "Chart.yaml").read_text())
        metadata["version"] = version
        (chart / "Chart.yaml").write_text(yaml.safe_dump(metadata))
        subprocess.run([cluster.tools.helm, "package", str(chart), "--destination", str(served)],
                       check=True, capture_output=True, env=cluster.env())  # fmt: skip
    with chart_repository_server(cluster.tools.helm, served, cluster.env()) as url:
        yield url


def test_a_chart_from_an_http_repository_is_installed_at_the_newest_version_in_range(
    cluster, chart_repository, fleet_repo_factory, harness_factory, unique
):
    def web(version: str) -> str:
        return bundle_file(
            "web", unique, targets=[{"clusterName": unique}], values={"region": "from-repo"},
            chart={"repo": chart_repository, "name": "app", "version": version},
        )  # fmt: skip

    repo = fleet_repo_factory(
        {f"clusters/{unique}.yaml": cluster_file(unique, {}), "bundles/web/bundle.yaml": web("^1.0.0")}
    )
    agent = harness_factory(cluster, unique, repo.url)

    outcome, report = agent.run_pass()

    assert outcome.ok, outcome
    assert report.bundles[0].chart_version == "1.1.0"
    assert get(cluster, f"/api/v1/namespaces/{unique}/configmaps/web-config")["data"]["region"] == "from-repo"

    repo.write({"bundles/web/bundle.yaml": web("^3.0.0")}, "a range nothing matches")
    outcome, _ = agent.run_pass()
    web_outcome = by_bundle(outcome)["web"]
    assert web_outcome.state == "Failed"
    assert "3.0.0" in web_outcome.message
    assert web_outcome.chart_version == "1.1.0"  # what runs is untouched
    assert web_outcome.helm_revision == 1
