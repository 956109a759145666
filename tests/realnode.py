"""A real node for a local control plane: Debian's containerd and a kubelet built like the other
Kubernetes binaries, running real pods from images imported into containerd (never pulled).

The recipe and its traps are in ``../shared/research/real_node.md``.  Everything stays on
127.0.0.1 and inside the node's work directory: containerd has its own config, socket, root and
state; CNI is a loopback-only conflist (enough for hostNetwork pods, and the node goes Ready with
no pod network); the kubelet serves no port.  Pods therefore run with the host's network, which a
:class:`MutatingAdmissionPolicy` gives the pods of namespaces labelled :data:`NAMESPACE_LABEL` (with
``KUBERNETES_SERVICE_HOST``/``PORT`` pointing at the API server, which a node without kube-proxy
cannot reach through the Service address) and places them on this node.  Such a cluster starts
without the PodSecurity admission plugin (see :data:`APISERVER_ARGS`): hostNetwork is not
"restricted"; the chart's pod passes "restricted" on the kwok clusters.

    python -m tests.realnode start --dir /tmp/node   # a cluster with a real node, until Ctrl-C

:meth:`RealNode.stop` stops every process it started -- the pods' containers and shims included --
and unmounts what the kubelet and containerd mounted.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.localcluster import Cluster, Component, Fleet, log, start_component, wait_until

CACHE = Path(os.environ.get("FLOTILLA_REALNODE_CACHE", Path.home() / ".cache" / "flotilla" / "realnode"))
CONTAINERD = shutil.which("containerd") or "/usr/bin/containerd"
CTR = shutil.which("ctr") or "/usr/bin/ctr"
CNI_BIN = Path("/usr/lib/cni")
NAMESPACE_LABEL = "flotilla.dev/test-real-node"
NODE_LABEL = "flotilla.dev/real-node"
PAUSE_IMAGE = "registry.k8s.io/pause:3.6"  # the sandbox image containerd 1.6 asks for by default
# hostNetwork pods are not "restricted"; see the module docstring.
APISERVER_ARGS = ("--disable-admission-plugins=PodSecurity",)
STARTUP_TIMEOUT = 120.0
PAUSE_SOURCE = r"""
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
static void stop(int s) { (void)s; _exit(0); }
static void reap(int s) { (void)s; while (waitpid(-1, 0, WNOHANG) > 0) {} }
int main(void) {
  signal(SIGTERM, stop); signal(SIGINT, stop); signal(SIGCHLD, reap);
  for (;;) pause();
}
"""


class NodeError(RuntimeError):
    """The node did not start, an image did not import, or a pod did not do what was awaited."""


def missing_prerequisites() -> list[str]:
    """Debian packages the node needs that are not installed (the Makefile's system-packages)."""
    missing = []
    if not (Path(CONTAINERD).is_file() and Path(CTR).is_file()):
        missing.append("containerd")
    if not (CNI_BIN / "loopback").is_file():
        missing.append("containernetworking-plugins")
    if shutil.which("gcc") is None:
        missing.append("gcc")
    return missing


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def oci_archive(name: str, manifest: dict[str, Any], blobs: Sequence[bytes]) -> bytes:
    """An OCI image layout tar naming one image: its manifest and the given blobs (layers already
    in the content store may be left out: containerd finds them by digest)."""
    manifest_bytes = json.dumps(manifest).encode()
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": manifest["mediaType"],
                "digest": _digest(manifest_bytes),
                "size": len(manifest_bytes),
                "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": name},
            }
        ],
    }
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        _add(archive, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
        _add(archive, "index.json", json.dumps(index).encode())
        for blob in (manifest_bytes, *blobs):
            _add(archive, f"blobs/sha256/{_digest(blob)[7:]}", blob)
    return out.getvalue()


def pause_archive() -> Path:
    """The sandbox image: a static ``pause()`` loop, built once with gcc and cached."""
    key = hashlib.sha256(PAUSE_SOURCE.encode()).hexdigest()[:12]
    path = CACHE / f"pause-{key}.tar"
    if path.is_file():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    work = CACHE / f"pause-{key}.build"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    (work / "pause.c").write_text(PAUSE_SOURCE)
    built = subprocess.run(
        ["gcc", "-static", "-Os", "-s", "-o", str(work / "pause"), str(work / "pause.c")],
        capture_output=True,
        text=True,
        check=False,
    )
    if built.returncode != 0:
        raise NodeError(f"gcc -static pause.c failed (is libc6-dev installed?): {built.stderr[-2000:]}")
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as root:
        info = root.gettarinfo(str(work / "pause"), arcname="pause")
        info.uid = info.gid = 0
        info.mtime = 0
        with (work / "pause").open("rb") as binary:
            root.addfile(info, binary)
    layer_bytes = layer.getvalue()
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": ["/pause"]},
        "rootfs": {"type": "layers", "diff_ids": [_digest(layer_bytes)]},
    }
    config_bytes = json.dumps(config).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": _digest(config_bytes),
            "size": len(config_bytes),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": _digest(layer_bytes),
                "size": len(layer_bytes),
            }
        ],
    }
    partial = path.with_suffix(".partial")
    partial.write_bytes(oci_archive(PAUSE_IMAGE, manifest, [config_bytes, layer_bytes]))
    partial.rename(path)
    shutil.rmtree(work, ignore_errors=True)
    return path


