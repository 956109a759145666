"""The only module that runs ``helm``.

It executes and does not decide: the reconcile pass chooses install, upgrade, rollback or uninstall,
and this module runs the command and turns a failure into a :class:`HelmError` carrying Helm's own
message (bounded, with credentials scrubbed).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


@dataclass
class Helm:
    binary: str
    kubeconfig: Path | None
    home: Path  # Helm's cache/config/data directories live here, in the agent's state directory
    calls: list[str] = field(default_factory=list)  # the subcommands run, for tests and benchmarks

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
            raise HelmError(scrub(result.stderr or result.stdout or f"helm {args[0]} failed"))
        return result.stdout

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
        self._run(args, timeout=timeout_seconds + 60, stdin=json.dumps(values))

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
