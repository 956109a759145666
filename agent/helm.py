"""The only module that runs ``helm``.

It executes and does not decide: the reconcile pass chooses install, upgrade, rollback or uninstall,
and this module runs the command and turns a failure into a :class:`HelmError` carrying Helm's own
message (bounded, with credentials scrubbed).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import structlog

from agent.redaction import redact_url

log = structlog.get_logger(__name__)

MESSAGE_LIMIT = 4096


class HelmError(RuntimeError):
    """helm failed; ``str(error)`` is Helm's message."""


def scrub(text: str) -> str:
    text = redact_url(text).strip()
    if text.startswith("Error: "):
        text = text[len("Error: ") :]
    return text[:MESSAGE_LIMIT]


@dataclass(frozen=True)
class ChartRef:
    """What to pass to helm as the chart: a directory, or a name with ``--repo``, or an ``oci://`` ref."""

    chart: str
    repo_url: str | None = None
    version: str | None = None

    def arguments(self) -> list[str]:
        args = [self.chart]
        if self.repo_url:
            args += ["--repo", self.repo_url]
        if self.version:
            args += ["--version", self.version]
        return args


@dataclass(frozen=True)
class ChartAccess:
    """How to reach one chart host (an OCI registry or an HTTP Helm repository), from the agent's
    credentials file.  ``repr`` never shows the password."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    plain_http: bool = False  # a registry without TLS (a site-local mirror)
    ca_file: Path | None = None


def chart_host(chart: ChartRef) -> str:
    """``host[:port]`` of the chart's OCI registry or HTTP repository ("" for a local chart)."""
    url = chart.chart if chart.chart.startswith("oci://") else chart.repo_url
    return urlsplit(url).netloc.rpartition("@")[2] if url else ""


@dataclass
class Helm:
    binary: str
    kubeconfig: Path | None
    home: Path  # Helm's cache/config/data directories live here, in the agent's state directory
    calls: list[str] = field(default_factory=list)  # the subcommands run, for tests and benchmarks
    access: Mapping[str, ChartAccess] = field(default_factory=dict)  # by chart host

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HELM_")}
        for variable in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
            env[variable] = str(self.home / variable.removeprefix("HELM_").removesuffix("_HOME").lower())
        if self.kubeconfig:
            env["KUBECONFIG"] = str(self.kubeconfig)
        return env

    def _run(self, args: Sequence[str], timeout: float, stdin: str | None = None) -> str:
        self.calls.append(args[0])
        log.debug("helm", args=list(args[:3]))
        try:
            result = subprocess.run(
                [self.binary, *args],
                env=self._env(),
                input=stdin,
                stdin=None if stdin is not None else subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except FileNotFoundError:
            raise HelmError(f"helm binary {self.binary!r} not found") from None
        except subprocess.TimeoutExpired:
            raise HelmError(f"helm {args[0]} did not finish within {timeout:.0f}s") from None
        if result.returncode != 0:
            message = scrub(result.stderr or result.stdout or f"helm {args[0]} failed")
            for access in self.access.values():
                if access.password:
                    message = message.replace(access.password, "***")
            raise HelmError(message)
        return result.stdout

    @contextlib.contextmanager
    def _chart_access(self, chart: ChartRef) -> Iterator[list[str]]:
        """Arguments to reach the chart's host.  OCI credentials go in a registry config file in a
        private temporary directory, removed when helm is done (never in the state directory)."""
        access = self.access.get(chart_host(chart))
        if access is None:
            yield []
            return
        args = ["--plain-http"] if access.plain_http else []
        if access.ca_file is not None:
            args += ["--ca-file", str(access.ca_file)]
        if not access.username or access.password is None:
            yield args
            return
        if not chart.chart.startswith("oci://"):
            # An HTTP repository reached with --repo takes its credentials only as flags.
            yield [*args, "--username", access.username, "--password", access.password]
            return
        with tempfile.TemporaryDirectory(prefix="flotilla-helm-") as private:
            config = Path(private) / "registry.json"
            token = base64.b64encode(f"{access.username}:{access.password}".encode()).decode()
            config.write_text(json.dumps({"auths": {chart_host(chart): {"auth": token}}}))
            config.chmod(0o600)
            yield [*args, "--registry-config", str(config)]

    def upgrade_install(
        self,
        *,
        release: str,
        namespace: str,
        chart: ChartRef,
        values: Mapping[str, Any],
        labels: Mapping[str, str],
        timeout_seconds: int,
        wait: bool,
        max_history: int,
    ) -> None:
        """Install or upgrade.  Values go to helm on its stdin (``--values -``): never on the command
        line, never in a file (decrypted SOPS values must not touch the disk)."""
        args = [
            "upgrade", release, *chart.arguments(), "--install",
            "--namespace", namespace, "--create-namespace",
            "--values", "-",
            "--history-max", str(max_history),
            "--timeout", f"{timeout_seconds}s",
            "--labels", ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
            "--reset-values",
        ]  # fmt: skip
        if wait:
            args.append("--wait=watcher")
        with self._chart_access(chart) as access:
            self._run([*args, *access], timeout=timeout_seconds + 60, stdin=json.dumps(values))

    def rollback(
        self, *, release: str, namespace: str, revision: int, timeout_seconds: int, wait: bool
    ) -> None:
        args = [
            "rollback",
            release,
            str(revision),
            "--namespace",
            namespace,
            "--timeout",
            f"{timeout_seconds}s",
        ]
        if wait:
            args.append("--wait=watcher")
        self._run(args, timeout=timeout_seconds + 60)

    def uninstall(self, *, release: str, namespace: str, timeout_seconds: int = 120) -> None:
        args = ["uninstall", release, "--namespace", namespace, "--timeout", f"{timeout_seconds}s", "--wait"]
        self._run(args, timeout=timeout_seconds + 60)

    def prepare(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
