"""Token checks from memory: a reload reads the tokens again only when one was created or revoked,
and then a created token works and a revoked one is refused (on both stores)."""

from __future__ import annotations

from hub.credentials import Credentials
from hub.database import Database
from tests.integration.hub.conftest import BOTH_BACKENDS
from tests.integration.hub.hubserver import create_tokens


@BOTH_BACKENDS
def test_a_reload_reads_tokens_again_only_after_a_change(database: Database) -> None:
    tokens = create_tokens(database, "cluster", ["edge-1", "edge-2"])
    viewer = create_tokens(database, "viewer", ["ops"])["ops"]
    credentials = Credentials(database.connect())
    other = database.connect()  # the CLI's connection
    try:
        assert credentials.owner("cluster", tokens["edge-1"]) == "edge-1"
        loads = credentials.loads
        credentials.reload()
        credentials.reload()
        assert credentials.loads == loads  # nothing changed: the tokens were not read again

        assert other.revoke_tokens("cluster", "edge-1") == 1
        assert credentials.owner("cluster", tokens["edge-1"]) == "edge-1"  # until the next reload
        credentials.reload()
        assert credentials.loads == loads + 1
        assert credentials.owner("cluster", tokens["edge-1"]) is None
        assert credentials.owner("cluster", tokens["edge-2"]) == "edge-2"

        # a revoke and a create between two reloads (the count of tokens stays the same)
        new = other.create_tokens("cluster", ["edge-3"])["edge-3"]
        assert other.revoke_tokens("cluster", "edge-2") == 1
        credentials.reload()
        assert credentials.owner("cluster", tokens["edge-2"]) is None
        assert credentials.owner("cluster", new) == "edge-3"

        # viewers are tracked too, and a forgotten cluster's tokens go with it
        assert other.revoke_tokens("viewer", "ops") == 1
        other.forget_cluster("edge-3")
        credentials.reload()
        assert credentials.owner("viewer", viewer) is None
        assert credentials.owner("cluster", new) is None
        loads = credentials.loads
        credentials.reload()
        assert credentials.loads == loads
    finally:
        other.close()
        credentials.close()
