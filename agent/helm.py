"""The only module that runs ``helm``.

It executes and does not decide: the reconcile pass chooses install, upgrade, rollback or uninstall,
and this module runs the command and turns a failure into a :class:`HelmError` carrying Helm's own
message (bounded, with credentials scrubbed).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


@dataclass
class Helm:
    binary: str
    kubeconfig: Path | None
    home: Path  # Helm's cache/config/data directories live here, in the agent's state directory
    calls: list[str] = field(default_factory=list)  # the subcommands run, for tests and benchmarks
    # False in the namespaced RBAC mode: the agent may not create namespaces, they exist already.
    create_namespace: bool = True

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HELM_")}
        for variable in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
            env[variable] = str(self.home / variable.removeprefix("HELM_").removesuffix("_HOME").lower())
        if self.kubeconfig:
            env["KUBECONFIG"] = str(self.kubeconfig)
        return env

    def _run(self, args: Sequence[str], timeout: float, on_start: OnStart | None = None) -> str:
        """Run helm; ``on_start`` is told helm's pid once it runs (the caller records it: a pending
        release whose helm is gone can then be told from one still being worked on)."""
        self.calls.append(args[0])
        log.debug("helm", args=list(args[:3]))
        try:
            process = subprocess.Popen(
                [self.binary, *args],
                env=self._env(),
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
                stdout, stderr = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()
                raise HelmError(
                    f"helm {args[0]} did not finish within {timeout:.0f}s and was stopped"
                ) from None
        if process.returncode < 0:
            said = scrub(stderr or "")
            raise HelmError(
                f"helm {args[0]} was killed by {_signal_name(process.returncode)}"
                + (f": {said}" if said else "")
            )
        if process.returncode != 0:
            raise HelmError(
                scrub(stderr or stdout or "") or f"helm {args[0]} failed (exit {process.returncode})"
            )
        return stdout

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
        """Install or upgrade; values go through a private temporary file, never the command line."""
        with tempfile.NamedTemporaryFile("w", suffix=".json", dir=self.home, delete=True) as values_file:
            json.dump(values, values_file)
            values_file.flush()
            args = [
                "upgrade", release, *chart.arguments(), "--install",
                "--namespace", namespace, *(["--create-namespace"] if self.create_namespace else []),
                "--values", values_file.name,
                "--history-max", str(max_history),
                "--timeout", f"{timeout_seconds}s",
                "--labels", ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
                "--reset-values",
            ]  # fmt: skip
            if wait:
                args.append("--wait=watcher")
            self._run(args, timeout_seconds + KILL_AFTER_TIMEOUT_SECONDS, on_start)

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
        self._run(args, timeout_seconds + KILL_AFTER_TIMEOUT_SECONDS, on_start)

    def uninstall(
        self, *, release: str, namespace: str, timeout_seconds: int = 120, on_start: OnStart | None = None
    ) -> None:
        args = ["uninstall", release, "--namespace", namespace, "--timeout", f"{timeout_seconds}s", "--wait"]
        self._run(args, timeout_seconds + KILL_AFTER_TIMEOUT_SECONDS, on_start)

    def prepare(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
