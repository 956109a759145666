"""Charts from real registries: an OCI registry (Debian's docker-registry, htpasswd basic auth) with
charts pushed by ``helm push``, and an HTTP Helm repository behind basic auth.  The credentials
come from the agent's credentials file, never from the fleet repo, and never reach a report or
a log.  A registry outage uninstalls nothing and is reported; the next pass after it recovers
applies."""

from __future__ import annotations

import base64
import http.server
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from structlog.testing import capture_logs

from tests.fixtures.registry import Registry, chart_repository_server, package_chart
from tests.integration.agent.harness import (
    APP_CHART,
    bundle_file,
    by_bundle,
    cluster_file,
    flotilla_releases,
    get,
)

pytestmark = pytest.mark.cluster

USER = "edge-puller"
PASSWORD = "registry-pa55-that-must-not-leak"


def credentials_file(path: Path, host: str, *, plain_http: bool = True) -> Path:
    entry: dict[str, object] = {"username": USER, "password": PASSWORD}
    if plain_http:
        entry["plain_http"] = True
    path.write_text(yaml.safe_dump({"chart_registries": {host: entry}}))
    return path


@pytest.fixture
def oci_registry(cluster, registry_factory, tmp_path: Path) -> Registry:
    """An authenticated registry holding the app chart at 1.0.0, 1.1.0 and 2.0.0."""
    registry = registry_factory(username=USER, password=PASSWORD).start()
    env = {**cluster.env(), "HELM_CONFIG_HOME": str(tmp_path / "push-helm")}
    for version in ("1.0.0", "1.1.0", "2.0.0"):
        registry.push(
            cluster.tools.helm, package_chart(cluster.tools.helm, APP_CHART, version, tmp_path, env), env
        )
    return registry


def test_an_oci_chart_installs_upgrades_by_version_and_range_with_basic_auth_and_survives_an_outage(
    cluster, oci_registry, fleet_repo_factory, harness_factory, unique, tmp_path
):
    def web(version: str) -> str:
        return bundle_file("web", unique, targets=[{"clusterName": unique}], values={"region": "oci"},
                           chart={"oci": f"{oci_registry.oci()}/app", "version": version})  # fmt: skip

    repo = fleet_repo_factory(
        {f"clusters/{unique}.yaml": cluster_file(unique, {}), "bundles/web/bundle.yaml": web("1.0.0")}
    )
    assert PASSWORD not in repo.clone.path.joinpath("bundles/web/bundle.yaml").read_text()
    creds = credentials_file(tmp_path / "credentials.yaml", oci_registry.host)
    agent = harness_factory(cluster, unique, repo.url, interval=1.0,
                            chart_access=_settings_access(creds))  # fmt: skip

    with capture_logs() as logs:
        outcome, report = agent.run_pass()
    assert by_bundle(outcome)["web"].state == "Ready", by_bundle(outcome)["web"].message
    assert report.bundles[0].chart_version == "1.0.0"
    assert get(cluster, f"/api/v1/namespaces/{unique}/configmaps/web-config")["data"]["region"] == "oci"

    repo.write({"bundles/web/bundle.yaml": web(">=1.1.0 <2.0.0")}, "web: a range")
    with capture_logs() as more:
        outcome, report = agent.run_pass()
    logs += more
    assert report.bundles[0].state == "Ready", report.bundles[0].message
    assert report.bundles[0].chart_version == "1.1.0"  # the newest in range, not 2.0.0
    revision = report.bundles[0].helm_revision

    # The registry goes away; a commit asks for 2.0.0.  Nothing is uninstalled, the error is reported.
    oci_registry.stop()
    repo.write({"bundles/web/bundle.yaml": web("2.0.0")}, "web: 2.0.0")
    with capture_logs() as more:
        outcome, report = agent.run_pass()
    logs += more
    web_status = report.bundles[0]
    assert web_status.state == "Failed"
    assert oci_registry.host in web_status.message
    assert flotilla_releases(cluster, unique) == {(unique, "web")}
    assert web_status.helm_revision == revision  # still the 1.1.0 release, untouched
    assert get(cluster, f"/apis/apps/v1/namespaces/{unique}/deployments/web") is not None

    # The registry is back: the next pass (after the retry delay) upgrades.
    oci_registry.start()
    time.sleep(1.2)
    with capture_logs() as more:
        outcome, report = agent.run_pass()
    logs += more
    assert report.bundles[0].state == "Ready", report.bundles[0].message
    assert report.bundles[0].chart_version == "2.0.0"

    for text in (repr(logs), report.to_json(), _files_under(agent.state_dir)):
        assert PASSWORD not in text
        assert base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode() not in text


