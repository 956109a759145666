"""Real local Kubernetes control planes for tests and the demo, without Docker.

One cluster is kube-apiserver + kube-controller-manager + kube-scheduler + kwok (one fake node whose
pods become Running and Ready), all on free 127.0.0.1 ports.  Clusters share one etcd process, each
under its own key prefix, so several run side by side cheaply.  The binaries come from
``tests/tools/build-tools.sh`` (built from the Go module proxy and cached outside the repo).

Used by the pytest fixtures in ``tests/fixtures/cluster.py`` and, from the command line, by the demo::

    python -m tests.localcluster start --dir /tmp/fleet edge-1 edge-2
    python -m tests.localcluster stop --dir /tmp/fleet
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

REPO_ROOT = Path(__file__).resolve().parent.parent
BUILD_SCRIPT = REPO_ROOT / "tests" / "tools" / "build-tools.sh"
KUBE_VERSION = "v1.36.3"
STARTUP_TIMEOUT = 120.0
# Stages from kwok's module that give pods and nodes a kubelet-like lifecycle.
KWOK_STAGES = (
    "node/fast/node-initialize.yaml",
    "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "pod/fast/pod-ready.yaml",
    "pod/fast/pod-complete.yaml",
    "pod/fast/pod-delete.yaml",
)
# A pod with this label never becomes ready: it runs with its container in CrashLoopBackOff, so
# tests can make a rollout fail the way a broken image would.
NEVER_READY_LABEL = "flotilla.dev/test-never-ready"
NEVER_READY_STAGE = {
    "apiVersion": "kwok.x-k8s.io/v1alpha1",
    "kind": "Stage",
    "metadata": {"name": "pod-never-ready"},
    "spec": {
        "resourceRef": {"apiGroup": "v1", "kind": "Pod"},
        "selector": {
            "matchExpressions": [
                {"key": f'.metadata.labels["{NEVER_READY_LABEL}"]', "operator": "Exists"},
                {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"},
                {"key": ".status.phase", "operator": "In", "values": ["Pending"]},
            ]
        },
        "next": {
            "statusTemplate": (
                "{{ $now := Now }}\n"
                "conditions:\n"
                "- {type: Initialized, status: 'True', lastTransitionTime: {{ $now | Quote }}}\n"
                "- {type: Ready, status: 'False', reason: ContainersNotReady,"
                " lastTransitionTime: {{ $now | Quote }}}\n"
                "- {type: ContainersReady, status: 'False', lastTransitionTime: {{ $now | Quote }}}\n"
                "containerStatuses:\n"
                "{{ range .spec.containers }}\n"
                "- name: {{ .name | Quote }}\n"
                "  image: {{ .image | Quote }}\n"
                "  ready: false\n"
                "  restartCount: 5\n"
                "  state:\n"
                "    waiting: {reason: CrashLoopBackOff,"
                " message: 'back-off 5m0s restarting failed container'}\n"
                "{{ end }}\n"
                "phase: Running\n"
                "startTime: {{ $now | Quote }}\n"
            )
        },
    },
}


# The identity agents and helm use in tests, separate from the control plane's own admin identity, so
# that the audit log can show exactly which writes an agent made.
AGENT_USER = "flotilla-agent"
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        {
            "level": "Metadata",
            "users": [AGENT_USER],
            "verbs": ["create", "update", "patch", "delete", "deletecollection"],
        },
        {"level": "None"},
    ],
}


class ClusterError(RuntimeError):
    """A control-plane component did not build, start or become ready; the message says which."""


def log(message: str) -> None:
    print(f"[localcluster {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Tools:
    """Where the Go-built binaries live."""

    bin_dir: Path

    @property
    def stages_dir(self) -> Path:
        return self.bin_dir.parent / "kwok-stages"

    def path(self, name: str) -> str:
        binary = self.bin_dir / name
        if not binary.is_file():
            raise ClusterError(f"{binary} is missing: run {BUILD_SCRIPT}")
        return str(binary)

    @property
    def helm(self) -> str:
        return self.path("helm")


def find_tools() -> Tools:
    """The tools directory from ``FLOTILLA_TOOLS_BIN``, else from running the (idempotent) build script."""
    configured = os.environ.get("FLOTILLA_TOOLS_BIN")
    if configured:
        return Tools(Path(configured))
    log(f"locating test tools with {BUILD_SCRIPT} (builds them on first use; this can take long)")
    result = subprocess.run([str(BUILD_SCRIPT)], stdout=subprocess.PIPE, text=True, check=False)
    if result.returncode != 0:
        raise ClusterError(f"{BUILD_SCRIPT} failed with exit code {result.returncode}; see its output above")
    bin_dir = Path(result.stdout.strip().splitlines()[-1])
    os.environ["FLOTILLA_TOOLS_BIN"] = str(bin_dir)
    return Tools(bin_dir)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------------------------------
# PKI: a CA per cluster, the API server's serving certificate, an admin client certificate and the
# service-account signing key.  EC keys keep this fast.


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _certificate(
    *,
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    is_ca: bool = False,
    sans: Sequence[x509.GeneralName] = (),
    usage: Sequence[x509.ObjectIdentifier] = (),
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    if usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(usage)), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def write_pki(pki: Path) -> None:
    pki.mkdir(parents=True, exist_ok=True)
    ca_key = _new_key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "flotilla-test-ca")])
    ca = _certificate(subject=ca_name, key=ca_key, issuer=ca_name, issuer_key=ca_key, is_ca=True)
    server_key = _new_key()
    server = _certificate(
        subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]),
        key=server_key,
        issuer=ca_name,
        issuer_key=ca_key,
        sans=[
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("10.96.0.1")),
            x509.DNSName("localhost"),
            x509.DNSName("kubernetes"),
            x509.DNSName("kubernetes.default"),
            x509.DNSName("kubernetes.default.svc"),
            x509.DNSName("kubernetes.default.svc.cluster.local"),
        ],
        usage=[x509.oid.ExtendedKeyUsageOID.SERVER_AUTH],
    )
    admin_key = _new_key()
    admin = _certificate(
        subject=x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters"),
                x509.NameAttribute(NameOID.COMMON_NAME, "flotilla-test-admin"),
            ]
        ),
        key=admin_key,
        issuer=ca_name,
        issuer_key=ca_key,
        usage=[x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH],
    )
    agent_key = _new_key()
    agent = _certificate(
        subject=x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters"),
                x509.NameAttribute(NameOID.COMMON_NAME, AGENT_USER),
            ]
        ),
        key=agent_key,
        issuer=ca_name,
        issuer_key=ca_key,
        usage=[x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH],
    )
    sa_key = _new_key()
    files = {
        "agent.crt": agent.public_bytes(serialization.Encoding.PEM),
        "agent.key": _pem_key(agent_key),
        "ca.crt": ca.public_bytes(serialization.Encoding.PEM),
        "ca.key": _pem_key(ca_key),
        "apiserver.crt": server.public_bytes(serialization.Encoding.PEM),
        "apiserver.key": _pem_key(server_key),
        "admin.crt": admin.public_bytes(serialization.Encoding.PEM),
        "admin.key": _pem_key(admin_key),
        "sa.key": _pem_key(sa_key),
        "sa.pub": sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    }
    for name, content in files.items():
        (pki / name).write_bytes(content)
        (pki / name).chmod(0o600)


# --------------------------------------------------------------------------------------------------
# Processes


@dataclass
class Component:
    """One running binary, its log file and how to stop it."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=timeout)

    def failure(self) -> str:
        tail = self.log_path.read_text(errors="replace").splitlines()[-15:] if self.log_path.exists() else []
        return f"{self.name} exited with code {self.process.returncode}; last log lines:\n" + "\n".join(tail)


