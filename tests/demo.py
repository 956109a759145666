"""A whole Flotilla fleet on this machine: local clusters, a Git server, a hub and one agent each.

``make demo`` runs ``python -m tests.demo up``, which starts a supervisor in the background and
prints its progress until the fleet is up; ``make demo-stop`` runs ``python -m tests.demo down``.
The end-to-end tests drive the same :class:`DemoFleet` from pytest.

Everything listens on 127.0.0.1 only.  The fleet repo is a copy of ``fleet-repo-example`` served
over smart HTTP; each agent runs as its own ``flotilla-agent run`` process with its own hub token
and its cluster's identity from the example repo.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.fixtures.gitserver import GitServer, WorkingClone
from tests.localcluster import Cluster, Fleet, find_tools, free_port, stop_recorded

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = REPO_ROOT / "fleet-repo-example"
DEFAULT_WORKDIR = REPO_ROOT / ".demo"
BIN = Path(sys.executable).parent


def log(message: str) -> None:
    print(f"[demo {time.strftime('%H:%M:%S')}] {message}", flush=True)


def example_clusters() -> list[str]:
    """Cluster names of the example fleet repo, sorted (the demo takes the first N)."""
    from agent import fleet

    return sorted(fleet.load_repo(EXAMPLE).clusters)


@dataclass
class DemoFleet:
    """Clusters, Git, hub and agents under one work directory; every part can be stopped and restarted."""

    workdir: Path
    cluster_names: list[str]
    interval: float = 10.0
    hub_port: int = 0
    stale_after_intervals: float | None = None
    offline_after_intervals: float | None = None
    seed_files: dict[str, str] = field(default_factory=dict)  # added to the example repo's first commit
    fleet: Fleet | None = None
    git: GitServer | None = None
    repo_url: str = ""
    clusters: dict[str, Cluster] = field(default_factory=dict)
    agents: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    hub: subprocess.Popen[bytes] | None = None

    # ---------------------------------------------------------------------------------- start/stop

    def start(self) -> None:
        if self.workdir.exists():
            shutil.rmtree(self.workdir)
        (self.workdir / "logs").mkdir(parents=True)
        self.hub_port = self.hub_port or free_port()
        self.start_git()
        self.fleet = Fleet(self.workdir / "clusters", find_tools())
        for name in self.cluster_names:
            log(f"starting cluster {name} ({len(self.clusters) + 1} of {len(self.cluster_names)})")
            self.clusters[name] = self.fleet.add(name)
        self.start_hub()
        for name in self.cluster_names:
            self._create_token(name)
            self.start_agent(name)

    def stop(self) -> None:
        for name in list(self.agents):
            self.stop_agent(name)
        self.stop_hub()
        if self.git is not None:
            self.git.stop()
        if self.fleet is not None:
            self.fleet.stop()

    # ---------------------------------------------------------------------------------------- git

    def start_git(self) -> None:
        if self.git is None:
            self.git = GitServer(self.workdir / "git")
            self.git.start()
            seed = self.workdir / "seed"
            shutil.copytree(EXAMPLE, seed)
            for relative, text in self.seed_files.items():
                (seed / relative).parent.mkdir(parents=True, exist_ok=True)
                (seed / relative).write_text(text)
            self.repo_url = self.git.create_repo("fleet", from_dir=seed)
            log(f"fleet repo served at {self.repo_url}")
        else:
            self.git.start()

    def stop_git(self) -> None:
        assert self.git is not None
        self.git.stop()

    def working_clone(self, name: str = "clone") -> WorkingClone:
        return WorkingClone.clone(self.repo_url, self.workdir / name)

    # ---------------------------------------------------------------------------------------- hub

    @property
    def hub_url(self) -> str:
        return f"http://127.0.0.1:{self.hub_port}"

    def start_hub(self) -> None:
        command = [
            str(BIN / "flotilla-hub"), "serve", "--data-dir", str(self.workdir / "hub"),
            "--host", "127.0.0.1", "--port", str(self.hub_port), "--public-read",
        ]  # fmt: skip
        if self.stale_after_intervals is not None:
            command += ["--stale-after-intervals", str(self.stale_after_intervals)]
        if self.offline_after_intervals is not None:
            command += ["--offline-after-intervals", str(self.offline_after_intervals)]
        self.hub = self._spawn("hub", command)
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{self.hub_url}/healthz", timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        break
            except OSError:
                pass
            if self.hub.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the hub did not start; see {self.workdir / 'logs' / 'hub.log'}")
            time.sleep(0.2)
        log(f"hub listening at {self.hub_url}")

    def stop_hub(self) -> None:
        if self.hub is not None:
            self._terminate(self.hub)
            self.hub = None

    def hub_get(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.hub_url}{path}", timeout=10) as response:  # noqa: S310 (loopback)
            return json.loads(response.read())

    def hub_get_text(self, path: str) -> str:
        with urllib.request.urlopen(f"{self.hub_url}{path}", timeout=10) as response:  # noqa: S310 (loopback)
            return str(response.read().decode())

    def _create_token(self, name: str) -> None:
        result = subprocess.run(
            [str(BIN / "flotilla-hub"), "token", "create", name, "--data-dir", str(self.workdir / "hub")],
            capture_output=True,
            text=True,
            check=True,
        )
        token_file = self.workdir / "tokens" / name
        token_file.parent.mkdir(exist_ok=True)
        token_file.write_text(result.stdout.strip().splitlines()[-1] + "\n")
        token_file.chmod(0o600)

    # ------------------------------------------------------------------------------------- agents

    def state_dir(self, name: str) -> Path:
        return self.workdir / "agents" / name

    def start_agent(self, name: str) -> None:
        cluster = self.clusters[name]
        command = [
            str(BIN / "flotilla-agent"), "run",
            "--repo-url", self.repo_url, "--cluster", name,
            "--state-dir", str(self.state_dir(name)),
            "--kubeconfig", str(cluster.agent_kubeconfig),
            "--helm", cluster.tools.helm,
            "--interval", str(self.interval),
            "--hub-url", self.hub_url,
            "--hub-token-file", str(self.workdir / "tokens" / name),
        ]  # fmt: skip
        self.agents[name] = self._spawn(f"agent-{name}", command)
        log(f"agent for {name} started (pid {self.agents[name].pid})")

    def stop_agent(self, name: str) -> None:
        process = self.agents.pop(name, None)
        if process is not None:
            self._terminate(process)

    def last_report(self, name: str) -> dict[str, Any]:
        try:
            return dict(json.loads((self.state_dir(name) / "last-report.json").read_text()))
        except (OSError, ValueError):
            return {}

    # ------------------------------------------------------------------------------------ helpers

    def _spawn(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        with (self.workdir / "logs" / f"{name}.log").open("ab") as log_file:
            process = subprocess.Popen(
                command,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        (self.workdir / "pids").mkdir(exist_ok=True)
        (self.workdir / "pids" / name).write_text(str(process.pid))
        return process

    def _terminate(self, process: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        for pid_file in (self.workdir / "pids").glob("*"):
            with contextlib.suppress(OSError, ValueError):
                if int(pid_file.read_text()) == process.pid:
                    pid_file.unlink()

    def wait_until_ready(self, timeout: float) -> dict[str, Any]:
        """Until the hub shows every demo cluster Online and Ready; returns the hub's cluster list."""
        deadline = time.monotonic() + timeout
        shown = ""
        while True:
            try:
                clusters = {c["name"]: c for c in self.hub_get("/api/v1/clusters")["clusters"]}
            except OSError:
                clusters = {}
            states = {
                n: (clusters.get(n, {}).get("health"), clusters.get(n, {}).get("connectivity"))
                for n in self.cluster_names
            }
            summary = ", ".join(f"{n}: {h or '-'}/{c or 'no report'}" for n, (h, c) in sorted(states.items()))
            if summary != shown:
                log(summary)
                shown = summary
            if all(state == ("Ready", "Online") for state in states.values()):
                return clusters
            if time.monotonic() > deadline:
                raise TimeoutError(f"fleet not Ready within {timeout:.0f}s: {summary}")
            time.sleep(1)