def containerd_config(workdir: Path) -> str:
    cri = {
        "sandbox_image": PAUSE_IMAGE,
        # this VM forbids lowering oom_score_adj: without this every sandbox fails to start
        "restrict_oom_score_adj": True,
        "disable_apparmor": True,
        "containerd": {
            "snapshotter": "overlayfs",
            "default_runtime_name": "runc",
            "runtimes": {"runc": {"runtime_type": "io.containerd.runc.v2"}},
        },
        "cni": {"bin_dir": str(CNI_BIN), "conf_dir": str(workdir / "cni")},
    }
    lines = [
        "version = 2",
        f'root = "{workdir / "root"}"',
        f'state = "{workdir / "state"}"',
        "[grpc]",
        f'  address = "{workdir / "containerd.sock"}"',
        "[ttrpc]",
        f'  address = "{workdir / "containerd.sock.ttrpc"}"',
        '[plugins."io.containerd.internal.v1.opt"]',
        f'  path = "{workdir / "opt"}"',
    ]

    def table(prefix: str, values: dict[str, Any]) -> None:
        lines.append(f"[{prefix}]")
        nested = {k: v for k, v in values.items() if isinstance(v, dict)}
        for key, value in values.items():
            if not isinstance(value, dict):
                lines.append(f"  {key} = {json.dumps(value)}")
        for key, value in nested.items():
            table(f"{prefix}.{key}", value)

    table('plugins."io.containerd.grpc.v1.cri"', cri)
    return "\n".join(lines) + "\n"


def kubelet_config(workdir: Path, socket: Path) -> dict[str, Any]:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "failCgroupV1": False,  # 1.35+ refuses cgroup v1 unless told
        "cgroupDriver": "cgroupfs",
        "cgroupsPerQOS": False,
        "enforceNodeAllocatable": [],
        "containerRuntimeEndpoint": f"unix://{socket}",
        "address": "127.0.0.1",
        "enableServer": False,
        "readOnlyPort": 0,
        "healthzPort": 0,
        "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": False}},
        "authorization": {"mode": "AlwaysAllow"},
        "failSwapOn": False,
        "localStorageCapacityIsolation": False,
        "podLogsDir": str(workdir / "pod-logs"),
        # images are imported, never pulled: never garbage-collect them, never evict for disk
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {"memory.available": "1Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
        "syncFrequency": "10s",
        "nodeStatusUpdateFrequency": "5s",
        "serializeImagePulls": False,
    }


def create_node_namespace(cluster: Cluster, name: str) -> None:
    """A namespace whose pods run on the real node (see :func:`admission_policy`)."""
    body = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {NAMESPACE_LABEL: "true"}},
    }
    cluster.api("/api/v1/namespaces", method="POST", body=body)