def test_an_oci_registry_refuses_an_agent_without_credentials_with_a_clear_error(
    cluster, oci_registry, fleet_repo_factory, harness_factory, unique, tmp_path
):
    bundle = bundle_file("web", unique, targets=[{"clusterName": unique}],
                         chart={"oci": f"{oci_registry.oci()}/app", "version": "1.0.0"})  # fmt: skip
    repo = fleet_repo_factory(
        {f"clusters/{unique}.yaml": cluster_file(unique, {}), "bundles/web/bundle.yaml": bundle}
    )
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(yaml.safe_dump({"chart_registries": {oci_registry.host: {"plain_http": True}}}))
    agent = harness_factory(cluster, unique, repo.url, chart_access=_settings_access(wrong))
    _, report = agent.run_pass()
    assert report.bundles[0].state == "Failed"
    assert "credential" in report.bundles[0].message.lower() or "401" in report.bundles[0].message
    assert flotilla_releases(cluster, unique) == set()


# ------------------------------------------------------------------- HTTP repository, basic auth


class _AuthHandler(http.server.SimpleHTTPRequestHandler):
    expected = ""

    def do_GET(self) -> None:
        if self.headers.get("Authorization") != f"Basic {self.expected}":
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="charts"')
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def private_repository(cluster, tmp_path: Path) -> Iterator[str]:
    served = tmp_path / "private-charts"
    served.mkdir()
    for version in ("1.0.0", "1.1.0"):
        package = package_chart(cluster.tools.helm, APP_CHART, version, tmp_path, cluster.env())
        package.rename(served / package.name)
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    handler = type("Handler", (_AuthHandler,), {"expected": token})
    with chart_repository_server(cluster.tools.helm, served, cluster.env(), handler) as url:
        yield url


def test_an_http_repository_with_basic_auth_installs_with_the_sites_credentials(
    cluster, private_repository, fleet_repo_factory, harness_factory, unique, tmp_path
):
    bundle = bundle_file("web", unique, targets=[{"clusterName": unique}],
                         chart={"repo": private_repository, "name": "app", "version": "~1.0"})  # fmt: skip
    repo = fleet_repo_factory(
        {f"clusters/{unique}.yaml": cluster_file(unique, {}), "bundles/web/bundle.yaml": bundle}
    )
    host = private_repository.removeprefix("http://")

    anonymous = harness_factory(cluster, unique, repo.url, interval=1.0)
    _, refused = anonymous.run_pass()
    assert refused.bundles[0].state == "Failed"
    assert "401" in refused.bundles[0].message or "unauthorized" in refused.bundles[0].message.lower()
    anonymous.restart()

    creds = credentials_file(tmp_path / "credentials.yaml", host, plain_http=False)
    # The same site (same state directory), now configured: the next pass after the retry delay installs.
    helm, argv_log = _recording_helm(cluster.tools.helm, tmp_path)
    agent = harness_factory(
        cluster, unique, repo.url, interval=1.0, chart_access=_settings_access(creds), helm=str(helm)
    )
    time.sleep(1.2)
    with capture_logs() as logs:
        _, report = agent.run_pass()
    assert report.bundles[0].state == "Ready", report.bundles[0].message
    assert report.bundles[0].chart_version == "1.0.0"
    assert PASSWORD not in repr(logs) + report.to_json()
    # Any local user can read a command line: the password reached helm on stdin only.
    argv = argv_log.read_text()
    assert "repo add" in argv, argv
    assert "upgrade" in argv, argv
    assert PASSWORD not in argv
    assert PASSWORD not in _files_under(agent.state_dir)


def _recording_helm(real: str, tmp_path: Path) -> tuple[Path, Path]:
    """The real helm behind a wrapper that writes down every command line it is given."""
    argv_log = tmp_path / "helm-argv.log"
    wrapper = tmp_path / "helm-recording"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> {argv_log}\nexec {real} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper, argv_log


def _settings_access(path: Path):  # type: ignore[no-untyped-def]
    """The chart access exactly as the agent reads it from its credentials file."""
    from agent.settings import _read_credentials

    return _read_credentials(path)[1]


def _files_under(root: Path) -> str:
    return "".join(p.read_bytes().decode(errors="replace") for p in root.rglob("*") if p.is_file())