# ------------------------------------------------------------------------------------------- CLI


def supervise(workdir: Path, count: int, interval: float) -> int:
    """Start the fleet and keep it running until SIGTERM (the process ``up`` leaves behind)."""
    names = example_clusters()[:count]
    if len(names) < count:
        log(f"the example repo has only {len(names)} clusters; starting those")
    demo = DemoFleet(workdir / "run", names, interval=interval)
    stop = threading.Event()
    # A handler, not a blocked signal mask: children inherit the mask and would ignore SIGTERM.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        demo.start()
        demo.wait_until_ready(timeout=300 + 30 * count)
        (workdir / "ready.json").write_text(json.dumps({"hub": demo.hub_url, "repo": demo.repo_url}))
        log("fleet is up")
        while not stop.wait(1):
            pass
        log("stopping")
    except Exception as error:
        log(f"error: {error}")
        (workdir / "failed").write_text(str(error))
        return 1
    finally:
        demo.stop()
        log("stopped")
    return 0


def up(workdir: Path, count: int, interval: float) -> int:
    if (workdir / "supervisor.pid").exists():
        print(
            f"a demo seems to be running already (see {workdir}); run `make demo-stop` first", file=sys.stderr
        )
        return 1
    workdir.mkdir(parents=True, exist_ok=True)
    for stale in ("ready.json", "failed", "demo.log"):
        (workdir / stale).unlink(missing_ok=True)
    log_path = workdir / "demo.log"
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.demo", "supervise", "--dir", str(workdir), "--clusters", str(count),
             "--interval", str(interval)],
            stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            cwd=REPO_ROOT,
        )  # fmt: skip
    (workdir / "supervisor.pid").write_text(str(process.pid))
    shown = 0
    while True:
        lines = log_path.read_text(errors="replace").splitlines() if log_path.exists() else []
        for line in lines[shown:]:
            print(line, flush=True)
        shown = len(lines)
        if (workdir / "ready.json").exists():
            info = json.loads((workdir / "ready.json").read_text())
            print(
                f"\nStatus page: {info['hub']}/\n\n"
                "Try it:\n"
                f"  git clone {info['repo']} /tmp/fleet && cd /tmp/fleet\n"
                "  edit bundles/edge-base/bundle.yaml (e.g. a region's ntpServer), then\n"
                "  git commit -am 'change ntp' && git push\n"
                f"  and watch {info['hub']}/ (agents poll every {interval:.0f}s).\n"
                f"  JSON: curl {info['hub']}/api/v1/clusters\n"
                "Stop everything with: make demo-stop",
                flush=True,
            )
            return 0
        if process.poll() is not None:
            print(f"the demo failed to start; its log is {log_path}", file=sys.stderr)
            (workdir / "supervisor.pid").unlink(missing_ok=True)
            return 1
        time.sleep(0.5)


def down(workdir: Path) -> int:
    pid_file = workdir / "supervisor.pid"
    if pid_file.exists():
        pid = int(pid_file.read_text())
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                os.kill(pid, 0)  # raises ProcessLookupError once it is gone
                time.sleep(0.3)
        pid_file.unlink(missing_ok=True)
    leftover = stop_recorded(workdir)  # anything a crashed supervisor left behind
    log(f"demo stopped{f' ({leftover} leftover processes killed)' if leftover else ''}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.demo", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("up", "supervise"):
        command = sub.add_parser(name)
        command.add_argument("--dir", type=Path, default=DEFAULT_WORKDIR)
        command.add_argument("--clusters", type=int, default=3)
        command.add_argument("--interval", type=float, default=10.0)
    sub.add_parser("down").add_argument("--dir", type=Path, default=DEFAULT_WORKDIR)
    args = parser.parse_args(argv)
    if args.command == "up":
        return up(args.dir, args.clusters, args.interval)
    if args.command == "supervise":
        return supervise(args.dir, args.clusters, args.interval)
    return down(args.dir)


if __name__ == "__main__":
    sys.exit(main())
