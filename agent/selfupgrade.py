"""Self-upgrade that cannot strand a site: the agent's own release, watched by the agent still running.

How an upgrade of the ``flotilla-system`` bundle goes (README, "Self-upgrade"):

1. The running (old) agent upgrades its own release like any bundle, but with ``helm.wait: false``:
   helm only writes the objects and returns within seconds, so the release is never left
   ``pending-upgrade`` waiting on a rollout that needs the agent itself, and the in-flight record
   (``agent.inflight``) is gone before anything restarts.  The Deployment rolls with
   ``maxSurge: 1, maxUnavailable: 0``: the old pod keeps running until the new one is Ready.
2. The new pod is Ready only after one full pass of its own (``agent.readiness``): it started,
   read the fleet repo (or its cached checkout), planned and reached the API server.
3. After every pass each agent looks at its own release (:func:`detect`): a deployed revision whose
   agent image is not the one it runs (``FLOTILLA_IMAGE``) is an upgrade in progress, recorded in the
   ConfigMap ``flotilla-agent-upgrade`` (from image/revision, to image/revision, start, result) so it
   survives either pod and any state storage.  Then :func:`judge`:
   - the new agent, after its first proving pass, marks the record ``succeeded``;
   - the old agent, when the record is still in progress after the deadline (default the
     Deployment's ``progressDeadlineSeconds``), rolls its release back to the revision it runs
     (``helm rollback`` without wait), marks it ``rolled-back`` and holds the failed bundle digest
     back (no re-upgrade to the same build until a new commit changes the bundle).
   None of it needs the hub; the record is reported when the hub is reachable again.

Failure cases (what happens): the new build exits at start or cannot read the repo → never Ready →
rolled back at the deadline by the old pod.  The old pod is killed during the upgrade → the
Deployment controller recreates an old pod (the old ReplicaSet is kept while the new one is not
available), which finds the record and applies the same deadline.  Both pods die → the node's
kubelet restarts them; the record is in the API server.  The API server unreachable → nothing can
change the release either; the old pod keeps running.  A new build that is Ready but misbehaves
later is not caught: readiness is the proof asked of it.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, replace
from typing import Any

import structlog

from agent import readiness, state
from agent.actions import Failure
from agent.helm import Helm, HelmError
from agent.kube import Kube, KubeError
from agent.releases import ReleaseHistory, ReleaseRecord, group_releases
from agent.selfbundle import RELEASE, SELF_BUNDLE

log = structlog.get_logger(__name__)

RECORD_CONFIGMAP = "flotilla-agent-upgrade"
RECORD_KEY = "record.json"
IMAGE_ENV = "FLOTILLA_IMAGE"
DEADLINE_ENV = "FLOTILLA_SELF_UPGRADE_DEADLINE"
HOLD_SECONDS = 7 * 24 * 3600  # a rolled-back digest is not retried before a new commit (or a week)


@dataclass(frozen=True)
class Record:
    from_image: str
    from_revision: int
    to_image: str
    to_revision: int
    started_at: float
    result: str = "in-progress"  # in-progress | succeeded | rolled-back
    reason: str = ""
    finished_at: float | None = None

    @classmethod
    def parse(cls, text: str | None) -> Record | None:
        try:
            raw = json.loads(text or "")
            return cls(**{k: raw[k] for k in cls.__dataclass_fields__ if k in raw})
        except (ValueError, TypeError, KeyError):
            return None


def image_of(record: ReleaseRecord) -> str | None:
    """The agent container's image in one revision of the agent's release."""
    for obj in record.objects:
        if obj.get("kind") == "Deployment" and (obj.get("metadata") or {}).get("name") == RELEASE:
            containers = (((obj.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers")
            for container in containers or []:
                if isinstance(container, dict) and container.get("name") == "agent":
                    image = container.get("image")
                    return image if isinstance(image, str) else None
    return None


def detect(history: ReleaseHistory, my_image: str, known: Record | None, now: float) -> Record | None:
    """Pure: a new upgrade of the agent's release away from ``my_image``, or None."""
    current = history.current
    if current.status != "deployed" or (known is not None and known.to_revision >= current.revision):
        return None
    to_image = image_of(current)
    if to_image is None or to_image == my_image:
        return None
    for earlier in reversed(history.revisions[:-1]):
        if earlier.status in ("superseded", "deployed") and image_of(earlier) == my_image:
            return Record(my_image, earlier.revision, to_image, current.revision, current.started_at or now)
    return None  # no revision of ours to go back to (e.g. installed by an older agent)