def admission_policy(api_port: int) -> list[dict[str, Any]]:
    """Pods of labelled namespaces run on this node with the host's network (no pod network here)."""
    env = (
        "[Object.spec.containers.env{name: 'KUBERNETES_SERVICE_HOST', value: '127.0.0.1'},"
        f" Object.spec.containers.env{{name: 'KUBERNETES_SERVICE_PORT', value: '{api_port}'}}]"
    )
    expression = (
        "Object{spec: Object.spec{hostNetwork: true,"
        f" containers: object.spec.containers.map(c, Object.spec.containers{{name: c.name, env: {env}}})}}}}"
    )
    # nodeSelector is an atomic map: a JSON patch adds this node's label to it
    escaped = NODE_LABEL.replace("/", "~1")
    place = (
        f"has(object.spec.nodeSelector) ? [JSONPatch{{op: 'add', path: '/spec/nodeSelector/{escaped}',"
        " value: 'true'}] : [JSONPatch{op: 'add', path: '/spec/nodeSelector',"
        f" value: {{'{NODE_LABEL}': 'true'}}}}]"
    )
    name = "flotilla-test-real-node"
    rules = [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}]
    return [
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingAdmissionPolicy",
            "metadata": {"name": name},
            "spec": {
                "failurePolicy": "Fail",
                "reinvocationPolicy": "Never",
                "matchConstraints": {"resourceRules": rules},
                "mutations": [
                    {"patchType": "ApplyConfiguration", "applyConfiguration": {"expression": expression}},
                    {"patchType": "JSONPatch", "jsonPatch": {"expression": place}},
                ],
            },
        },
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingAdmissionPolicyBinding",
            "metadata": {"name": name},
            "spec": {
                "policyName": name,
                "matchResources": {"namespaceSelector": {"matchLabels": {NAMESPACE_LABEL: "true"}}},
            },
        },
    ]


