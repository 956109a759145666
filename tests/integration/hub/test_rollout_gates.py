"""The rollout gate endpoint and API on a real hub (loopback, manual clock; SQLite, and PostgreSQL
for the gates, pauses and halts)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.integration.hub.conftest import BOTH_BACKENDS, HubUnderTest
from tests.integration.hub.hubserver import location_args
from tests.unit.hub.factory import make_bundle, make_report

C = "c" * 40
WAVES = [
    {"name": "canary", "max_failed": 0, "bake_seconds": 30, "deadline_seconds": 600},
    {"name": "rest", "max_failed": 0, "bake_seconds": 30, "deadline_seconds": 600},
]


def facts(wave: int, *, holding: bool = True, failed: bool = False) -> dict[str, Any]:
    return {
        "commit": C,
        "wave": wave,
        "wave_name": WAVES[wave - 1]["name"],
        "waves": WAVES,
        "paused": False,
        "holding": holding,
        "failed": failed,
    }


def ask(hub: HubUnderTest, token: str, cluster: str, wave: int) -> httpx.Response:
    body = {"cluster": cluster, "commit": C, "bundles": {"web": facts(wave)}}
    return hub.client.post(
        "/api/v1/rollout/gates", content=json.dumps(body), headers={"Authorization": f"Bearer {token}"}
    )


def report(hub: HubUnderTest, token: str, cluster: str, wave: int, state: str, sequence: int) -> None:
    bundle = make_bundle("web", state, commit=C)
    status = dataclasses.replace(
        make_report(cluster, sequence, [bundle], commit=C),
        rollout={"bundles": {"web": facts(wave, holding=False, failed=state == "Failed")}, "brake": None},
    )
    assert hub.post(status, token).status_code == 202


@BOTH_BACKENDS
def test_a_cluster_gets_only_its_own_gates_and_the_waves_advance_on_reports(hub: HubUnderTest) -> None:
    canary, store = hub.token("canary-1"), hub.token("store-1")
    assert ask(hub, "flt_bogus", "canary-1", 1).status_code == 401
    other = ask(hub, store, "canary-1", 1)  # store-1's token asking for canary-1's gates
    assert other.status_code == 403
    assert "gates" not in other.json()

    first = ask(hub, canary, "canary-1", 1).json()
    assert first == {
        "cluster": "canary-1",
        "gates": {"web": {"commit": C, "decision": "go", "wave": "canary", "reason": "wave canary released"}},
    }
    held = ask(hub, store, "store-1", 2).json()["gates"]["web"]
    assert held["decision"] == "hold"
    assert held["reason"].startswith("waiting for wave canary")
    assert "canary-1" not in held["reason"]  # counts, never other clusters' names

    report(hub, canary, "canary-1", 1, "Ready", 1)
    assert ask(hub, store, "store-1", 2).json()["gates"]["web"]["decision"] == "hold"  # bake starts now
    hub.clock.advance(31)
    assert ask(hub, store, "store-1", 2).json()["gates"]["web"]["decision"] == "go"

    picture = hub.read("/api/v1/rollouts").json()["rollouts"][0]
    assert (picture["bundle"], picture["commit"], picture["state"]) == ("web", C, "progressing")
    assert [w["state"] for w in picture["waves"]] == ["released", "applying"]


def hub_command(*args: str) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).parent / "flotilla-hub"), *args]
    return subprocess.run(command, capture_output=True, text=True, check=True, timeout=60)


@BOTH_BACKENDS
def test_pause_and_resume_from_the_command_line_hold_and_release(hub: HubUnderTest) -> None:
    canary = hub.token("canary-1")
    paused = hub_command("rollout", "pause", "web", *location_args(hub.database), "--by", "alice")
    assert "Rollouts of web paused." in paused.stdout
    audit = json.loads(paused.stderr.strip().splitlines()[-1])
    assert (audit["event"], audit["bundle"], audit["by"]) == ("rollout_paused", "web", "alice")
    held = ask(hub, canary, "canary-1", 1).json()["gates"]["web"]
    assert held["decision"] == "hold"
    assert "paused" in held["reason"]
    assert hub.read("/api/v1/rollouts/web").json()["state"] == "paused"
    hub_command("rollout", "resume", "web", *location_args(hub.database))
    assert ask(hub, canary, "canary-1", 1).json()["gates"]["web"]["decision"] == "go"


@BOTH_BACKENDS
def test_a_failed_canary_halts_the_rollout_and_the_api_names_it_with_its_error(hub: HubUnderTest) -> None:
    canary, store = hub.token("canary-1"), hub.token("store-1")
    assert ask(hub, canary, "canary-1", 1).json()["gates"]["web"]["decision"] == "go"
    report(hub, canary, "canary-1", 1, "Failed", 1)
    hub.clock.advance(3600)
    answer = ask(hub, store, "store-1", 2).json()["gates"]["web"]
    assert answer["decision"] == "hold"
    assert "halted in wave canary" in answer["reason"]
    picture = hub.read("/api/v1/rollouts/web").json()
    assert picture["state"] == "halted"
    assert [f["cluster"] for f in picture["failing"]] == ["canary-1"]


def test_a_malformed_gate_request_is_refused_with_the_field(hub: HubUnderTest) -> None:
    token = hub.token("canary-1")
    body = {"cluster": "canary-1", "commit": C, "bundles": {"web": {**facts(1), "wave": 9}}}
    response = hub.client.post(
        "/api/v1/rollout/gates", content=json.dumps(body), headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 422
    assert response.json()["field"] == "bundles.web.wave"


def test_the_fleet_page_shows_the_halted_rollout_first_with_its_failing_cluster(hub: HubUnderTest) -> None:
    canary = hub.token("canary-1")
    assert ask(hub, canary, "canary-1", 1).json()["gates"]["web"]["decision"] == "go"
    report(hub, canary, "canary-1", 1, "Failed", 1)
    page = hub.read("/").text
    assert page.index('id="rollouts"') < page.index("id=clusters")
    assert 'data-bundle="web" data-state="halted"' in page
    assert '<a href="/clusters/canary-1">canary-1</a> Failed' in page
    bundle_page = hub.read("/bundles/web").text
    assert 'data-wave="canary"' in bundle_page


def test_a_stale_checkout_cannot_start_a_rollout_of_a_commit_the_hub_never_saw(hub: HubUnderTest) -> None:
    token = hub.token("canary-1")
    body = {"cluster": "canary-1", "commit": C, "bundles": {"web": {**facts(1), "fresh": False}}}
    answer = hub.client.post(
        "/api/v1/rollout/gates", content=json.dumps(body), headers={"Authorization": f"Bearer {token}"}
    ).json()["gates"]["web"]
    assert answer["decision"] == "hold"
    assert "not current" in answer["reason"]
    assert hub.read("/api/v1/rollouts").json()["rollouts"] == []  # no rollout was started


def test_a_commit_every_cluster_reports_without_asking_replaces_a_halted_rollout(hub: HubUnderTest) -> None:
    """A revert is a no-op everywhere, so nobody asks for a gate; the picture moves on all the same."""
    canary = hub.token("canary-1")
    assert ask(hub, canary, "canary-1", 1).json()["gates"]["web"]["decision"] == "go"
    report(hub, canary, "canary-1", 1, "Failed", 1)
    assert hub.read("/api/v1/rollouts/web").json()["state"] == "halted"
    reverted = "d" * 40
    status = dataclasses.replace(
        make_report("canary-1", 2, [make_bundle("web", "Ready", commit=reverted)], commit=reverted),
        rollout={
            "bundles": {"web": {**facts(1, holding=False), "commit": reverted, "fresh": True}},
            "brake": None,
        },
    )
    assert hub.post(status, canary).status_code == 202
    picture = hub.read("/api/v1/rollouts/web").json()
    assert picture["commit"] == reverted
    assert picture["state"] in ("progressing", "complete")  # the canary bakes, then the rest