def judge(record: Record, my_image: str, proved: bool, now: float, deadline: float) -> tuple[str, str]:
    """Pure: ("none" | "succeeded" | "rollback", why) for one agent after its pass."""
    if record.result != "in-progress":
        return "none", f"last self-upgrade {record.result}"
    if my_image == record.to_image:
        return ("succeeded", "the new agent completed a pass") if proved else ("none", "not proved yet")
    age = now - record.started_at
    if my_image == record.from_image and age > deadline:
        return "rollback", (
            f"agent {record.to_image} did not complete a pass within {deadline:.0f}s; "
            f"rolled back to {record.from_image} (revision {record.from_revision})"
        )
    return "none", f"waiting for {record.to_image} ({age:.0f}s of {deadline:.0f}s)"


def deadline_seconds() -> float:
    try:
        return float(os.environ.get(DEADLINE_ENV) or readiness.PROGRESS_DEADLINE_SECONDS)
    except ValueError:
        return float(readiness.PROGRESS_DEADLINE_SECONDS)


def last_record(kube: Kube, namespace: str) -> Record | None:
    return Record.parse(kube.read_value("ConfigMap", namespace, RECORD_CONFIGMAP, RECORD_KEY))


def save_record(kube: Kube, namespace: str, record: Record) -> None:
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": RECORD_CONFIGMAP, "namespace": namespace},
            "data": {RECORD_KEY: json.dumps(asdict(record), sort_keys=True)},
        },
        namespace,
    )


def after_pass(
    *,
    kube: Kube,
    helm: Helm,
    state_dir: Any,
    namespace: str,
    digest: str,
    proved: bool,
    may_act: Any,
    now: float | None = None,
) -> Record | None:
    """Watch the agent's own release after a pass (see the module's rules); returns the record.
    ``may_act()`` returns None when the agent holds its Lease, else why not."""
    my_image = os.environ.get(IMAGE_ENV, "")
    if not my_image:
        return None
    now = time.time() if now is None else now
    try:
        history = group_releases(kube.helm_release_secrets(namespace, RELEASE)).get((namespace, RELEASE))
        record = last_record(kube, namespace)
        if history is not None:
            fresh = detect(history, my_image, record, now)
            if fresh is not None:
                record = fresh
                save_record(kube, namespace, record)
                log.info("self_upgrade_started", **asdict(record))
        if record is None:
            return None
        action, why = judge(record, my_image, proved, now, deadline_seconds())
        if action == "succeeded":
            record = replace(record, result="succeeded", reason=why, finished_at=now)
            save_record(kube, namespace, record)
            log.info("self_upgrade_succeeded", **asdict(record))
        elif action == "rollback":
            busy = may_act()
            if busy:
                log.warning("self_upgrade_rollback_waits", reason=busy)
                return record
            helm.rollback(
                release=RELEASE,
                namespace=namespace,
                revision=record.from_revision,
                timeout_seconds=300,
                wait=False,
            )
            record = replace(record, result="rolled-back", reason=why, finished_at=now)
            save_record(kube, namespace, record)
            _hold_back(state_dir, namespace, digest, why, now)
            log.error("self_upgrade_rolled_back", **asdict(record))
        return record
    except (KubeError, HelmError) as error:
        log.warning("self_upgrade_check_failed", error=str(error))
        return None


def _hold_back(state_dir: Any, namespace: str, digest: str, why: str, now: float) -> None:
    """Record the failed digest as a failure of the bundle, retried only after HOLD_SECONDS: the
    reconcile pass then reports it Failed with ``why`` instead of upgrading to it again."""
    if not digest:
        return
    failures = state.load_failures(state_dir)
    failures[f"{namespace}/{RELEASE}"] = Failure(
        digest=digest, message=why, attempts=1, retry_at=now + HOLD_SECONDS
    )
    state.save_failures(state_dir, failures)


def self_release(releases: Any) -> tuple[str, str] | None:
    """(namespace, digest) of the flotilla-system bundle in a pass's outcome, if it has one."""
    for release in releases:
        if release.bundle == SELF_BUNDLE and release.release == RELEASE:
            return release.namespace, release.digest
    return None


def report_fields(record: Record | None) -> tuple[str, str, str]:
    """(from image, to image, result) for the status report; empty when there was no self-upgrade."""
    if record is None:
        return "", "", ""
    result = f"{record.result}: {record.reason}" if record.reason else record.result
    return record.from_image, record.to_image, result
