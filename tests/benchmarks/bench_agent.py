"""Agent benchmarks (issue 4): idle cost, memory, push-to-Ready latency, and a pass over many releases.

    .venv/bin/python -m tests.benchmarks.bench_agent [--releases 100] [--interval 10]

Everything is real: a local control plane, a Git server on loopback, and ``flotilla-agent run`` as
its own process (its JSON log lines give per-pass numbers).  Prints:

- agent RSS after 10 idle passes (target <= 80 MiB);
- a no-change pass: wall and CPU time (target < 100 ms CPU), Git round trips (target 1), API writes
  (target 0, from the API server's audit log of the agent's identity);
- time from a pushed commit to Ready for one changed bundle (target < interval + 15 s);
- a no-change pass over N releases on one cluster (target < 1 s for 100);
- signature verification (issue 14), ``--signatures-only`` runs just this, no cluster: the cost per
  sync when the ref did not move (target: zero verifications) and when it moved (one), for
  ``off``, ``ssh`` and ``gpg``, as wall time and as the time spent in the verification itself.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from tests.fixtures.gitserver import GitServer
from tests.integration.agent.harness import bundle_file, cluster_file, make_fleet_repo
from tests.localcluster import Cluster, Fleet, find_tools, process_rss

CLUSTER = "bench-edge"


class AgentProcess:
    """``flotilla-agent run`` in the background; collects its ``pass_finished`` log events."""

    def __init__(self, cluster: Cluster, repo_url: str, state_dir: Path, interval: float) -> None:
        command = [
            str(Path(sys.executable).parent / "flotilla-agent"), "run",
            "--repo-url", repo_url, "--cluster", CLUSTER, "--state-dir", str(state_dir),
            "--kubeconfig", str(cluster.agent_kubeconfig), "--helm", cluster.tools.helm,
            "--interval", str(interval),
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        self.passes: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == "pass_finished":
                self.passes.append(event)

    def wait_for_passes(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.passes) < count:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"agent stopped or too slow: {len(self.passes)} of {count} passes")
            time.sleep(0.2)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


def last_report(state_dir: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((state_dir / "last-report.json").read_text()))
    except (OSError, ValueError):
        return {}


def idle_and_latency(cluster: Cluster, git: GitServer, workdir: Path, interval: float) -> None:
    repo = make_fleet_repo(
        git,
        workdir,
        "bench",
        {
            f"clusters/{CLUSTER}.yaml": cluster_file(CLUSTER, {"region": "eu"}),
            "bundles/web/bundle.yaml": bundle_file(
                "web", "bench", values={"region": "v0"}, targets=[{"clusterName": CLUSTER}]
            ),
            "bundles/api/bundle.yaml": bundle_file("api", "bench", targets=[{"clusterName": CLUSTER}]),
        },
    )
    state_dir = workdir / "state"
    agent = AgentProcess(cluster, repo.url, state_dir, interval=1.0)
    try:
        agent.wait_for_passes(1, timeout=180)
        writes_before = len(cluster.agent_writes())
        agent.wait_for_passes(11, timeout=120)
        idle = agent.passes[1:11]
        writes = len(cluster.agent_writes()) - writes_before
        rss = process_rss(agent.process.pid) / 2**20
        print(f"agent RSS after 10 idle passes: {rss:.1f} MiB (target <= 80)")
        cpu = [p["cpu_seconds"] * 1000 for p in idle]
        wall = [p["seconds"] * 1000 for p in idle]
        print(
            f"no-change pass: CPU median {statistics.median(cpu):.0f} ms (max {max(cpu):.0f}; target < 100), "
            f"wall median {statistics.median(wall):.0f} ms (max {max(wall):.0f})"
        )
        trips = sorted({p["git_round_trips"] for p in idle})
        print(f"no-change pass: Git round trips per pass {trips} (target 1)")
        print(f"no-change passes: API writes {writes} over 10 passes (target 0; from the audit log)")
    finally:
        agent.stop()

    agent = AgentProcess(cluster, repo.url, state_dir, interval=interval)
    try:
        agent.wait_for_passes(1, timeout=120)
        samples = []
        for round_number in range(1, 4):
            commit = repo.write(
                {
                    "bundles/web/bundle.yaml": bundle_file(
                        "web",
                        "bench",
                        values={"region": f"v{round_number}"},
                        targets=[{"clusterName": CLUSTER}],
                    )
                },
                f"web v{round_number}",
            )
            pushed = time.monotonic()
            while True:
                report = last_report(state_dir)
                web = next((b for b in report.get("bundles", []) if b["bundle"] == "web"), {})
                if web.get("applied_commit") == commit and web.get("state") == "Ready":
                    break
                if time.monotonic() - pushed > interval + 120:
                    raise SystemExit(f"web never became Ready at {commit[:12]}: {web}")
                time.sleep(0.1)
            samples.append(time.monotonic() - pushed)
        print(
            f"push to Ready, one changed bundle, interval {interval:.0f}s: "
            + ", ".join(f"{s:.1f}s" for s in samples)
            + f" (target < interval + 15 s = {interval + 15:.0f}s)"
        )
    finally:
        agent.stop()


def many_releases(cluster: Cluster, git: GitServer, workdir: Path, releases: int) -> None:
    files = {f"clusters/{CLUSTER}-many.yaml": cluster_file(f"{CLUSTER}-many", {"region": "eu"})}
    for index in range(releases):
        files[f"bundles/app-{index:03d}/bundle.yaml"] = bundle_file(
            f"app-{index:03d}", f"many-{index % 10}", targets=[{"clusterName": f"{CLUSTER}-many"}],
            helm={"timeoutSeconds": 120, "wait": False},
        )  # fmt: skip
    repo = make_fleet_repo(git, workdir, "many", files)
    from agent.logs import configure_logging
    from agent.loop import Agent
    from agent.settings import AgentSettings

    configure_logging("warning")  # the in-process agent's per-release log lines would drown the numbers

    settings = AgentSettings(
        repo_url=repo.url,
        cluster=f"{CLUSTER}-many",
        state_dir=workdir / "state-many",
        kubeconfig=cluster.agent_kubeconfig,
        helm=cluster.tools.helm,
        interval=60,
    )
    agent = Agent.from_settings(settings)
    started = time.monotonic()
    first, _ = agent.run_pass()
    print(f"{releases} releases: first pass (installs) took {time.monotonic() - started:.0f}s, ok={first.ok}")
    for _ in range(3):  # until every workload is Ready
        outcome, _ = agent.run_pass()
    timings = []
    for _ in range(5):
        cpu_before = time.process_time()
        started = time.monotonic()
        outcome, _ = agent.run_pass()
        timings.append((time.monotonic() - started, time.process_time() - cpu_before, outcome))
    wall = [t[0] for t in timings]
    cpu = statistics.median([t[1] for t in timings])
    print(
        f"no-change pass over {releases} releases: wall median {statistics.median(wall):.2f}s "
        f"(max {max(wall):.2f}s; target < 1 s), CPU median {cpu:.2f}s, "
        f"helm calls {sum(len(t[2].helm_calls) for t in timings)}, ready "
        f"{sum(r.state == 'Ready' for r in timings[-1][2].releases)}/{releases}"
    )
    agent.close()


def _cpu() -> float:
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def _timed_verify(source: Any, spent: list[tuple[float, float]]) -> None:
    """Wrap the source's verification step to time it, wall and CPU with its git/ssh-keygen/gpg
    children (benchmark only)."""
    verify = source._verify

    def timed(*args: Any, **kwargs: Any) -> Any:
        started, cpu = time.perf_counter(), _cpu()
        try:
            return verify(*args, **kwargs)
        finally:
            spent.append((time.perf_counter() - started, _cpu() - cpu))

    source._verify = timed


def signature_cost(git: GitServer, workdir: Path, rounds: int = 10) -> None:
    from agent.logs import configure_logging
    from agent.signatures import SignaturePolicy
    from agent.source import Source, SourceSpec
    from tests.fixtures.gitserver import WorkingClone
    from tests.fixtures.signing import gpg_key, signed_commit, ssh_key, stop_gpg_agent, trusted_keys

    configure_logging("warning")
    keys = {"ssh": ssh_key(workdir / "keys", "bench@example.com")}
    keys["gpg"] = gpg_key(workdir / "keys", "Bench Signer", "bench@example.com")
    for mode in ("off", "ssh", "gpg"):
        url = git.create_repo(
            f"signed-{mode}", from_dir=Path(__file__).resolve().parents[2] / "fleet-repo-example"
        )
        clone = WorkingClone.clone(url, workdir / f"signed-{mode}-clone")
        key = keys.get(mode)
        signed_commit(clone, "signed", {}, key)
        policy = SignaturePolicy()
        if key is not None:
            policy = SignaturePolicy(mode, trusted_keys(workdir / f"trusted-{mode}", key))  # type: ignore[arg-type]
        source = Source(
            SourceSpec(url=url, branch="main"), workdir / f"state-signed-{mode}", signatures=policy
        )
        spent: list[tuple[float, float]] = []
        if policy.enabled:
            _timed_verify(source, spent)
        source.sync()
        checks_before, idle = source.verifications, []
        for _ in range(rounds):
            started = time.perf_counter()
            source.sync()
            idle.append(time.perf_counter() - started)
        idle_checks = source.verifications - checks_before
        moved: list[float] = []
        spent.clear()
        for index in range(rounds):
            signed_commit(clone, f"change {index}", {"README.md": f"change {index}\n"}, key)
            started = time.perf_counter()
            revision = source.sync()
            moved.append(time.perf_counter() - started)
            assert revision.error is None, revision.error
        verify_ms = (
            f"{statistics.median(w for w, _ in spent) * 1000:.1f} ms wall, "
            f"{statistics.median(c for _, c in spent) * 1000:.1f} ms CPU"
            if spent
            else "-"
        )
        print(
            f"signatures {mode:>3}: ref not moved: sync median {statistics.median(idle) * 1000:.1f} ms, "
            f"{idle_checks} verifications in {rounds} syncs; ref moved: sync median "
            f"{statistics.median(moved) * 1000:.1f} ms, verification median {verify_ms} "
            f"({source.verifications - checks_before} verifications in {rounds} syncs)"
        )
    stop_gpg_agent(keys["gpg"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--releases", type=int, default=100)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--skip-many", action="store_true")
    parser.add_argument("--signatures-only", action="store_true", help="only the verification cost")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory(prefix="bench-agent-") as tmp:
        workdir = Path(tmp)
        if args.signatures_only:
            git = GitServer(workdir / "git").start()
            try:
                signature_cost(git, workdir)
            finally:
                git.stop()
            return
        fleet = Fleet(workdir / "clusters", find_tools())
        git = GitServer(workdir / "git").start()
        try:
            cluster = fleet.add("bench")
            idle_and_latency(cluster, git, workdir, args.interval)
            if not args.skip_many:
                many_releases(cluster, git, workdir, args.releases)
            signature_cost(git, workdir)
        finally:
            git.stop()
            fleet.stop()


if __name__ == "__main__":
    main()
