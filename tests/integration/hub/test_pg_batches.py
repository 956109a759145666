"""PostgreSQL group commits decide each report against what the database holds, whoever wrote it:
a group mixing duplicates, late reports and several reports of one cluster; a late report of a
cluster another replica moved forward; two replicas creating one cluster at once; and two replicas
writing the same clusters at once (no deadlock, the newest wins)."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from hub.database import Database
from hub.model import summarize, summary_to_json
from hub.pg_backend import PgStore
from hub.reportstore import Outcome, Pending, Retention
from tests.unit.hub.factory import make_bundle, make_report


@pytest.fixture
def url(postgres: object) -> str:
    found: str = postgres.new_database()  # type: ignore[attr-defined]
    Database(url=found).connect().close()  # migrate
    return found


@pytest.fixture
def stores(url: str) -> Iterator[tuple[PgStore, PgStore]]:
    a, b = PgStore.open(url, replica="a"), PgStore.open(url, replica="b")
    yield a, b
    a.close()
    b.close()


def pending(cluster: str, sequence: int, at: float = 0.0) -> Pending:
    report = make_report(cluster, sequence, [make_bundle("web", "Ready")])
    received = at or 1_000_000.0 + sequence
    summary = summarize(report, received)
    return Pending(report, report.to_json().encode(), received, summary, summary_to_json(summary))


def write(store: PgStore, *items: Pending) -> list[str]:
    return [o.result for o in store.write_batch(list(items), {}, (), Retention())]


def stored(url: str, cluster: str) -> tuple[int, float, str] | None:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT sequence, last_seen, writer FROM clusters WHERE name = %s", (cluster,))
        found = row.fetchone()
    return None if found is None else (int(found[0]), float(found[1]), str(found[2]))


def test_a_group_decides_duplicate_late_and_current_for_each_report(
    stores: tuple[PgStore, PgStore], url: str
) -> None:
    a, _ = stores
    assert write(a, pending("edge-1", 5)) == ["current"]
    results = write(
        a,
        pending("edge-1", 7),
        pending("edge-1", 6),  # older than 7, earlier in this group
        pending("edge-1", 5),  # stored already
        pending("edge-1", 8),
        pending("edge-2", 1),  # a new cluster
        pending("edge-2", 1),  # the same report twice in one group
        pending("edge-1", 3, at=2_000_000.0),  # older than what is stored, but received last
    )
    assert results == ["current", "late", "duplicate", "current", "current", "duplicate", "late"]
    assert stored(url, "edge-1") == (8, 2_000_000.0, "a")  # a late report only moves last_seen
    assert stored(url, "edge-2") == (1, 1_000_001.0, "a")
    assert [e.sequence for e in a.history("edge-1")] == [8, 7, 6, 5, 3]  # late ones are history too
    assert write(a, pending("edge-1", 9), pending("edge-2", 2)) == ["current", "current"]  # and on it goes


def test_a_late_report_of_a_cluster_another_replica_moved_leaves_its_state_for_every_replica_to_read(
    stores: tuple[PgStore, PgStore], url: str
) -> None:
    a, b = stores
    write(a, pending("edge-1", 1))
    _, mark_a = a.changes_since(None, "a")
    _, mark_b = b.changes_since(None, "b")
    assert write(a, pending("edge-1", 10)) == ["current"]
    assert write(b, pending("edge-1", 9, at=3_000_000.0)) == ["late"]  # B had not seen 10 yet
    assert stored(url, "edge-1") == (10, 3_000_000.0, "")
    seen_by_b, _ = b.changes_since(mark_b, "b")  # B learns of 10, though its own write came last
    assert [(c.name, c.sequence) for c in seen_by_b] == [("edge-1", 10)]
    seen_by_a, _ = a.changes_since(mark_a, "a")  # and A of the later last_seen
    assert [(c.name, c.sequence, c.last_seen) for c in seen_by_a] == [("edge-1", 10, 3_000_000.0)]
    assert write(b, pending("edge-1", 11)) == ["current"]
    assert stored(url, "edge-1") == (11, 3_000_000.0, "b")  # last_seen never goes back


def test_two_replicas_creating_one_cluster_at_once_keep_the_newer_report(
    stores: tuple[PgStore, PgStore], url: str
) -> None:
    _, b = stores
    newer = pending("edge-new", 2)
    with psycopg.connect(url) as other:  # replica A's group, not yet committed, created the row
        other.execute(
            "INSERT INTO clusters (name, sequence, reported_at, last_seen, summary, writer)"
            " VALUES (%s, 2, %s, %s, %s, 'a')",
            ("edge-new", newer.received_at, newer.received_at, newer.summary_json),
        )
        results: list[list[str]] = []
        racing = threading.Thread(target=lambda: results.append(write(b, pending("edge-new", 1))))
        racing.start()
        deadline = time.monotonic() + 30
        while not _waiting_for_a_lock(url):  # B's upsert waits for A's row
            assert time.monotonic() < deadline, "B never waited for A's uncommitted row"
            time.sleep(0.02)
        other.commit()
        racing.join(timeout=30)
    assert results == [["late"]]
    assert stored(url, "edge-new") == (2, newer.received_at, "a")  # untouched: A's, as it was
    assert write(b, pending("edge-new", 3)) == ["current"]


def _waiting_for_a_lock(url: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM pg_locks WHERE NOT granted").fetchone()
    return row is not None and int(row[0]) > 0


def test_two_replicas_writing_the_same_clusters_at_once_never_deadlock_and_the_newest_wins(
    stores: tuple[PgStore, PgStore], url: str
) -> None:
    names = [f"edge-{i:03d}" for i in range(40)]  # new ones appear throughout (the groups are shuffled)
    plans: list[list[list[Pending]]] = []
    for parity, seed in ((0, 1), (1, 2)):  # A sends the even sequences, B the odd ones
        rng = random.Random(seed)
        items = [pending(n, s) for n in names for s in range(1, 31) if s % 2 == parity]
        rng.shuffle(items)  # every group in another order of clusters
        plans.append([items[k : k + 25] for k in range(0, len(items), 25)])
    outcomes: list[list[tuple[Pending, Outcome]]] = [[], []]
    errors: list[BaseException] = []

    def run(store: PgStore, groups: list[list[Pending]], into: list[tuple[Pending, Outcome]]) -> None:
        try:
            for group in groups:
                into.extend(
                    zip(
                        group,
                        store.write_batch(group, {}, {p.report.cluster for p in group}, Retention()),
                        strict=True,
                    )
                )
        except BaseException as exc:  # a deadlock would surface here
            errors.append(exc)

    done = threading.Event()

    def sweep(store: PgStore) -> None:  # a replica's history sweep over the same clusters meanwhile
        try:
            while not done.is_set():
                store.prune_history(names, Retention(), 0.0)
        except BaseException as exc:
            errors.append(exc)
        finally:
            store.close()

    threads = [
        threading.Thread(target=run, args=(s, p, o)) for s, p, o in zip(stores, plans, outcomes, strict=True)
    ]
    sweeper = threading.Thread(target=sweep, args=(PgStore.open(url, replica="c"),))
    sweeper.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    done.set()
    sweeper.join(timeout=60)
    assert not errors, errors
    results = [(p, o) for side in outcomes for p, o in side]
    assert len(results) == 40 * 30
    assert {o.result for _, o in results} <= {"current", "late"}  # every sequence was sent once
    for name in names:
        assert stored(url, name) is not None
        assert stored(url, name)[0] == 30  # type: ignore[index]
        newest = [p.report.sequence for p, o in results if p.report.cluster == name and o.result == "current"]
        assert max(newest) == 30
        assert len(stores[0].history(name, 100)) == 30  # every report kept (under the retention of 50)
    assert [o.result for o in stores[1].write_batch([pending(names[0], 31)], {}, (), Retention())] == [
        "current"
    ]
