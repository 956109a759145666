"""On PostgreSQL a replica re-reads the token tables only when a token changed: the mark it checks
first moves with every create and revoke of either kind, and a reload after one sees the change."""

from __future__ import annotations

from hub import tokens
from hub.credentials import Credentials
from hub.database import Database


def test_the_tokens_mark_moves_with_every_change_and_the_reload_follows(postgres: object) -> None:
    database = Database(url=postgres.new_database())  # type: ignore[attr-defined]
    admin, replica = database.connect(), database.connect()
    credentials = Credentials(replica)
    marks = [replica.tokens_mark()]
    first = admin.create_tokens("cluster", ["edge-1"])["edge-1"]
    marks.append(replica.tokens_mark())
    assert replica.tokens_mark() == marks[-1]  # nothing changed: the same mark, no reload needed
    credentials.reload()
    assert credentials.owner("cluster", first) == "edge-1"
    second = admin.create_tokens("cluster", ["edge-1"])["edge-1"]  # a rotation: a second token...
    marks.append(replica.tokens_mark())
    assert (
        admin.revoke_tokens("cluster", "edge-1", tokens.token_id_of(first)) == 1
    )  # ...then the first revoked
    marks.append(replica.tokens_mark())
    viewer = admin.create_tokens("viewer", ["ops"])["ops"]
    marks.append(replica.tokens_mark())
    assert len(set(marks)) == len(marks), marks
    credentials.reload()
    assert credentials.owner("cluster", first) is None
    assert credentials.owner("cluster", second) == "edge-1"
    assert credentials.owner("viewer", viewer) == "ops"
    admin.close()
    credentials.close()
