"""A generated fleet written straight into a hub's store (as the hub writes it), for the browser
tests and benchmarks of the operator's views at 10,000 and 100,000 clusters.

Shape, deterministic: 8 regions, 3 architectures, sites of 40 stores; about 87% Ready, 1 in 16
Offline, 1 in 32 Stale; ``FAILED_SHARE`` fail with one cause (a registry timeout whose message
names the cluster and a number), a few with another; bundle ``web`` mid-rollout (a quarter still
on the old commit and chart version), agents on three versions, the agent's own bundle in two waves
(``canary``: one in 10, all on the newest agent; ``stores``: the rest).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

from hub import rollout_contract, store
from hub.contract import BundleStatus, ResourceStatus
from hub.model import summarize, summary_to_json
from hub.reportstore import pack
from tests.unit.hub.factory import make_bundle, make_report

REGIONS = ("eu-west", "eu-north", "us-east", "us-west", "ap-south", "ap-east", "sa-east", "af-south")
ARCHES = ("arm64", "amd64", "armv7")
NEW, OLD = "a1b2c3d4e5f60718293a", "9f1e0d0c0b0a09080706"
AGENTS = ("0.3.1", "0.3.0", "0.2.9")
AGENT_WAVES = [{"name": "canary", "bake_seconds": 0, "deadline_seconds": 3600}, {"name": "stores"}]
FAILED_EVERY = 7  # one in 7 fails (about 14%, 1,428 of 10,000) with the same cause


@dataclass(frozen=True)
class Seeded:
    clusters: int
    failed: int  # failing with the registry timeout
    offline: int


def _shape(i: int) -> tuple[str, dict[str, str], list[BundleStatus], str]:
    name = f"store-{i:06d}"
    region = REGIONS[i % len(REGIONS)]
    labels = {"region": region, "arch": ARCHES[i % 3], "site": f"site-{i // 40:04d}", "tier": "store"}
    rolled = i % 4 != 0
    commit = NEW if rolled else OLD
    web_state = "Failed" if i % FAILED_EVERY == 0 else "Ready"
    message = (
        f"pull image registry.{region}.example/web:{'2.4.1' if rolled else '2.3.0'}: "
        f"dial tcp 10.{i % 250}.0.7:443: i/o timeout after {30 + i % 9}s on {name}"
        if web_state == "Failed"
        else ""
    )
    db_state = "Degraded" if i % 97 == 3 else "Ready"
    non_ready = (
        [ResourceStatus("Pod", "db", f"db-7d4b9c8f{i % 10}d-x2k9p", "CrashLoopBackOff", "back-off 5m0s")]
        if db_state == "Degraded"
        else None
    )
    web = make_bundle("web", web_state, commit, message=message)
    web = replace(web, chart_version="2.4.1" if rolled else "2.3.0", digest=f"sha256:{commit}")
    bundles = [
        web,
        make_bundle("db", db_state, NEW, non_ready=non_ready),
        make_bundle("metrics", "Ready", NEW),
    ]
    return name, labels, bundles, commit


def seed(data_dir: Path, count: int, now: float | None = None) -> Seeded:
    """Write ``count`` clusters with their current report; ages make 1/16 Offline, 1/32 Stale."""
    now = time.time() if now is None else now
    conn = store.connect(data_dir)
    failed = offline = 0
    try:
        for start in range(0, count, 2000):
            reports, clusters = [], []
            for i in range(start, min(start + 2000, count)):
                name, labels, bundles, commit = _shape(i)
                report = make_report(name, 1, bundles, labels=labels, commit=commit)
                canary = i % 10 == 0
                agent = AGENTS[0 if i % 10 < 7 else 1 if i % 10 < 9 else 2]
                facts = {"wave": 1 if canary else 2, "wave_name": "canary" if canary else "stores",
                         "waves": AGENT_WAVES, "commit": commit}  # fmt: skip
                rollout = rollout_contract.parse({"bundles": {"flotilla-system": facts}})
                report = replace(report, agent_version=agent, rollout=rollout)
                age = 3 * 3600 if i % 16 == 5 else 200 if i % 32 == 9 else 5
                offline += i % 16 == 5
                failed += i % FAILED_EVERY == 0
                at = now - age
                summary = summarize(report, at)
                reports.append((name, 1, at, pack(report.to_json().encode()), summary.health, summary.commit))
                clusters.append((name, 1, at, at, summary_to_json(summary)))
            with store.transaction(conn):
                conn.executemany(
                    "INSERT INTO reports (cluster, sequence, received_at, body, health, commit_id)"
                    " VALUES (?,?,?,?,?,?)",
                    reports,
                )
                conn.executemany(
                    "INSERT INTO clusters (name, sequence, reported_at, last_seen, summary)"
                    " VALUES (?,?,?,?,?)",
                    clusters,
                )
    finally:
        conn.close()
    return Seeded(count, failed, offline)
