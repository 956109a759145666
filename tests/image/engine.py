"""The Docker engine and the agent images for Python code (tests, benchmark): the only place that
runs ``docker``.  ``tests/image/engine.sh`` starts the engine and QEMU, ``tests/image/build.sh``
builds the images; this module calls them and runs containers -- always with ``--network host``."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

IMAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = IMAGE_DIR.parent.parent
DOCKER = os.environ.get("FLOTILLA_DOCKER", "/usr/bin/docker")
ARCHES = ("amd64", "arm64", "armv7")
MACHINES = {"amd64": "x86_64", "arm64": "aarch64", "armv7": "armv7l"}
PLATFORMS = {"amd64": "linux/amd64", "arm64": "linux/arm64", "armv7": "linux/arm/v7"}
# build.sh's image name (FLOTILLA_IMAGE_NAME: a trial build beside the flotilla-agent:dev-* in use)
NAME = os.environ.get("FLOTILLA_IMAGE_NAME", "flotilla-agent")


class EngineError(RuntimeError):
    """The engine, a build or a container did not do what was asked; the message says what and why."""


def tag(arch: str) -> str:
    return f"{NAME}:dev-{arch}"


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [DOCKER, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if check and result.returncode != 0:
        raise EngineError(
            f"docker {' '.join(args[:3])} ... exited {result.returncode}: {result.stderr.strip()}"
        )
    return result


def ensure_engine() -> None:
    """dockerd up and QEMU registered (installs Debian packages on a fresh machine)."""
    _script("engine.sh", [], timeout=900)


def build(arches: Sequence[str], log_path: Path, python: str, timeout: float = 3600) -> None:
    """``build.sh`` for these architectures: seconds when nothing changed, a long while when cold."""
    _script("build.sh", list(arches), timeout=timeout, log_path=log_path, python=python)


def save(directory: Path, arches: Sequence[str], python: str) -> list[Path]:
    _script("build.sh", ["save", str(directory), *arches], timeout=600, python=python)
    return [directory / f"{NAME}-dev-{arch}.tar" for arch in arches]


def _script(
    name: str, args: list[str], *, timeout: float, log_path: Path | None = None, python: str = "python3"
) -> None:
    env = {**os.environ, "PYTHON": python}
    log = log_path.open("w") if log_path else None
    try:
        result = subprocess.run(
            [str(IMAGE_DIR / name), *args],
            stdout=log or subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
        )
    finally:
        if log:
            log.close()
    if result.returncode != 0:
        output = log_path.read_text() if log_path else result.stdout
        raise EngineError(f"tests/image/{name} {' '.join(args)} failed:\n{output[-4000:]}")


def containerd_socket() -> str:
    """The containerd under the engine (dockerd starts its own under its exec root)."""
    root = Path(os.environ.get("FLOTILLA_DOCKER_ROOT", Path.home() / ".cache" / "flotilla" / "docker"))
    for candidate in (
        root / "exec" / "containerd" / "containerd.sock",
        Path("/run/containerd/containerd.sock"),
    ):
        if candidate.is_socket():
            return str(candidate)
    raise EngineError(f"no containerd socket under {root / 'exec'} or /run/containerd")


def inspect_image(image: str) -> dict[str, object]:
    [data] = json.loads(docker("image", "inspect", image).stdout)
    return dict(data)


@dataclass
class Container:
    """One detached container, removed by :meth:`remove`."""

    name: str

    def state(self) -> dict[str, object]:
        [data] = json.loads(docker("inspect", self.name).stdout)
        return dict(data["State"])

    def running(self) -> bool:
        return bool(self.state()["Running"])

    def logs(self) -> str:
        result = docker("logs", self.name, check=False)
        return result.stdout + result.stderr

    def log_events(self) -> list[dict[str, object]]:
        """The agent's structlog JSON lines (anything else on the streams is skipped)."""
        events = []
        for line in self.logs().splitlines():
            if line.startswith("{"):
                try:
                    events.append(json.loads(line))
                except ValueError:
                    continue
        return events

    def wait_for_event(
        self,
        event: str,
        timeout: float,
        count: int = 1,
        where: Callable[[dict[str, object]], bool] = lambda _: True,
    ) -> list[dict[str, object]]:
        """Every logged ``event`` (matching ``where``) once there are ``count`` of them."""
        deadline = time.monotonic() + timeout
        while True:
            found = [e for e in self.log_events() if e.get("event") == event and where(e)]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline or not self.running():
                raise EngineError(
                    f"container {self.name}: {count} x {event!r} not logged in {timeout:.0f}s "
                    f"(running: {self.running()}); logs:\n{self.logs()[-4000:]}"
                )
            time.sleep(0.5)

    def stop(self, grace_seconds: int) -> tuple[int, float]:
        """``docker stop`` (SIGTERM, then SIGKILL after the grace period): (exit code, seconds taken)."""
        started = time.monotonic()
        docker("stop", "-t", str(grace_seconds), self.name, timeout=grace_seconds + 60)
        return int(str(self.state()["ExitCode"])), time.monotonic() - started

    def stats_rss_bytes(self) -> int:
        """The container's memory use as its cgroup counts it (rss, not page cache)."""
        pid = int(str(self.state()["Pid"]))
        cgroup = Path(f"/proc/{pid}/cgroup").read_text()
        for line in cgroup.splitlines():
            _, controllers, path = line.split(":", 2)
            if "memory" in controllers.split(","):
                stat = Path(f"/sys/fs/cgroup/memory{path}/memory.stat").read_text()
                values = dict(row.split() for row in stat.splitlines())
                return int(values["total_rss"])
        raise EngineError(f"no memory cgroup for container {self.name}")

    def remove(self) -> None:
        docker("rm", "-f", "-v", self.name, check=False)


def run(
    image: str, args: Sequence[str], *, options: Sequence[str] = (), timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run a container to completion on the host network; the result has its exit code and output."""
    return docker("run", "--rm", "--network", "host", *options, image, *args, timeout=timeout, check=False)


def start(name: str, image: str, args: Sequence[str], *, options: Sequence[str] = ()) -> Container:
    docker("rm", "-f", "-v", name, check=False)
    docker("run", "--detach", "--name", name, "--network", "host", *options, image, *args)
    return Container(name)