def start_component(name: str, argv: list[str], workdir: Path) -> Component:
    log_path = workdir / "logs" / f"{name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            argv,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stop() reaches every child
            cwd=workdir,
        )
    (workdir / "pids").mkdir(exist_ok=True)
    (workdir / "pids" / name).write_text(str(process.pid))
    return Component(name, process, log_path)


def wait_until(
    what: str, check: Callable[[], bool], timeout: float, components: Sequence[Component] = ()
) -> None:
    """Poll ``check()`` until it is true; fail early, with the log, when a component died."""
    deadline = time.monotonic() + timeout
    while True:
        for component in components:
            if not component.alive():
                raise ClusterError(f"while waiting for {what}: {component.failure()}")
        try:
            if check():
                return
        except (OSError, urllib.error.URLError, ssl.SSLError):
            pass
        if time.monotonic() > deadline:
            raise ClusterError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.2)


def _http_ok(url: str, context: ssl.SSLContext | None = None) -> bool:
    with urllib.request.urlopen(url, timeout=2, context=context) as response:  # noqa: S310 (loopback)
        return bool(response.status == 200)


@dataclass
class Etcd:
    """One etcd shared by every cluster of a :class:`Fleet`; each cluster has its own key prefix."""

    tools: Tools
    workdir: Path
    component: Component | None = None
    url: str = ""

    def start(self) -> None:
        client_port, peer_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{client_port}"
        peer = f"http://127.0.0.1:{peer_port}"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.component = start_component(
            "etcd",
            [
                self.tools.path("etcd"),
                "--name=flotilla-test",
                f"--data-dir={self.workdir / 'data'}",
                f"--listen-client-urls={self.url}",
                f"--advertise-client-urls={self.url}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=flotilla-test={peer}",
                "--listen-metrics-urls=",
                "--unsafe-no-fsync=true",
                "--quota-backend-bytes=4294967296",
                "--log-level=warn",
            ],
            self.workdir,
        )
        wait_until("etcd /health", lambda: _http_ok(f"{self.url}/health"), 60, [self.component])

    def stop(self) -> None:
        if self.component:
            self.component.stop()


