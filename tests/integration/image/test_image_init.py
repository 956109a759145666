"""PID 1 in the image is tini, which reaps what the agent's children leave behind.

The agent runs git, git runs ssh; when git dies (its timeout, or the OOM killer), its ssh is
re-parented to PID 1.  Kubernetes has no ``--init``, so without an init in the image the agent itself
is PID 1 and never waits for that orphan: it stays a zombie for the life of the pod, one more per
failure.  The test makes exactly that happen with the real agent: an SSH "server" that accepts and
never answers holds ssh, the test kills git, then lets ssh go.  With the image's entrypoint the
orphan is reaped; the control runs the same image with the agent as PID 1 and finds the zombie.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.image import engine

pytestmark = [pytest.mark.image, pytest.mark.timeout(3600)]  # a cold image build counts

KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: none, user: {token: unused}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
"""


class SilentServer:
    """Accepts TCP connections and never says a word (ssh waits for the server's banner)."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections.append(connection)

    def close(self) -> None:
        """Hang up on every client and refuse new ones (shutdown: a close alone leaves the port
        listening while the accept thread waits in it)."""
        with contextlib.suppress(OSError):  # closed already
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        for connection in self.connections:
            connection.close()


def processes(container: engine.Container) -> dict[int, tuple[str, str, int]]:
    """pid -> (command, state, parent pid) for every process in the container."""
    listing = engine.docker(
        "exec", container.name, "sh", "-c", 'for p in /proc/[0-9]*/stat; do cat "$p" 2>/dev/null; echo; done'
    ).stdout
    found = {}
    for line in listing.splitlines():
        if ")" not in line:
            continue
        head, _, rest = line.rpartition(")")
        pid, _, command = head.partition(" (")
        state, parent = rest.split()[:2]
        found[int(pid)] = (command, state, int(parent))
    return found


def wait_for(what: str, condition: Callable[[], object], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f}s: {what}")
        time.sleep(0.5)


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


@pytest.mark.parametrize("pid1", ["tini", "agent"])
def test_an_orphaned_ssh_is_reaped_by_the_images_init_and_a_zombie_without_it(
    pid1: str, agent_image: Callable[[str], str], silent_server: SilentServer, tmp_path: Path
) -> None:
    image = agent_image("amd64")
    config = tmp_path / "config"  # readable by the container's uid 10001 (pytest's dirs are 0700)
    config.mkdir(mode=0o755)
    config.chmod(0o755)
    (config / "kubeconfig").write_text(KUBECONFIG)
    options = [
        "--read-only", "--user", "10001:10001", "--cap-drop", "ALL",
        "--tmpfs", "/var/lib/flotilla:uid=10001,gid=10001,mode=0700",
        "--volume", f"{config}:/config:ro",
    ]  # fmt: skip
    if pid1 == "agent":
        options += ["--entrypoint", "flotilla-agent"]  # the control: what the image was before tini
    args = [
        "run", "--cluster", "eu-west-dublin-1", "--kubeconfig", "/config/kubeconfig",
        "--repo-url", f"ssh://git@127.0.0.1:{silent_server.port}/fleet.git",
    ]  # fmt: skip
    container = engine.start(f"flotilla-init-{uuid.uuid4().hex[:8]}", image, args, options=options)
    try:
        # git -> ssh, ssh connected and waiting for a banner that never comes
        wait_for("ssh connected under git", lambda: silent_server.connections and _ssh_under_git(container))
        tree = processes(container)
        assert tree[1][0] == ("tini" if pid1 == "tini" else "flotilla-agent")
        found = _ssh_under_git(container)
        assert found is not None
        ssh, git = found
        engine.docker("exec", container.name, "sh", "-c", f"kill -9 {git}")  # git dies; ssh is orphaned
        wait_for("ssh re-parented to PID 1", lambda: processes(container).get(ssh, ("", "", 0))[2] == 1)
        silent_server.close()  # ssh gives up and exits

        if pid1 == "tini":
            wait_for("the orphan reaped", lambda: ssh not in processes(container), timeout=30)
        else:
            wait_for("ssh exited", lambda: processes(container).get(ssh, ("", "Z", 0))[1] == "Z", timeout=30)
            time.sleep(5)
            assert processes(container)[ssh][1:] == ("Z", 1), "without an init the orphan stays a zombie"

        # the agent carries on: the failed pass is reported and the next one follows (the port is
        # closed now, so it fails fast); SIGTERM then ends the container cleanly, through tini
        container.wait_for_event("pass_finished", timeout=120, count=2)
        code, _ = container.stop(30)
        assert code == 0, container.logs()[-3000:]
    finally:
        container.remove()


def _ssh_under_git(container: engine.Container) -> tuple[int, int] | None:
    tree = processes(container)
    for pid, (command, _, parent) in tree.items():
        if command == "ssh" and tree.get(parent, ("",))[0] == "git":
            return pid, parent
    return None
