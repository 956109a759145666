"""Who may hold the agent's Lease: the rule two agents for one cluster act by."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agent.lease import Holder, lease_name, may_take

ME = Holder("a" * 32, "node-a", 100)
NOW = 1_800_000_000.0


def at(seconds_ago: float) -> str:
    return datetime.fromtimestamp(NOW - seconds_ago, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def spec(holder: str, renewed_ago: float, duration: int = 60) -> dict[str, object]:
    return {"holderIdentity": holder, "renewTime": at(renewed_ago), "leaseDurationSeconds": duration}


@pytest.mark.parametrize(
    ("lease", "alive", "free"),
    [
        pytest.param({}, True, True, id="never held"),
        pytest.param(spec("", 1), True, True, id="released"),
        pytest.param(spec(str(ME), 1), True, True, id="already mine"),
        pytest.param(spec(f"{'b' * 32}/node-b/7", 10), True, False, id="another agent, renewed: busy"),
        pytest.param(spec(f"{'b' * 32}/node-b/7", 61), True, True, id="another agent, expired"),
        pytest.param(spec(f"{'a' * 32}/node-a/99", 10), False, True, id="my own killed process: take over"),
        pytest.param(spec(f"{'a' * 32}/node-a/99", 10), True, False, id="my own id, a live process: busy"),
        pytest.param(spec(f"{'a' * 32}/node-b/99", 10), False, False, id="my id on another host: busy"),
        pytest.param(spec("not-an-identity", 10), False, False, id="unparsable holder, renewed: busy"),
        pytest.param({"holderIdentity": "x/y/1"}, True, True, id="no renew time: expired"),
    ],
)
def test_may_take(lease: dict[str, object], alive: bool, free: bool) -> None:
    busy = may_take(lease, ME, NOW, lambda pid: alive)
    assert (busy is None) is free
    if busy:
        assert "another agent" in busy
        assert "more" in busy


def test_lease_names_are_dns_names_and_distinct_per_cluster() -> None:
    assert lease_name("edge-1") == "flotilla-edge-1"
    long = lease_name("x" * 200)
    assert len(long) <= 63
    assert long != lease_name("x" * 199)
    assert lease_name("Store_7") != lease_name("store-7")
    assert Holder.parse(str(ME)) == ME
