"""The agent's main loop: a pass, a report, a wait; and the wiring of the parts from the settings.

The wait is the interval plus up to 10% jitter (so a fleet restarted at once spreads out), shorter
after a failed pass (exponential backoff from 5 s up to the interval), and cut short by watchdog when
a local fleet repo or the config file changes.  SIGTERM lets the current release step finish, skips
the rest of the pass (and its pruning) and exits.  The waiting, the watching and the signal handlers
are in ``agent.between_passes``.
"""

from __future__ import annotations

import os
import platform
import random
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import structlog

from agent import __version__, inflight, lease, readiness, report, selfupgrade, sops
from agent.between_passes import install_signal_handlers, next_wait, wait_for_next_pass, watch_for_changes
from agent.fleet import ContentCache
from agent.gates import Gates
from agent.helm import Helm
from agent.kube import Kube, KubeError
from agent.lease import AgentLease
from agent.reconcile import PassContext, PassOutcome, reconcile_once
from agent.redaction import redact_url
from agent.reporter import Reporter, next_sequence
from agent.settings import SERVICE_ACCOUNT_NAMESPACE, AgentSettings, SettingsError
from agent.source import Source, SourceError, SourceRevision, SourceSpec
from hub import contract

log = structlog.get_logger(__name__)

STOP_FLUSH_SECONDS = 5.0  # on SIGTERM, how long the last report may take to reach the hub (its pod gets 60 s)


@dataclass
class Agent:
    """The parts one agent process works with, built once from its settings."""

    settings: AgentSettings
    source: Source
    kube: Kube
    helm: Helm
    reporter: Reporter | None
    lease: AgentLease | None = None
    decryptor: sops.Decryptor | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    wake: threading.Event = field(default_factory=threading.Event)
    self_upgrade: selfupgrade.Record | None = None
    fleet_cache: ContentCache = field(default_factory=ContentCache)
    clock: Callable[[], float] = time.time  # the pass's clock: maintenance windows, backoff, bake watch

    @classmethod
    def from_settings(cls, settings: AgentSettings) -> Agent:
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        home = os.environ.get("HOME")
        if home and not Path(home).exists():  # the image points HOME into the state volume
            Path(home).mkdir(parents=True, exist_ok=True)
        helm = Helm(
            binary=settings.helm,
            kubeconfig=settings.kubeconfig,
            home=settings.state_dir / "helm",
            create_namespace=settings.namespaces is None,
            access=settings.chart_access,
        )
        helm.prepare()
        reporter = None
        if settings.hub_url:
            if not settings.hub_token:
                log.warning("hub_token_missing", hub=settings.hub_url)
            reporter = Reporter(settings.hub_url, settings.hub_token or "", settings.state_dir)
        kube = Kube.connect(settings.kubeconfig)
        kube.namespaces = settings.namespaces
        return cls(
            settings=settings,
            source=build_source(settings),
            kube=kube,
            helm=helm,
            reporter=reporter,
            lease=lease.for_agent(
                kube, settings.state_dir, settings.cluster, _lease_namespace(settings), inflight.host()
            ),
            decryptor=sops.from_secret(kube, settings.sops_key_secret, settings.sops)
            if settings.sops_key_secret
            else None,
        )

    def run_pass(self) -> tuple[PassOutcome, contract.StatusReport]:
        """Sync, reconcile, report.  Never raises for a problem it can report."""
        started, cpu_before = time.monotonic(), _cpu_seconds()
        round_trips_before = self.source.round_trips
        revision = self.source.sync()
        context = PassContext(
            cluster=self.settings.cluster,
            state_dir=self.settings.state_dir,
            kube=self.kube,
            helm=self.helm,
            interval=self.settings.interval,
            stop=self.stop,
            lease=self.lease,
            sops=self.decryptor,
            fleet_cache=self.fleet_cache,
            gates=Gates(
                self.settings.cluster,
                self.settings.state_dir,
                self.reporter.ask_gates if self.reporter is not None else None,
            ),
            reported=_reported(report.load_last(self.settings.state_dir)),
            checkout_at=self.source.checkout_at,
            clock=self.clock,
        )
        outcome = reconcile_once(context, revision)
        if revision.commit and outcome.ok:
            self.source.mark_applied(revision.commit)
        self._watch_self(outcome)
        status = self._report(outcome, revision)
        log.info(
            "pass_finished",
            commit=(revision.commit or "")[:12],
            health=status.health,
            ok=outcome.ok,
            releases=len(outcome.releases),
            pruned=len(outcome.pruned),
            helm_calls=len(outcome.helm_calls),
            api_writes=outcome.api_writes,
            git_round_trips=self.source.round_trips - round_trips_before,
            seconds=round(time.monotonic() - started, 3),
            cpu_seconds=round(_cpu_seconds() - cpu_before, 3),
        )
        return outcome, status

    def _report(self, outcome: PassOutcome, revision: SourceRevision) -> contract.StatusReport:
        previous = report.load_last(self.settings.state_dir)
        status = report.build(
            outcome,
            sequence=next_sequence(self.settings.state_dir),
            source_url=redact_url(self.settings.repo_url),
            ref=self.source.spec.pin,
            interval_seconds=self.settings.interval,
            previous=previous,
            hub_error=self.reporter.last_error if self.reporter is not None else None,
            signature=revision.signature,
        )
        upgrade_from, upgrade_to, upgrade_result = selfupgrade.report_fields(self.self_upgrade)
        status = replace(
            status,
            agent_image=os.environ.get(selfupgrade.IMAGE_ENV, ""),
            self_upgrade_from=upgrade_from,
            self_upgrade_to=upgrade_to,
            self_upgrade_result=upgrade_result,
        )
        report.save(self.settings.state_dir, status)
        if self.reporter is not None:
            self.reporter.submit(status)
        return status

    def _watch_self(self, outcome: PassOutcome) -> None:
        """The self-upgrade watchdog (agent.selfupgrade), when the agent is a bundle of its repo."""
        found = selfupgrade.self_release(outcome.releases)
        if found is None:
            return
        lease = self.lease
        proved = readiness.pass_proves_agent(
            outcome.commit, outcome.error, outcome.cluster_error, len(outcome.problems)
        )
        try:
            record = selfupgrade.after_pass(
                kube=self.kube,
                helm=self.helm,
                state_dir=self.settings.state_dir,
                namespace=found[0],
                digest=found[1],
                proved=proved,
                may_act=(lambda: lease.acquire()) if lease is not None else (lambda: None),
            )
        finally:
            if lease is not None:
                lease.release()
        if record is not None:
            self.self_upgrade = record

    def close(self) -> None:
        if self.reporter is not None:
            self.reporter.close()


