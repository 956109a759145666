"""The agent's Lease: two agents for one cluster never act on it at once.

A ``coordination.k8s.io/v1`` Lease, ``flotilla-<cluster>`` in the agent's namespace, is taken just
before a pass first changes anything (a helm call, a drift correction, a prune), renewed every third
of its duration while the pass runs, and given back when the pass ends; a pass that changes nothing
writes nothing.  Another agent — a second Deployment, or an operator's ``flotilla-agent once`` —
finds it held and leaves every release alone for that pass.

A holder is ``<agent id>/<host>/<pid>``; the agent id lives in the state directory.  A Lease held by
the same agent id on the same host whose process is gone (the agent was killed) is taken over at
once; any other holder only once the Lease has expired (not renewed for its duration).

:func:`may_take` is the pure rule; :class:`AgentLease` does the reads and writes through ``Kube``.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import structlog

from agent import inflight
from agent.kube import Kube, KubeConflict, KubeError

log = structlog.get_logger(__name__)

DURATION_SECONDS: Final = 60
AGENT_ID_FILE: Final = "agent-id"


@dataclass(frozen=True)
class Holder:
    agent_id: str
    host: str
    pid: int

    def __str__(self) -> str:
        return f"{self.agent_id}/{self.host}/{self.pid}"

    @classmethod
    def parse(cls, text: str) -> Holder | None:
        parts = text.rsplit("/", 2)
        if len(parts) != 3 or not parts[2].isdigit():
            return None
        return cls(parts[0], parts[1], int(parts[2]))


def lease_name(cluster: str) -> str:
    """``flotilla-<cluster>``; a long or unusual cluster name is shortened with a hash (a DNS name)."""
    name = re.sub(r"[^a-z0-9.-]", "-", f"flotilla-{cluster}".lower()).strip("-.")
    if len(name) <= 63 and name == f"flotilla-{cluster}":
        return name
    return f"{name[:50].strip('-.')}-{hashlib.sha256(cluster.encode()).hexdigest()[:12]}"


def _parse_time(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _micro_time(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def may_take(
    spec: Mapping[str, Any], me: Holder, now: float, process_alive: Callable[[int], bool]
) -> str | None:
    """None when ``me`` may hold the Lease now; else who holds it and until when (pure)."""
    holder_text = str(spec.get("holderIdentity") or "")
    if not holder_text or holder_text == str(me):
        return None
    renewed = _parse_time(spec.get("renewTime")) or _parse_time(spec.get("acquireTime"))
    duration = spec.get("leaseDurationSeconds")
    duration = duration if isinstance(duration, int) and duration > 0 else DURATION_SECONDS
    if renewed is None or now > renewed + duration:
        return None  # expired
    holder = Holder.parse(holder_text)
    ours = holder is not None and (holder.agent_id, holder.host) == (me.agent_id, me.host)
    if ours and holder is not None and not process_alive(holder.pid):
        return None  # this agent's own earlier process, killed: nobody else can be acting
    left = max(0.0, renewed + duration - now)
    return f"another agent ({holder_text}) is acting on this cluster; its lease runs for {left:.0f}s more"


def agent_id(state_dir: Path) -> str:
    """This agent's stable id (created once in the state directory)."""
    path = state_dir / AGENT_ID_FILE
    try:
        existing = path.read_text().strip()
    except OSError:
        existing = ""
    if re.fullmatch(r"[a-f0-9]{32}", existing):
        return existing
    new = uuid.uuid4().hex
    state_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(new + "\n")
    return new


@dataclass
class AgentLease:
    kube: Kube
    namespace: str
    name: str
    me: Holder
    duration: int = DURATION_SECONDS
    clock: Callable[[], float] = time.time
    alive: Callable[[int], bool] = inflight.process_alive
    lost: threading.Event = field(default_factory=threading.Event)
    _held: bool = False
    _resource_version: str | None = None
    _transitions: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def held(self) -> bool:
        return self._held and not self.lost.is_set()

    def acquire(self) -> str | None:
        """Take the Lease (None), or say why not.  Renewed in the background until :meth:`release`."""
        if self.held:
            return None
        try:
            current = self.kube.read_lease(self.namespace, self.name)
            spec = (current or {}).get("spec") or {}
            busy = may_take(spec, self.me, self.clock(), self.alive)
            if busy:
                return busy
            holder_changed = str(spec.get("holderIdentity") or "") != str(self.me)
            transitions = int(spec.get("leaseTransitions") or 0) + (1 if holder_changed and current else 0)
            self._write(current, transitions, holder=str(self.me), acquired=True)
        except KubeConflict:
            return "another agent took the lease at the same moment"
        except KubeError as error:
            return f"the agent's lease could not be taken: {error}"
        self._held = True
        self.lost.clear()
        self._stop.clear()
        self._thread = threading.Thread(target=self._renew_loop, name="lease-renewal", daemon=True)
        self._thread.start()
        log.info("lease_acquired", lease=f"{self.namespace}/{self.name}", holder=str(self.me))
        return None

    def release(self) -> None:
        """Give the Lease back (end of a pass); another agent may take it at once."""
        if not self._held:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._held = False
        if self.lost.is_set():
            return
        try:
            current = self.kube.read_lease(self.namespace, self.name)
            if current and (current.get("spec") or {}).get("holderIdentity") == str(self.me):
                self._write(current, self._transitions, holder="", acquired=False)
        except KubeError as error:  # it expires on its own
            log.warning("lease_release_failed", error=str(error))

    def _write(
        self, current: Mapping[str, Any] | None, transitions: int, *, holder: str, acquired: bool
    ) -> None:
        now = _micro_time(self.clock())
        spec: dict[str, Any] = {
            "holderIdentity": holder,
            "leaseDurationSeconds": self.duration,
            "renewTime": now,
            "leaseTransitions": transitions,
        }
        old_spec = (current or {}).get("spec") or {}
        spec["acquireTime"] = (
            now
            if acquired and old_spec.get("holderIdentity") != holder
            else (old_spec.get("acquireTime") or now)
        )
        metadata: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if current is not None:
            metadata["resourceVersion"] = (current.get("metadata") or {}).get("resourceVersion")
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata, "spec": spec}
        with self._lock:
            written = self.kube.write_lease(body, create=current is None)
        self._resource_version = (written.get("metadata") or {}).get("resourceVersion")
        self._transitions = transitions

    def _renew_loop(self) -> None:
        last_renewed = self.clock()
        while not self._stop.wait(self.duration / 3):
            try:
                current = self.kube.read_lease(self.namespace, self.name)
                if current is None or (current.get("spec") or {}).get("holderIdentity") != str(self.me):
                    raise KubeConflict("the lease was taken over")
                self._write(current, self._transitions, holder=str(self.me), acquired=False)
                last_renewed = self.clock()
            except KubeConflict as error:
                log.error("lease_lost", error=str(error))
                self.lost.set()
                return
            except KubeError as error:
                log.warning("lease_renewal_failed", error=str(error))
                if self.clock() > last_renewed + self.duration:
                    self.lost.set()
                    return


def for_agent(kube: Kube, state_dir: Path, cluster: str, namespace: str, host: str) -> AgentLease:
    return AgentLease(kube, namespace, lease_name(cluster), Holder(agent_id(state_dir), host, os.getpid()))