@dataclass
class RealNode:
    """containerd + kubelet joined to ``cluster`` as node ``name``."""

    cluster: Cluster
    workdir: Path
    name: str = "real-node-0"
    components: list[Component] = field(default_factory=list)
    started_seconds: float = 0.0

    @property
    def socket(self) -> Path:
        return self.workdir / "containerd" / "containerd.sock"

    def start(self) -> RealNode:
        missing = missing_prerequisites()
        if missing:
            raise NodeError(
                f"Debian packages missing for the real node: {' '.join(missing)} (make system-packages)"
            )
        started = time.monotonic()
        containerd_dir = self.workdir / "containerd"
        (containerd_dir / "cni").mkdir(parents=True, exist_ok=True)
        (containerd_dir / "cni" / "99-loopback.conflist").write_text(
            json.dumps({"cniVersion": "1.0.0", "name": "lo-only", "plugins": [{"type": "loopback"}]})
        )
        config = containerd_dir / "config.toml"
        config.write_text(containerd_config(containerd_dir))
        try:
            containerd = start_component(
                "containerd", [CONTAINERD, "--config", str(config), "--log-level", "warn"], self.workdir
            )
            self.components.append(containerd)
            wait_until("containerd", lambda: self.ctr("version").returncode == 0, 60, [containerd])
            self.import_archive(pause_archive())
            for document in admission_policy(self.cluster.api_port):
                self._create(document)
            self._await_policy()
            kubelet_dir = self.workdir / "kubelet"
            kubelet_dir.mkdir(parents=True, exist_ok=True)
            (kubelet_dir / "config.yaml").write_text(yaml.safe_dump(kubelet_config(kubelet_dir, self.socket)))
            kubelet = start_component(
                "kubelet",
                [
                    self.cluster.tools.path("kubelet"),
                    f"--config={kubelet_dir / 'config.yaml'}",
                    f"--kubeconfig={self.cluster.kubeconfig}",
                    f"--root-dir={kubelet_dir / 'root'}",
                    f"--cert-dir={kubelet_dir / 'pki'}",
                    f"--hostname-override={self.name}",
                    "--node-ip=127.0.0.1",
                    f"--node-labels={NODE_LABEL}=true",
                    "--v=1",
                ],
                self.workdir,
            )
            self.components.append(kubelet)
            wait_until(f"node {self.name} Ready", self._ready, STARTUP_TIMEOUT, self.components)
        except BaseException:
            self.stop()
            raise
        self.started_seconds = time.monotonic() - started
        log(f"real node {self.name} Ready in {self.started_seconds:.1f}s")
        return self

    def _create(self, document: dict[str, Any]) -> None:
        kind = document["kind"].lower()
        plural = kind[:-1] + "ies" if kind.endswith("y") else kind + "s"
        self.cluster.api(f"/apis/{document['apiVersion']}/{plural}", method="POST", body=document)

    def _await_policy(self) -> None:
        """Policies take effect a moment after they are created: dry-run a pod until it is mutated."""
        namespace = "flotilla-real-node-check"
        create_node_namespace(self.cluster, namespace)
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "check"},
            "spec": {"containers": [{"name": "check", "image": PAUSE_IMAGE}]},
        }

        def mutated() -> bool:
            answer: Any = self.cluster.api(f"/api/v1/namespaces/{namespace}/pods?dryRun=All", "POST", pod)
            return bool(answer["spec"].get("hostNetwork"))

        wait_until("the real-node admission policy", mutated, 60, self.components)

    def _ready(self) -> bool:
        node: Any = self.cluster.api(f"/api/v1/nodes/{self.name}")
        conditions = node.get("status", {}).get("conditions", [])
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)

    # --- containerd ---------------------------------------------------------------------------

    def ctr(
        self, *args: str, stdin: bytes | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [CTR, "--address", str(self.socket), "--namespace", "k8s.io", *args],
            input=stdin,
            capture_output=True,
            timeout=timeout,
            check=False,
        )

    def _ctr_ok(self, *args: str, stdin: bytes | None = None, timeout: float = 300) -> bytes:
        result = self.ctr(*args, stdin=stdin, timeout=timeout)
        if result.returncode != 0:
            raise NodeError(f"ctr {' '.join(args[:2])}: {result.stderr.decode(errors='replace').strip()}")
        return result.stdout

    def import_archive(self, path: Path) -> None:
        """``ctr images import`` of a docker-save or OCI archive (what ``make image-save`` writes)."""
        started = time.monotonic()
        self._ctr_ok("images", "import", "--all-platforms", "--no-unpack", str(path), timeout=900)
        log(f"imported {path.name} into {self.name}'s containerd in {time.monotonic() - started:.1f}s")

    def images(self) -> dict[str, str]:
        """image name -> manifest digest."""
        lines = self._ctr_ok("images", "ls").decode().splitlines()[1:]
        return {line.split()[0]: line.split()[2] for line in lines if line.strip()}

    def _blob(self, digest: str) -> Any:
        return json.loads(self._ctr_ok("content", "get", digest))

    def derive_image(self, source: str, target: str, change: Callable[[dict[str, Any]], None]) -> str:
        """A new image ``target`` with the layers of ``source`` and its config changed by
        ``change(config)`` (entrypoint, env, labels): a different build, imported in milliseconds."""
        digest = self.images().get(_full_name(source))
        if digest is None:
            raise NodeError(f"image {source} is not in {self.name}'s containerd")
        manifest = self._blob(digest)
        config = self._blob(manifest["config"]["digest"])
        change(config)
        config_bytes = json.dumps(config).encode()
        manifest = {
            **manifest,
            "config": {**manifest["config"], "digest": _digest(config_bytes), "size": len(config_bytes)},
        }
        archive = oci_archive(_full_name(target), manifest, [config_bytes])
        self._ctr_ok("images", "import", "--no-unpack", "-", stdin=archive)
        return target

    def task_pid(self, container_id: str) -> int:
        """The host pid of a running container's first process (``containerd://<id>`` or ``<id>``)."""
        wanted = container_id.split("://", 1)[-1]
        for line in self._ctr_ok("tasks", "ls").decode().splitlines()[1:]:
            parts = line.split()
            if len(parts) >= 3 and parts[0] == wanted and parts[2] == "RUNNING":
                return int(parts[1])
        raise NodeError(f"no running task {wanted} in {self.name}'s containerd")

    def empty_dir(self, pod_uid: str, volume: str) -> Path:
        """Where the kubelet keeps a pod's emptyDir volume on this node."""
        return (
            self.workdir
            / "kubelet"
            / "root"
            / "pods"
            / pod_uid
            / "volumes"
            / "kubernetes.io~empty-dir"
            / volume
        )

    def pod_log(self, namespace: str, pod: str, container: str) -> str:
        """A container's log as the kubelet keeps it (``kubectl logs`` cannot reach this node)."""
        texts = []
        for path in sorted(
            (self.workdir / "kubelet" / "pod-logs").glob(f"{namespace}_{pod}_*/{container}/*.log")
        ):
            for line in path.read_text(errors="replace").splitlines():
                texts.append(line.split(" ", 3)[-1])  # CRI format: time stream tag message
        return "\n".join(texts)

    # --- teardown -----------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop the kubelet, kill every container, stop containerd and its shims, unmount."""
        for component in reversed(self.components):
            if component.name == "kubelet":
                component.stop()
        if any(c.name == "containerd" and c.alive() for c in self.components):
            self._kill_tasks()
        for component in self.components:
            component.stop()
        self.components.clear()
        for pid in self.leftover_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _unmount_under(self.workdir)

    def _kill_tasks(self) -> None:
        listed = self.ctr("tasks", "ls", timeout=30)
        ids = [line.split()[0] for line in listed.stdout.decode().splitlines()[1:] if line.strip()]
        for task in ids:
            self.ctr("tasks", "kill", "--all", "--signal", "SIGKILL", task, timeout=30)
        for task in ids:
            self.ctr("tasks", "delete", "--force", task, timeout=30)

    def leftover_pids(self) -> list[int]:
        """Processes still tied to this node: shims naming its socket, and everything under them."""
        socket = str(self.socket).encode()
        parents: dict[int, int] = {}
        roots = set()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            pid = int(entry.name)
            parents[pid] = int(stat.rsplit(")", 1)[1].split()[1])
            if socket in argv:
                roots.add(pid)
        found = set(roots)
        grew = True
        while grew:
            children = {pid for pid, parent in parents.items() if parent in found} - found
            found |= children
            grew = bool(children)
        return sorted(found - {os.getpid()})