def _lease_namespace(settings: AgentSettings) -> str:
    """The setting, else the pod's own namespace when in-cluster, else ``default``."""
    if settings.lease_namespace:
        return settings.lease_namespace
    if settings.kubeconfig is None:
        try:
            return SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or "default"
        except OSError:
            pass
    return "default"


def _reported(last: contract.StatusReport | None) -> dict[str, tuple[int | None, str | None]]:
    return {} if last is None else {b.bundle: (b.helm_revision, b.applied_commit) for b in last.bundles}


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (git, helm): what a pass really costs."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def build_source(settings: AgentSettings) -> Source:
    try:
        spec = SourceSpec(
            url=settings.repo_url,
            branch=settings.branch,
            tag=settings.tag,
            commit=settings.commit,
            path="" if settings.path in ("", ".") else settings.path,
            credentials=settings.credentials,
        )
    except SourceError as error:  # a configuration mistake: say which setting
        raise SettingsError(str(error)) from None
    return Source(spec, settings.state_dir, signatures=settings.signatures)


def run(settings: AgentSettings) -> int:
    """``flotilla-agent run``: reconcile until SIGTERM/SIGINT."""
    try:
        agent = Agent.from_settings(settings)
    except (KubeError, SettingsError) as error:
        log.error("startup_failed", error=str(error))
        return 1
    readiness.clear(settings.state_dir)  # Ready again only after a pass of this process
    install_signal_handlers(agent)
    observer = watch_for_changes(agent)
    rng = random.Random()  # noqa: S311 - jitter, not security
    failures = 0
    log.info("agent_started", version=__version__, machine=platform.machine(), settings=repr(settings))
    try:
        while not agent.stop.is_set():
            agent.wake.clear()  # before the pass: a change made during it wakes the next one
            try:
                outcome, _ = agent.run_pass()
                _mark_ready(agent, outcome)
                failed = outcome.error or outcome.cluster_error or outcome.source_error
                failures = failures + 1 if failed else 0
            except Exception as error:  # a bug must not kill an edge agent: log, back off, retry
                log.exception("pass_crashed", error=str(error))
                failures += 1
            wait_for_next_pass(agent, next_wait(settings.interval, failures, rng))
    finally:
        if observer is not None:
            observer.stop()
        if agent.reporter is not None:  # the last pass's report reaches the hub, not the next start
            agent.reporter.flush(timeout=STOP_FLUSH_SECONDS)
        agent.close()
        log.info("agent_stopped")
    return 0


def _mark_ready(agent: Agent, outcome: PassOutcome) -> None:
    if not agent.stop.is_set() and readiness.pass_proves_agent(
        outcome.commit, outcome.error, outcome.cluster_error, len(outcome.problems)
    ):
        readiness.mark(agent.settings.state_dir, outcome.commit)


def once(settings: AgentSettings) -> tuple[int, PassOutcome | None, contract.StatusReport | None]:
    """``flotilla-agent once``: one pass; exit code 0 only when every bundle is Ready."""
    try:
        agent = Agent.from_settings(settings)
    except (KubeError, SettingsError) as error:
        log.error("startup_failed", error=str(error))
        print(f"flotilla-agent: {error}", file=sys.stderr)
        return 1, None, None
    install_signal_handlers(agent)
    try:
        outcome, status = agent.run_pass()
        if agent.reporter is not None:
            agent.reporter.flush(timeout=10)
    finally:
        agent.close()
    return (0 if outcome.ok else 1), outcome, status


def last_report(state_dir: Path) -> contract.StatusReport | None:
    return report.load_last(state_dir)
