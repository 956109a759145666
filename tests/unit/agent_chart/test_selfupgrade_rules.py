"""The self-upgrade rules (pure): which revision change is an upgrade away from the running image,
who marks it succeeded, and when the old agent rolls back."""

from __future__ import annotations

from agent.releases import ReleaseHistory, ReleaseRecord
from agent.selfupgrade import Record, detect, judge, report_fields


def revision(number: int, image: str, status: str) -> ReleaseRecord:
    manifest = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: flotilla-agent}\n"
        f"spec:\n  template:\n    spec:\n      containers:\n        - {{name: agent, image: '{image}'}}\n"
    )
    return ReleaseRecord(
        "flotilla-agent", "flotilla-system", number, status, manifest=manifest, started_at=100.0 + number
    )


HISTORY = ReleaseHistory((revision(1, "a:1", "superseded"), revision(2, "a:2", "deployed")))


def test_a_deployed_revision_with_another_image_is_an_upgrade_from_the_last_revision_of_mine() -> None:
    found = detect(HISTORY, "a:1", None, now=500.0)
    assert found == Record("a:1", 1, "a:2", 2, 102.0)


def test_no_upgrade_when_the_image_is_mine_already_known_pending_or_without_a_revision_to_return_to() -> None:
    assert detect(HISTORY, "a:2", None, now=500.0) is None
    assert detect(HISTORY, "a:1", Record("a:1", 1, "a:2", 2, 102.0), now=500.0) is None
    pending = ReleaseHistory((revision(1, "a:1", "superseded"), revision(2, "a:2", "pending-upgrade")))
    assert detect(pending, "a:1", None, now=500.0) is None
    assert detect(HISTORY, "a:0", None, now=500.0) is None


def test_the_new_agent_succeeds_only_after_a_proving_pass() -> None:
    record = Record("a:1", 1, "a:2", 2, 100.0)
    assert judge(record, "a:2", proved=False, now=5000.0, deadline=600)[0] == "none"
    assert judge(record, "a:2", proved=True, now=101.0, deadline=600)[0] == "succeeded"


def test_the_old_agent_rolls_back_only_past_the_deadline_and_only_once() -> None:
    record = Record("a:1", 1, "a:2", 2, 100.0)
    assert judge(record, "a:1", proved=True, now=699.0, deadline=600)[0] == "none"
    action, why = judge(record, "a:1", proved=True, now=701.0, deadline=600)
    assert action == "rollback"
    assert "a:2 did not complete a pass within 600s" in why
    assert judge(record, "a:9", proved=True, now=701.0, deadline=600)[0] == "none"  # a third agent
    done = Record("a:1", 1, "a:2", 2, 100.0, result="rolled-back", reason=why)
    assert judge(done, "a:1", proved=True, now=9999.0, deadline=600)[0] == "none"
    assert report_fields(done) == ("a:1", "a:2", f"rolled-back: {why}")
    assert report_fields(None) == ("", "", "")


def test_a_corrupt_record_is_treated_as_none() -> None:
    assert Record.parse("{not json") is None
    assert Record.parse('{"from_image": 1}') is None
    assert Record.parse(None) is None