def _full_name(image: str) -> str:
    """containerd's name for an image reference (``flotilla-agent:x`` -> ``docker.io/library/...``)."""
    name = image
    first = name.split("/", 1)[0]
    if "/" not in name or ("." not in first and ":" not in first and first != "localhost"):
        name = f"docker.io/{name}" if "/" in name else f"docker.io/library/{name}"
    return name


def _unmount_under(root: Path) -> None:
    prefix = str(root.resolve())
    for _ in range(3):
        mounts = [
            line.split()[4]
            for line in Path("/proc/self/mountinfo").read_text().splitlines()
            if line.split()[4] == prefix or line.split()[4].startswith(prefix + "/")
        ]
        if not mounts:
            return
        for target in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "--lazy", target], capture_output=True, check=False)


@contextlib.contextmanager
def real_node_cluster(fleet: Fleet, name: str, workdir: Path) -> Iterator[tuple[Cluster, RealNode]]:
    """A cluster of ``fleet`` (its kwok node for ordinary workloads) plus a real node."""
    cluster = fleet.add(name, apiserver_args=APISERVER_ARGS)
    node = RealNode(cluster, workdir)
    try:
        node.start()
        yield cluster, node
    finally:
        node.stop()
        fleet.remove(name)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.realnode", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="a cluster with a real node, until interrupted")
    start.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args(argv)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    fleet = Fleet(args.dir)
    try:
        with real_node_cluster(fleet, "real", args.dir / "node") as (cluster, node):
            log(f"cluster {cluster.name} at {cluster.server} with node {node.name}")
            log(f"kubeconfig: {cluster.kubeconfig}")
            while not stop.wait(1):
                pass
    finally:
        fleet.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
