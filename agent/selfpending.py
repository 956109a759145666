"""The agent's own release left ``pending-upgrade`` by a killed agent: finish the upgrade when the new
build proved itself, instead of rolling it back.

An agent killed while its helm writes the agent's own release (``agent.selfupgrade``, step 1) leaves
the release pending although the new Deployment may already be live.  The generic recovery
(``agent.operations``) rolls a pending release back to its last deployed revision; for the agent's
own release that would tear down a new agent that works.  So, once the generic rules say the helm
that left it pending is gone, the agent (old or new, whichever runs) decides (:func:`judge`):

- **forward** when the Deployment has completed its rollout to the pending revision's image (the new
  pod is Ready, which needs a completed pass: ``agent.readiness``): ``helm rollback`` *to the pending
  revision itself* records it as deployed without changing any object, so no pod restarts;
- **wait** while the new build is still within the self-upgrade deadline (from the pending revision's
  start): the release is reported Pending with the reason, and nothing is changed;
- **back** past the deadline, or when the pending revision is no agent upgrade at all: the generic
  recovery (roll back to the last deployed revision, then upgrade again in the same pass).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import structlog

from agent.kube import Kube, KubeError
from agent.releases import ReleaseHistory
from agent.selfbundle import RELEASE
from agent.selfupgrade import Record, deadline_seconds, image_of, save_record

log = structlog.get_logger(__name__)

Decision = Literal["forward", "wait", "back"]


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    reason: str


def rollout_complete(deployment: Mapping[str, Any] | None, image: str) -> bool:
    """Pure: the Deployment's current template runs ``image`` and every replica of it is available."""
    if not deployment:
        return False
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    images = [c.get("image") for c in containers if isinstance(c, dict) and c.get("name") == "agent"]
    wanted = spec.get("replicas", 1)
    generation = (deployment.get("metadata") or {}).get("generation")
    return (
        images == [image]
        and status.get("observedGeneration") == generation
        and status.get("updatedReplicas", 0) >= wanted
        and status.get("availableReplicas", 0) >= wanted
    )


def judge(
    history: ReleaseHistory, deployment: Mapping[str, Any] | None, now: float, deadline: float
) -> Verdict:
    """Pure: what to do with the agent's own release whose current revision is pending."""
    current = history.current
    new_image = image_of(current)
    previous = history.last_deployed(before=current.revision)
    if current.status != "pending-upgrade" or new_image is None or previous is None:
        return Verdict("back", f"revision {current.revision} is {current.status}: the usual recovery")
    if image_of(previous) == new_image:
        return Verdict("back", f"revision {current.revision} does not change the agent's image")
    if rollout_complete(deployment, new_image):
        return Verdict(
            "forward",
            f"agent {new_image} is Ready: completing the upgrade to revision {current.revision} "
            f"left {current.status} instead of rolling it back",
        )
    age = now - (current.started_at or now)
    if age <= deadline:
        return Verdict(
            "wait",
            f"revision {current.revision} (agent {new_image}) was left {current.status}; waiting for "
            f"the new agent to become Ready ({age:.0f}s of {deadline:.0f}s) before finishing or undoing it",
        )
    return Verdict("back", f"agent {new_image} did not become Ready within {deadline:.0f}s")


def judge_live(kube: Kube, namespace: str, history: ReleaseHistory, now: float) -> Verdict:
    """:func:`judge` against the live Deployment (unreadable: treated as not rolled out)."""
    key = ("apps/v1", "Deployment", namespace, RELEASE)
    try:
        deployment = kube.live_objects([key]).get(key)
    except KubeError:
        deployment = None
    return judge(history, deployment, now, deadline_seconds())


def record_forward(kube: Kube, namespace: str, history: ReleaseHistory, reason: str, now: float) -> None:
    """The self-upgrade record of a finished pending upgrade: from the last deployed revision to the
    one the roll-forward writes (the pending one plus one), succeeded."""
    current = history.current
    previous = history.last_deployed(before=current.revision)
    if previous is None:
        return
    record = Record(
        from_image=image_of(previous) or "",
        from_revision=previous.revision,
        to_image=image_of(current) or "",
        to_revision=current.revision + 1,
        started_at=current.started_at or now,
        result="succeeded",
        reason=reason,
        finished_at=now,
    )
    try:
        save_record(kube, namespace, record)
    except KubeError as error:  # the release is what matters; the record is the report's
        log.warning("self_upgrade_record_failed", error=str(error))