@dataclass
class Cluster:
    """A running control plane with one fake node; ``kubeconfig`` is what clients use."""

    name: str
    workdir: Path
    tools: Tools
    etcd_url: str
    node_labels: dict[str, str] = field(default_factory=dict)
    apiserver_args: tuple[str, ...] = ()  # extra kube-apiserver flags (tests/realnode.py)
    components: list[Component] = field(default_factory=list)
    api_port: int = 0

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    @property
    def agent_kubeconfig(self) -> Path:
        """A kubeconfig for the agent's own identity (cluster-admin), whose writes the audit log records."""
        return self.workdir / "agent-kubeconfig"

    @property
    def audit_log(self) -> Path:
        return self.workdir / "audit.log"

    def agent_writes(self) -> list[dict[str, object]]:
        """Every create/update/patch/delete the agent identity made so far, from the audit log."""
        if not self.audit_log.exists():
            return []
        events = [json.loads(line) for line in self.audit_log.read_text().splitlines() if line.strip()]
        return [e for e in events if e.get("stage") == "ResponseComplete"]

    def _write_audit_policy(self) -> Path:
        path = self.workdir / "audit-policy.yaml"
        path.write_text(yaml.safe_dump(AUDIT_POLICY))
        return path

    @property
    def pki(self) -> Path:
        return self.workdir / "pki"

    def env(self) -> dict[str, str]:
        """Environment for kubectl/helm/agents talking to this cluster, with Helm's dirs kept inside it."""
        env = dict(os.environ)
        env["KUBECONFIG"] = str(self.kubeconfig)
        for var in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
            env[var] = str(self.workdir / "helm" / var.lower())
        env["PATH"] = f"{self.tools.bin_dir}{os.pathsep}{env.get('PATH', '')}"
        return env

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        context.load_cert_chain(str(self.pki / "admin.crt"), str(self.pki / "admin.key"))
        return context

    def api(self, path: str, method: str = "GET", body: object | None = None) -> dict[str, object]:
        """A raw call to this cluster's API server (set-up and readiness checks only)."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 (loopback)
            self.server + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10, context=self.ssl_context()) as response:  # noqa: S310
            return dict(json.loads(response.read()))

    def start(self) -> None:
        started = time.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        write_pki(self.pki)
        self.api_port = free_port()
        self._write_kubeconfig()
        pki = self.pki
        apiserver = start_component(
            "kube-apiserver",
            [
                self.tools.path("kube-apiserver"),
                f"--etcd-servers={self.etcd_url}",
                f"--etcd-prefix=/clusters/{self.name}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.api_port}",
                f"--cert-dir={self.workdir / 'apiserver-certs'}",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--client-ca-file={pki / 'ca.crt'}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                "--service-cluster-ip-range=10.96.0.0/16",
                "--authorization-mode=Node,RBAC",
                "--allow-privileged=true",
                "--endpoint-reconciler-type=none",
                "--profiling=false",
                "--enable-priority-and-fairness=false",
                "--watch-cache=true",
                f"--audit-policy-file={self._write_audit_policy()}",
                f"--audit-log-path={self.audit_log}",
                "--audit-log-format=json",
                "--audit-log-mode=blocking",
                *self.apiserver_args,
            ],
            self.workdir,
        )
        self.components.append(apiserver)
        context = self.ssl_context()
        wait_until(
            f"{self.name}: kube-apiserver /readyz",
            lambda: _http_ok(f"{self.server}/readyz", context),
            STARTUP_TIMEOUT,
            [apiserver],
        )
        common = [
            f"--kubeconfig={self.kubeconfig}",
            f"--authentication-kubeconfig={self.kubeconfig}",
            f"--authorization-kubeconfig={self.kubeconfig}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
        ]
        kcm_port, scheduler_port = free_port(), free_port()
        controller_manager = start_component(
            "kube-controller-manager",
            [
                self.tools.path("kube-controller-manager"),
                *common,
                f"--secure-port={kcm_port}",
                f"--cert-dir={self.workdir / 'kcm-certs'}",
                f"--service-account-private-key-file={pki / 'sa.key'}",
                f"--root-ca-file={pki / 'ca.crt'}",
                f"--cluster-signing-cert-file={pki / 'ca.crt'}",
                f"--cluster-signing-key-file={pki / 'ca.key'}",
            ],
            self.workdir,
        )
        scheduler = start_component(
            "kube-scheduler",
            [
                self.tools.path("kube-scheduler"),
                *common,
                f"--secure-port={scheduler_port}",
                f"--cert-dir={self.workdir / 'scheduler-certs'}",
            ],
            self.workdir,
        )
        kwok = start_component(
            "kwok",
            [
                self.tools.path("kwok"),
                f"--kubeconfig={self.kubeconfig}",
                f"--config={self._write_kwok_stages()}",
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                "--node-ip=127.0.0.1",
                "--cidr=10.244.0.0/16",
                "--node-lease-duration-seconds=40",
            ],
            self.workdir,
        )
        self.components += [controller_manager, scheduler, kwok]
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE  # the components' self-signed health endpoints
        for component, port in ((controller_manager, kcm_port), (scheduler, scheduler_port)):
            wait_until(
                f"{self.name}: {component.name} /healthz",
                lambda port=port: _http_ok(f"https://127.0.0.1:{port}/healthz", insecure),
                STARTUP_TIMEOUT,
                self.components,
            )
        self._create_node()
        wait_until(f"{self.name}: node Ready", self._node_ready, STARTUP_TIMEOUT, self.components)
        wait_until(
            f"{self.name}: default service account",
            lambda: bool(self.api("/api/v1/namespaces/default/serviceaccounts/default")),
            STARTUP_TIMEOUT,
            self.components,
        )
        (self.workdir / "ready").write_text(json.dumps({"name": self.name, "server": self.server}))
        log(f"cluster {self.name} ready at {self.server} in {time.monotonic() - started:.1f}s")

    def stop(self) -> None:
        for component in reversed(self.components):
            component.stop()
        self.components.clear()

    def rss_bytes(self) -> int:
        """Resident memory of this cluster's processes (etcd is shared and counted by the Fleet)."""
        return sum(process_rss(c.process.pid) for c in self.components if c.alive())

    def _write_kubeconfig(self) -> None:
        for path, user, cert in (
            (self.kubeconfig, "admin", "admin"),
            (self.agent_kubeconfig, AGENT_USER, "agent"),
        ):
            config = {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": self.name,
                        "cluster": {"server": self.server, "certificate-authority": str(self.pki / "ca.crt")},
                    }
                ],
                "users": [
                    {
                        "name": user,
                        "user": {
                            "client-certificate": str(self.pki / f"{cert}.crt"),
                            "client-key": str(self.pki / f"{cert}.key"),
                        },
                    }
                ],
                "contexts": [{"name": self.name, "context": {"cluster": self.name, "user": user}}],
                "current-context": self.name,
            }
            path.write_text(yaml.safe_dump(config))
            path.chmod(0o600)

    def _write_kwok_stages(self) -> Path:
        documents: list[object] = []
        for stage in KWOK_STAGES:
            source = self.tools.stages_dir / stage
            if not source.is_file():
                raise ClusterError(f"kwok stage {source} is missing: rerun {BUILD_SCRIPT}")
            document = yaml.safe_load(source.read_text())
            if document["metadata"]["name"] == "pod-ready":  # leave never-ready pods to their own stage
                document["spec"]["selector"]["matchExpressions"].append(
                    {"key": f'.metadata.labels["{NEVER_READY_LABEL}"]', "operator": "DoesNotExist"}
                )
            documents.append(document)
        documents.append(NEVER_READY_STAGE)
        path = self.workdir / "kwok-stages.yaml"
        path.write_text(yaml.safe_dump_all(documents))
        return path

    def _create_node(self) -> None:
        labels = {
            "kubernetes.io/hostname": "kwok-node-0",
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "type": "kwok",
            **self.node_labels,
        }
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": "kwok-node-0",
                "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                "labels": labels,
            },
            "status": {
                "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "500"},
                "capacity": {"cpu": "32", "memory": "256Gi", "pods": "500"},
            },
        }
        self.api("/api/v1/nodes", method="POST", body=node)

    def _node_ready(self) -> bool:
        node = self.api("/api/v1/nodes/kwok-node-0")
        conditions = node.get("status", {}).get("conditions", [])
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def process_rss(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


@dataclass
class Fleet:
    """Several clusters over one shared etcd, all under ``workdir``."""

    workdir: Path
    tools: Tools = field(default_factory=find_tools)
    etcd: Etcd | None = None
    clusters: dict[str, Cluster] = field(default_factory=dict)

    def start_etcd(self) -> None:
        if self.etcd is None:
            self.workdir.mkdir(parents=True, exist_ok=True)
            self.etcd = Etcd(self.tools, self.workdir / "etcd")
            self.etcd.start()

    def add(
        self, name: str, node_labels: dict[str, str] | None = None, apiserver_args: Sequence[str] = ()
    ) -> Cluster:
        if name in self.clusters:
            raise ClusterError(f"cluster {name!r} already exists")
        self.start_etcd()
        assert self.etcd is not None
        cluster = Cluster(
            name,
            self.workdir / name,
            self.tools,
            self.etcd.url,
            dict(node_labels or {}),
            tuple(apiserver_args),
        )
        self.clusters[name] = cluster
        try:
            cluster.start()
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def remove(self, name: str) -> None:
        cluster = self.clusters.pop(name)
        cluster.stop()
        shutil.rmtree(cluster.workdir, ignore_errors=True)

    def stop(self) -> None:
        for cluster in self.clusters.values():
            cluster.stop()
        self.clusters.clear()
        if self.etcd:
            self.etcd.stop()
            self.etcd = None

    def rss_bytes(self) -> int:
        shared = process_rss(self.etcd.component.process.pid) if self.etcd and self.etcd.component else 0
        return shared + sum(cluster.rss_bytes() for cluster in self.clusters.values())


@contextlib.contextmanager
def running_fleet(workdir: Path) -> Iterator[Fleet]:
    fleet = Fleet(workdir)
    try:
        yield fleet
    finally:
        fleet.stop()


def stop_recorded(workdir: Path) -> int:
    """Stop every process whose pid a fleet recorded under ``workdir`` (for ``demo-stop``)."""
    stopped = 0
    for pid_file in sorted(workdir.glob("**/pids/*")):
        with contextlib.suppress(OSError, ValueError):
            pid = int(pid_file.read_text())
            os.killpg(pid, signal.SIGTERM)
            stopped += 1
        pid_file.unlink(missing_ok=True)
    return stopped


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.localcluster", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start clusters and keep them running until interrupted")
    start.add_argument("--dir", type=Path, required=True)
    start.add_argument("names", nargs="+")
    stop = sub.add_parser("stop", help="stop every process recorded under --dir")
    stop.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "stop":
        log(f"stopped {stop_recorded(args.dir)} processes")
        return 0
    with running_fleet(args.dir) as fleet:
        try:
            for name in args.names:
                log(f"starting cluster {name}")
                fleet.add(name)
        except ClusterError as error:
            log(f"error: {error}")
            return 1
        log(
            f"{len(fleet.clusters)} clusters running, {fleet.rss_bytes() / 2**20:.0f} MiB RSS; "
            "Ctrl-C stops them"
        )
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        while not stop.wait(1):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
