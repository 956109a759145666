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
import re
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import structlog

from agent.redaction import redact_url

log = structlog.get_logger(__name__)

MESSAGE_LIMIT = 4096
# How long past its ``--timeout`` a helm run by the agent may live before the agent kills it: a
# pending release older than its timeout plus this is certainly not being worked on by an agent.
KILL_AFTER_TIMEOUT_SECONDS = 60
OnStart = Callable[[int], None]


class HelmError(RuntimeError):
    """helm failed; ``str(error)`` is Helm's message."""


# Helm 4 logs through slog: "level=WARN msg=..." (sometimes "time=... level=..."): not the error itself.
_LOG_LINE = re.compile(r"^(time=\S+\s+)?level=(DEBUG|INFO|WARN|WARNING)\b")


def scrub(text: str) -> str:
    """Helm's error, cause first: its log lines dropped (unless nothing else is left), the
    ``Error: `` prefix removed, credentials in URLs redacted, bounded."""
    lines = [line.rstrip() for line in redact_url(text).strip().splitlines()]
    errors = [line for line in lines if line.strip() and not _LOG_LINE.match(line)]
    kept = errors or [line for line in lines if line.strip()]
    text = "\n".join(line.removeprefix("Error: ") for line in kept).strip()
    return text[:MESSAGE_LIMIT]


def _signal_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


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
    # False in the namespaced RBAC mode: the agent may not create namespaces, they exist already.
    create_namespace: bool = True
    access: Mapping[str, ChartAccess] = field(default_factory=dict)  # by chart host

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HELM_")}
        for variable in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
            env[variable] = str(self.home / variable.removeprefix("HELM_").removesuffix("_HOME").lower())
        if self.kubeconfig:
            env["KUBECONFIG"] = str(self.kubeconfig)
        return env

    def _run(
        self, args: Sequence[str], timeout: float, stdin: str | None = None, on_start: OnStart | None = None
    ) -> str:
        """Run helm; ``on_start`` is told helm's pid once it runs (the caller records it: a pending
        release whose helm is gone can then be told from one still being worked on)."""
        self.calls.append(args[0])
        log.debug("helm", args=list(args[:3]))
        try:
            process = subprocess.Popen(
                [self.binary, *args],
                env=self._env(),
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        except FileNotFoundError:
            raise HelmError(f"helm binary {self.binary!r} not found") from None
        with process:
            if on_start is not None:
                on_start(process.pid)
            try:
                stdout, stderr = process.communicate(input=stdin, timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()
                raise HelmError(
                    f"helm {args[0]} did not finish within {timeout:.0f}s and was stopped"
                ) from None
        if process.returncode < 0:
            said = self._redacted(scrub(stderr or ""))
            raise HelmError(
                f"helm {args[0]} was killed by {_signal_name(process.returncode)}"
                + (f": {said}" if said else "")
            )
        if process.returncode != 0:
            message = scrub(stderr or stdout or "") or f"helm {args[0]} failed (exit {process.returncode})"
            raise HelmError(self._redacted(message))
        return stdout

    def _redacted(self, message: str) -> str:
        for access in self.access.values():
            if access.password:
                message = message.replace(access.password, "***")
        return message

    @contextlib.contextmanager
    def _chart_access(self, chart: ChartRef) -> Iterator[list[str]]:
        """The chart and the arguments to reach its host.  Credentials never go on a command line
        (any local user can read it in ``/proc``): they go in files in a private temporary directory,
        removed when helm is done (never in the state directory)."""
        access = self.access.get(chart_host(chart))
        if access is None:
            yield chart.arguments()
            return
        tls = ["--ca-file", str(access.ca_file)] if access.ca_file is not None else []
        if not access.username or access.password is None:
            yield [*chart.arguments(), *(["--plain-http"] if access.plain_http else []), *tls]
            return
        with tempfile.TemporaryDirectory(prefix="flotilla-helm-") as private:
            if chart.chart.startswith("oci://"):
                yield [*chart.arguments(), *self._registry_login(Path(private), chart, access), *tls]
            else:
                yield [*self._named_repository(Path(private), chart, access, tls), *tls]

    @staticmethod
    def _registry_login(private: Path, chart: ChartRef, access: ChartAccess) -> list[str]:
        config = private / "registry.json"
        token = base64.b64encode(f"{access.username}:{access.password}".encode()).decode()
        config.write_text(json.dumps({"auths": {chart_host(chart): {"auth": token}}}))
        config.chmod(0o600)
        return [*(["--plain-http"] if access.plain_http else []), "--registry-config", str(config)]

    def _named_repository(
        self, private: Path, chart: ChartRef, access: ChartAccess, tls: list[str]
    ) -> list[str]:
        """An HTTP repository behind basic auth: ``--repo`` takes credentials only as flags, so the
        repository is added under a name in a private repositories file, password on stdin, and
        the chart is then named through it (one more helm call, only for such repositories)."""
        files = ["--repository-config", str(private / "repositories.yaml"),
                 "--repository-cache", str(private / "cache")]  # fmt: skip
        self._run(
            ["repo", "add", "site-private", str(chart.repo_url), "--username", str(access.username),
             "--password-stdin", "--force-update", *tls, *files],
            timeout=120,
            stdin=str(access.password),
        )  # fmt: skip
        named = ChartRef(chart=f"site-private/{chart.chart}", version=chart.version)
        return [*named.arguments(), *files]

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
        on_start: OnStart | None = None,
    ) -> None:
        """Install or upgrade.  Values go to helm on its stdin (``--values -``): never on the command
        line, never in a file (decrypted SOPS values must not touch the disk)."""
        args = [
            "upgrade", release, "--install",
            "--namespace", namespace, *(["--create-namespace"] if self.create_namespace else []),
            "--values", "-",
            "--history-max", str(max_history),
            "--timeout", f"{timeout_seconds}s",
            "--labels", ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
            "--reset-values",
        ]  # fmt: skip
        if wait:
            args.append("--wait=watcher")
        with self._chart_access(chart) as chart_args:
            self._run(
                [*args, *chart_args],
                timeout_seconds + KILL_AFTER_TIMEOUT_SECONDS,
                stdin=json.dumps(values),
                on_start=on_start,
            )

    def rollback(
        self,
        *,
        release: str,
        namespace: str,
        revision: int,
        timeout_seconds: int,
        wait: bool,
        on_start: OnStart | None = None,
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
        self._run(args, timeout_seconds + KILL_AFTER_TIMEOUT_SECONDS, on_start=on_start)

    def uninstall(
        self, *, release: str, namespace: str, timeout_seconds: int = 120, on_start: OnStart | None = None
    ) -> None:
        args = ["uninstall", release, "--namespace", namespace, "--timeout", f"{timeout_seconds}s", "--wait"]
        self._run(args, timeout_seconds + KILL_AFTER_TIMEOUT_SECONDS, on_start=on_start)

    def prepare(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
