"""Each hub process re-reads the token tables only when a token changed: the mark it checks first
moves with every create, revoke and forget of either kind (and with nothing else), and a reload
after one sees the change. On SQLite (a counter bumped in the same transaction) and PostgreSQL."""

from __future__ import annotations

from hub import tokens
from hub.credentials import Credentials
from hub.database import Database
from hub.reportstore import Retention
from tests.integration.hub.conftest import BOTH_BACKENDS
from tests.integration.hub.test_signs_of_life import pending


@BOTH_BACKENDS
def test_the_tokens_mark_moves_with_every_change_and_the_reload_follows(database: Database) -> None:
    admin, replica = database.connect(), database.connect()
    credentials = Credentials(replica)
    marks = [replica.tokens_mark()]
    first = admin.create_tokens("cluster", ["edge-1"])["edge-1"]
    marks.append(replica.tokens_mark())
    admin.write_batch([pending(1, "Ready", 1_000.0)], {}, (), Retention())
    assert replica.tokens_mark() == marks[-1]  # nothing changed (a report is not a token): no reload
    credentials.reload()
    assert credentials.owner("cluster", first) == "edge-1"
    second = admin.create_tokens("cluster", ["edge-1"])["edge-1"]  # a rotation: a second token...
    marks.append(replica.tokens_mark())
    assert admin.revoke_tokens("cluster", "edge-1", tokens.token_id_of(first)) == 1  # ...the first revoked
    marks.append(replica.tokens_mark())
    viewer = admin.create_tokens("viewer", ["ops"])["ops"]
    marks.append(replica.tokens_mark())
    assert len(set(marks)) == len(marks), marks
    credentials.reload()
    assert credentials.owner("cluster", first) is None
    assert credentials.owner("cluster", second) == "edge-1"
    assert credentials.owner("viewer", viewer) == "ops"

    before = replica.tokens_mark()
    assert admin.forget_cluster("edge-1").tokens == 1
    assert replica.tokens_mark() != before
    credentials.reload()
    assert credentials.owner("cluster", second) is None
    admin.close()
    credentials.close()
