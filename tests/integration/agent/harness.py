"""Building blocks for the agent's integration tests: a small fleet repo pushed to a real Git server
on loopback, and an agent whose passes run in-process against a real local cluster."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from agent.loop import Agent
from agent.reconcile import PassOutcome, ReleaseOutcome
from agent.settings import AgentSettings
from hub import contract
from tests.fixtures.gitserver import GitServer, WorkingClone
from tests.localcluster import Cluster

APP_CHART = Path(__file__).resolve().parents[2] / "charts" / "app"
API_VERSION = "flotilla.dev/v1alpha1"


def cluster_file(name: str, labels: Mapping[str, str]) -> str:
    return yaml.safe_dump(
        {"apiVersion": API_VERSION, "kind": "Cluster", "name": name, "labels": dict(labels)}
    )


def bundle_file(name: str, namespace: str, **spec: Any) -> str:
    """A bundle of the test app chart; ``spec`` adds or overrides fields (values, targets, ...)."""
    document: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": "Bundle",
        "name": name,
        "namespace": namespace,
        "chart": {"path": "../../charts/app"},
        "helm": {"timeoutSeconds": 60},
    }
    document.update(spec)
    return yaml.safe_dump(document, sort_keys=False)


@dataclass
class FleetRepo:
    """A working clone of a fleet repo on the Git server: edit files, commit, push."""

    clone: WorkingClone
    url: str

    def write(self, files: Mapping[str, str | None], message: str) -> str:
        """Write (or, for None, delete) files, commit and push; returns the new commit."""
        for relative, text in files.items():
            if text is None:
                self.clone.remove(relative)
            else:
                self.clone.write(relative, text)
        return self.clone.commit_and_push(message)


def make_fleet_repo(server: GitServer, workdir: Path, name: str, files: Mapping[str, str]) -> FleetRepo:
    """A new repo on ``server`` holding the test app chart and ``files``."""
    seed = workdir / f"{name}-seed"
    shutil.copytree(APP_CHART, seed / "charts" / "app")
    for relative, text in files.items():
        path = seed / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    url = server.create_repo(name, from_dir=seed)
    return FleetRepo(WorkingClone.clone(url, workdir / f"{name}-clone"), url)


@dataclass
class AgentHarness:
    """An agent for one cluster name; each ``run_pass`` is one real pass (git, helm, API server)."""

    cluster: Cluster
    cluster_name: str
    repo_url: str
    state_dir: Path
    overrides: dict[str, Any] = field(default_factory=dict)
    agent: Agent | None = None

    def settings(self) -> AgentSettings:
        values: dict[str, Any] = {
            "repo_url": self.repo_url,
            "cluster": self.cluster_name,
            "state_dir": self.state_dir,
            "kubeconfig": self.cluster.agent_kubeconfig,
            "helm": self.cluster.tools.helm,
            "interval": 5.0,
        }
        values.update(self.overrides)
        return AgentSettings(**values)

    def run_pass(self) -> tuple[PassOutcome, contract.StatusReport]:
        if self.agent is None:
            self.agent = Agent.from_settings(self.settings())
        return self.agent.run_pass()

    def command(self, subcommand: str = "once") -> list[str]:
        """The same agent as a ``flotilla-agent`` process (the installed console script)."""
        return [
            str(Path(sys.executable).parent / "flotilla-agent"), subcommand,
            "--repo-url", self.repo_url, "--cluster", self.cluster_name, "--state-dir", str(self.state_dir),
            "--kubeconfig", str(self.cluster.agent_kubeconfig), "--helm", self.cluster.tools.helm,
        ]  # fmt: skip

    def restart(self) -> None:
        """Forget the in-memory agent, as a process restart would; the state directory stays."""
        if self.agent is not None:
            self.agent.close()
        self.agent = None


def by_bundle(outcome: PassOutcome) -> dict[str, ReleaseOutcome]:
    return {release.bundle: release for release in outcome.releases}


def get(cluster: Cluster, path: str) -> dict[str, Any] | None:
    """A live object by API path, None when absent."""
    import urllib.error

    try:
        return cluster.api(path)
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        raise


def flotilla_releases(cluster: Cluster, cluster_name: str) -> set[tuple[str, str]]:
    """(namespace, release) of every release this agent installed, from Helm's storage Secrets."""
    secrets = cluster.api(
        f"/api/v1/secrets?labelSelector=owner%3Dhelm,flotilla.dev%2Fcluster%3D{cluster_name},status%3Ddeployed"
    )["items"]
    return {(s["metadata"]["namespace"], s["metadata"]["labels"]["name"]) for s in secrets}


class PassWatcher:
    """Collects the ``pass_finished`` events of a ``flotilla-agent run`` process from its stderr."""

    def __init__(self, process: Any) -> None:
        import json
        import threading

        self.process = process
        self.passes: list[dict[str, Any]] = []

        def read() -> None:
            for line in process.stderr:
                event = json.loads(line) if line.startswith("{") else {}
                if event.get("event") == "pass_finished":
                    self.passes.append(event)

        threading.Thread(target=read, daemon=True).start()

    def wait_for(self, predicate: Any, what: str, timeout: float = 90) -> dict[str, Any]:
        """The first finished pass (from now on, the latest) that ``predicate`` accepts."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            if self.passes and predicate(self.passes[-1]):
                return self.passes[-1]
            assert self.process.poll() is None, "the agent exited"
            assert time.monotonic() < deadline, f"{what}: {self.passes[-3:]}"
            time.sleep(0.2)
