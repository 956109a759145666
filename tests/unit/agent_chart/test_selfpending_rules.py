"""The agent's own release left pending-upgrade (pure rules): finished forward when the new agent's
Deployment rolled out, waited on within the deadline, undone past it or when it is no agent upgrade."""

from __future__ import annotations

from typing import Any

from agent.releases import ReleaseHistory
from agent.selfpending import judge, rollout_complete
from tests.unit.agent_chart.test_selfupgrade_rules import revision

PENDING = ReleaseHistory((revision(1, "a:1", "superseded"), revision(2, "a:2", "pending-upgrade")))
STARTED = 102.0  # revision 2's start (see ``revision``)


def deployment(image: str, *, updated: int = 1, available: int = 1, observed: int = 3) -> dict[str, Any]:
    return {
        "metadata": {"generation": 3},
        "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "agent", "image": image}]}}},
        "status": {
            "observedGeneration": observed,
            "updatedReplicas": updated,
            "availableReplicas": available,
        },
    }


def test_a_rolled_out_new_agent_is_finished_forward_even_past_the_deadline() -> None:
    for now in (STARTED + 1, STARTED + 10_000):
        verdict = judge(PENDING, deployment("a:2"), now=now, deadline=60)
        assert verdict.decision == "forward", verdict
        assert "completing the upgrade to revision 2" in verdict.reason


def test_within_the_deadline_a_new_agent_not_yet_ready_is_waited_for() -> None:
    for live in (None, deployment("a:2", available=0), deployment("a:2", observed=2), deployment("a:1")):
        verdict = judge(PENDING, live, now=STARTED + 30, deadline=60)
        assert verdict.decision == "wait", (live, verdict)
        assert "30s of 60s" in verdict.reason


def test_past_the_deadline_a_new_agent_that_never_became_ready_is_undone() -> None:
    verdict = judge(PENDING, deployment("a:2", available=0), now=STARTED + 61, deadline=60)
    assert verdict.decision == "back"
    assert "did not become Ready within 60s" in verdict.reason


def test_what_is_not_a_pending_agent_upgrade_gets_the_usual_recovery() -> None:
    same_image = ReleaseHistory((revision(1, "a:1", "superseded"), revision(2, "a:1", "pending-upgrade")))
    first_install = ReleaseHistory((revision(1, "a:1", "pending-install"),))
    rollback = ReleaseHistory((revision(1, "a:1", "superseded"), revision(2, "a:2", "pending-rollback")))
    for history in (same_image, first_install, rollback):
        assert judge(history, deployment("a:2"), now=STARTED, deadline=60).decision == "back"


def test_a_rollout_is_complete_only_with_the_image_and_every_replica_updated_and_available() -> None:
    assert rollout_complete(deployment("a:2"), "a:2")
    assert not rollout_complete(deployment("a:2"), "a:3")
    assert not rollout_complete(deployment("a:2", updated=0), "a:2")
    assert not rollout_complete(deployment("a:2", available=0), "a:2")
    assert not rollout_complete(deployment("a:2", observed=2), "a:2")
    assert not rollout_complete(None, "a:2")
    assert not rollout_complete({}, "a:2")
