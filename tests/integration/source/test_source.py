"""agent.source against a real Git server on loopback: sync, pins, auth, outages, cache repair."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
import structlog

from agent.source import Credentials, Source, SourceSpec
from tests.fixtures.gitserver import GitServer, WorkingClone

PASSWORD = "pa55-w0rd-that-must-not-leak"


@pytest.fixture
def logs() -> Iterator[list[MutableMapping[str, Any]]]:
    with structlog.testing.capture_logs() as captured:
        yield captured


@pytest.fixture
def seed(tmp_path: Path) -> Path:
    seed = tmp_path / "seed"
    (seed / "fleet" / "clusters").mkdir(parents=True)
    (seed / "fleet" / "clusters" / "edge-1.yaml").write_text("name: edge-1\n")
    (seed / "README.md").write_text("fleet repo\n")
    return seed


@pytest.fixture
def served(git_server: GitServer, seed: Path, working_clone: Callable[[str], WorkingClone]) -> WorkingClone:
    """A served repo "fleet" and a working clone of it to push changes with."""
    return working_clone(git_server.create_repo("fleet", from_dir=seed))


def fetch_head_mtime(source: Source) -> float:
    return (source.checkout / ".git" / "FETCH_HEAD").stat().st_mtime_ns


# -------------------------------------------------------------------------------------- syncing


def test_the_first_sync_clones_the_branch_shallow_with_one_round_trip(
    git_server: GitServer, served: WorkingClone, tmp_path: Path
) -> None:
    served.commit_and_push("second", {"fleet/clusters/edge-2.yaml": "name: edge-2\n"})
    source = Source(SourceSpec(url=git_server.repo_url("fleet"), branch="main"), tmp_path / "state")

    revision = source.sync()

    assert revision.fetched
    assert not revision.offline
    assert revision.error is None
    assert revision.may_prune
    assert revision.commit == git_server.head("fleet")
    assert revision.path == source.checkout
    assert (source.checkout / "fleet" / "clusters" / "edge-2.yaml").read_text() == "name: edge-2\n"
    assert (source.checkout / ".git" / "shallow").read_text().split() == [revision.commit]
    assert source.round_trips == 1


def test_an_unchanged_remote_costs_one_ls_remote_and_no_fetch(
    git_server: GitServer, served: WorkingClone, tmp_path: Path
) -> None:
    source = Source(SourceSpec(url=git_server.repo_url("fleet")), tmp_path / "state")
    first = source.sync()
    trips, fetches, mtime = source.round_trips, source.fetches, fetch_head_mtime(source)

    second = source.sync()

    assert (second.commit, second.fetched, second.offline) == (first.commit, False, False)
    assert source.round_trips == trips + 1  # the ls-remote
    assert source.fetches == fetches
    assert fetch_head_mtime(source) == mtime  # git fetch did not run


def test_a_pushed_commit_is_fetched_on_the_next_sync(
    git_server: GitServer, served: WorkingClone, tmp_path: Path
) -> None:
    source = Source(SourceSpec(url=git_server.repo_url("fleet")), tmp_path / "state")
    source.sync()
    served.remove("README.md")
    pushed = served.commit_and_push(
        "edge-1 moves", {"fleet/clusters/edge-1.yaml": "name: edge-1\nregion: eu\n"}
    )

    revision = source.sync()

    assert revision.fetched
    assert revision.commit == pushed
    assert (source.checkout / "fleet" / "clusters" / "edge-1.yaml").read_text().endswith("region: eu\n")
    assert not (source.checkout / "README.md").exists()
    assert source.round_trips == 3  # clone, ls-remote, fetch


def test_a_sub_path_is_returned_as_the_revision_path(
    git_server: GitServer, served: WorkingClone, tmp_path: Path
) -> None:
    revision = Source(SourceSpec(url=git_server.repo_url("fleet"), path="fleet"), tmp_path / "state").sync()
    assert revision.path == tmp_path / "state" / "source" / "checkout" / "fleet"
    assert revision.path is not None
    assert (revision.path / "clusters" / "edge-1.yaml").exists()


def test_a_sub_path_missing_from_the_commit_is_an_error_without_a_path(
    git_server: GitServer, served: WorkingClone, tmp_path: Path
) -> None:
    revision = Source(SourceSpec(url=git_server.repo_url("fleet"), path="nope"), tmp_path / "state").sync()
    assert revision.path is None
    url, head = git_server.repo_url("fleet"), git_server.head("fleet")
    assert revision.error == f"path 'nope' does not exist in {url} at commit {head[:12]}"
    assert not revision.may_prune


def test_an_unknown_branch_is_reported_by_name(
    git_server: GitServer, served: WorkingClone, tmp_path: Path
) -> None:
    revision = Source(SourceSpec(url=git_server.repo_url("fleet"), branch="prod"), tmp_path / "state").sync()
    assert revision.path is None
    assert revision.error == f"branch prod not found in {git_server.repo_url('fleet')}"


# ----------------------------------------------------------------------------------------- pins


def test_a_tag_pin_checks_out_the_tagged_commit_and_follows_a_moved_tag(
    git_server: GitServer, served: WorkingClone, tmp_path: Path
) -> None:
    tagged = served.head()
    served.tag("v1")
    served.commit_and_push("after the tag", {"later.txt": "x"})
    source = Source(SourceSpec(url=git_server.repo_url("fleet"), tag="v1"), tmp_path / "state")

    first = source.sync()
    assert (first.commit, first.fetched) == (tagged, True)
    assert not (source.checkout / "later.txt").exists()
    assert source.sync().fetched is False

    served.tag("v1")  # moved to the newer commit
    moved = source.sync()
    assert (moved.commit, moved.fetched) == (served.head(), True)
    assert (source.checkout / "later.txt").exists()


def test_an_annotated_tag_pin_resolves_to_its_commit(
    git_server: GitServer, served: WorkingClone, tmp_path: Path
) -> None:
    from tests.fixtures.gitserver import git

    git("tag", "-a", "v2", "-m", "release 2", cwd=served.path)
    git("push", "--quiet", "origin", "refs/tags/v2", cwd=served.path)
    source = Source(SourceSpec(url=git_server.repo_url("fleet"), tag="v2"), tmp_path / "state")

    assert source.sync().commit == served.head()
    assert source.sync().fetched is False  # the peeled commit matched: no fetch


def test_a_commit_pin_checks_out_that_commit_and_then_needs_no_network(
    git_server: GitServer, served: WorkingClone, tmp_path: Path
) -> None:
    pinned = served.head()
    served.commit_and_push("newer", {"newer.txt": "x"})
    source = Source(SourceSpec(url=git_server.repo_url("fleet"), commit=pinned), tmp_path / "state")

    first = source.sync()
    assert (first.commit, first.fetched) == (pinned, True)
    assert not (source.checkout / "newer.txt").exists()
    trips = source.round_trips

    git_server.stop()
    again = source.sync()
    assert (again.commit, again.fetched, again.offline, again.error) == (pinned, False, False, None)
    assert source.round_trips == trips


def test_a_commit_pin_falls_back_to_the_branch_history_when_the_server_refuses_fetch_by_id(
    git_server_factory: Callable[..., GitServer],
    seed: Path,
    working_clone: Callable[[str], WorkingClone],
    tmp_path: Path,
) -> None:
    server = git_server_factory(protocol_v2=False)
    clone = working_clone(server.create_repo("fleet", from_dir=seed, allow_sha1_in_want=False))
    pinned = clone.head()
    for index in range(3):
        clone.commit_and_push(f"commit {index}", {"n.txt": str(index)})
    source = Source(
        SourceSpec(url=server.repo_url("fleet"), commit=pinned, branch="main"), tmp_path / "state"
    )

    revision = source.sync()

    assert revision.error is None
    assert revision.commit == pinned
    assert source.fetches == 2  # refused by id, then found in the branch's history


# ----------------------------------------------------------------------------------------- auth


@pytest.fixture
def private(git_server_factory: Callable[..., GitServer], seed: Path) -> GitServer:
    server = git_server_factory(username="agent", password=PASSWORD)
    server.create_repo("fleet", from_dir=seed)
    return server


def _leaks(revision: Any, source: Source, logs: list[MutableMapping[str, Any]]) -> list[str]:
    """Every place the password (or its base64 header) shows up."""
    import base64

    encoded = base64.b64encode(f"agent:{PASSWORD}".encode()).decode()
    places = {
        "revision": repr(revision),
        "logs": json.dumps(logs, default=str),
        "state.json": (source.root / "state.json").read_text()
        if (source.root / "state.json").exists()
        else "",
        "git config": (source.checkout / ".git" / "config").read_text()
        if (source.checkout / ".git" / "config").exists()
        else "",
        "credentials repr": repr(source.credentials),
    }
    return [name for name, text in places.items() if PASSWORD in text or encoded in text]


def test_basic_auth_with_the_right_password_syncs_and_leaves_no_trace_of_it(
    private: GitServer, tmp_path: Path, logs: list[MutableMapping[str, Any]]
) -> None:
    spec = SourceSpec(
        url=private.repo_url("fleet"), credentials=Credentials(username="agent", password=PASSWORD)
    )
    source = Source(spec, tmp_path / "state")

    revision = source.sync()
    again = source.sync()

    assert revision.error is None
    assert revision.commit == private.head("fleet")
    assert again.fetched is False
    assert _leaks(revision, source, logs) == []


def test_credentials_embedded_in_the_url_are_used_but_never_stored_or_logged(
    private: GitServer, tmp_path: Path, logs: list[MutableMapping[str, Any]]
) -> None:
    source = Source(SourceSpec(url=private.repo_url("fleet", with_credentials=True)), tmp_path / "state")

    revision = source.sync()

    assert revision.error is None
    assert source.url == private.repo_url("fleet")
    assert _leaks(revision, source, logs) == []


def test_a_token_is_sent_as_basic_auth(
    git_server_factory: Callable[..., GitServer], seed: Path, tmp_path: Path
) -> None:
    server = git_server_factory(username="x-access-token", password=PASSWORD)
    server.create_repo("fleet", from_dir=seed)
    spec = SourceSpec(url=server.repo_url("fleet"), credentials=Credentials.token(PASSWORD))
    assert Source(spec, tmp_path / "state").sync().error is None


@pytest.mark.parametrize(
    "credentials",
    [
        pytest.param(Credentials(username="agent", password=PASSWORD + "-wrong"), id="a wrong password"),
        pytest.param(Credentials(), id="no credentials"),
    ],
)
def test_bad_credentials_fail_with_a_clear_message_that_names_no_secret(
    private: GitServer, tmp_path: Path, logs: list[MutableMapping[str, Any]], credentials: Credentials
) -> None:
    source = Source(SourceSpec(url=private.repo_url("fleet"), credentials=credentials), tmp_path / "state")

    revision = source.sync()

    assert revision.error == f"authentication failed for {private.repo_url('fleet')}"
    assert (revision.path, revision.commit, revision.may_prune) == (None, None, False)
    assert _leaks(revision, source, logs) == []
    assert "wrong" not in json.dumps(logs, default=str) + repr(revision)


# ---------------------------------------------------------------------------------- outages


def test_an_unreachable_server_returns_the_cached_checkout_offline_and_forbids_pruning(
    git_server: GitServer, served: WorkingClone, tmp_path: Path, logs: list[MutableMapping[str, Any]]
) -> None:
    source = Source(SourceSpec(url=git_server.repo_url("fleet")), tmp_path / "state")
    good = source.sync()
    git_server.stop()

    revision = source.sync()

    assert revision.offline
    assert not revision.may_prune
    assert (revision.commit, revision.path) == (good.commit, good.path)
    assert revision.error == f"cannot reach {git_server.repo_url('fleet')}: connection refused"
    assert any(event["event"] == "source_offline" for event in logs)

    git_server.start()
    back = source.sync()
    assert (back.offline, back.error, back.fetched) == (False, None, False)


def test_a_restarted_agent_with_no_network_serves_its_last_checkout_and_last_applied_commit(
    git_server: GitServer, served: WorkingClone, tmp_path: Path
) -> None:
    spec = SourceSpec(url=git_server.repo_url("fleet"))
    before = Source(spec, tmp_path / "state")
    good = before.sync()
    assert good.commit is not None
    before.mark_applied(good.commit)
    git_server.stop()

    restarted = Source(spec, tmp_path / "state")
    revision = restarted.sync()

    assert revision.offline
    assert revision.commit == good.commit
    assert revision.path is not None
    assert (revision.path / "fleet" / "clusters" / "edge-1.yaml").exists()
    assert revision.last_applied == good.commit
    assert restarted.last_applied == good.commit


def test_no_network_and_no_cache_means_no_checkout(
    git_server: GitServer, served: WorkingClone, tmp_path: Path
) -> None:
    git_server.stop()
    revision = Source(SourceSpec(url=git_server.repo_url("fleet")), tmp_path / "state").sync()
    assert (revision.commit, revision.path, revision.offline) == (None, None, True)
    assert revision.error == f"cannot reach {git_server.repo_url('fleet')}: connection refused"


def test_an_unknown_host_is_reported_as_such(tmp_path: Path) -> None:
    revision = Source(SourceSpec(url="http://no-such-host.invalid/fleet.git"), tmp_path / "state").sync()
    assert revision.error == "cannot reach http://no-such-host.invalid/fleet.git: host not found"


# ---------------------------------------------------------------------------------- corruption


def _delete_objects(checkout: Path) -> None:
    objects = checkout / ".git" / "objects"
    for entry in objects.iterdir():
        if entry.name not in ("info", "pack"):
            shutil.rmtree(entry)
    for pack in (objects / "pack").iterdir():
        pack.unlink()


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(_delete_objects, id="deleted objects"),
        pytest.param(lambda c: (c / ".git" / "HEAD").write_text("garbage\n"), id="a broken HEAD"),
        pytest.param(lambda c: shutil.rmtree(c / ".git"), id="a missing .git directory"),
        pytest.param(
            lambda c: (c / "fleet" / "clusters" / "edge-1.yaml").write_text("tampered\n"), id="an edited file"
        ),
    ],
)
def test_a_corrupt_cache_is_detected_and_cloned_again(
    git_server: GitServer, served: WorkingClone, tmp_path: Path, damage: Callable[[Path], Any]
) -> None:
    spec = SourceSpec(url=git_server.repo_url("fleet"))
    good = Source(spec, tmp_path / "state").sync()
    damage(tmp_path / "state" / "source" / "checkout")

    restarted = Source(spec, tmp_path / "state")
    revision = restarted.sync()

    assert revision.error is None
    assert revision.fetched
    assert revision.commit == good.commit
    assert (
        tmp_path / "state" / "source" / "checkout" / "fleet" / "clusters" / "edge-1.yaml"
    ).read_text() == ("name: edge-1\n")
    assert restarted.sync().fetched is False


def test_a_corrupt_cache_is_not_served_when_offline(
    git_server: GitServer, served: WorkingClone, tmp_path: Path
) -> None:
    spec = SourceSpec(url=git_server.repo_url("fleet"))
    Source(spec, tmp_path / "state").sync()
    _delete_objects(tmp_path / "state" / "source" / "checkout")
    git_server.stop()

    revision = Source(spec, tmp_path / "state").sync()

    assert (revision.path, revision.offline) == (None, True)


def test_a_changed_repo_url_fetches_from_the_new_remote(
    git_server: GitServer, served: WorkingClone, seed: Path, tmp_path: Path
) -> None:
    Source(SourceSpec(url=git_server.repo_url("fleet")), tmp_path / "state").sync()
    (seed / "moved.txt").write_text("the new home\n")
    git_server.create_repo("fleet-v2", from_dir=seed)

    moved = Source(SourceSpec(url=git_server.repo_url("fleet-v2")), tmp_path / "state")
    revision = moved.sync()

    assert revision.fetched
    assert revision.commit == git_server.head("fleet-v2")
    assert (moved.checkout / "moved.txt").exists()
    assert git_server.repo_url("fleet-v2") in (moved.checkout / ".git" / "config").read_text()


def test_commits_left_behind_by_shallow_fetches_are_garbage_collected(
    git_server: GitServer, served: WorkingClone, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import agent.source
    from tests.fixtures.gitserver import git

    monkeypatch.setattr(agent.source, "_GC_EVERY_FETCHES", 2)
    source = Source(SourceSpec(url=git_server.repo_url("fleet")), tmp_path / "state")
    old = source.sync().commit
    assert old is not None
    served.commit_and_push("newer", {"n.txt": "1"})

    revision = source.sync()  # the second fetch: garbage collection runs after it

    assert revision.commit == served.head()
    with pytest.raises(RuntimeError, match="fatal"):
        git("cat-file", "-e", f"{old}^{{commit}}", cwd=source.checkout)
    git("fsck", "--connectivity-only", cwd=source.checkout)


# ------------------------------------------------------------------------- an older commit's checkout


def test_checkout_at_gives_an_older_commit_beside_the_main_checkout_which_it_never_moves(
    git_server: GitServer, served: WorkingClone, tmp_path: Path
) -> None:
    older = served.commit_and_push("released", {"fleet/clusters/edge-2.yaml": "name: edge-2\n"})
    newer = served.commit_and_push("unreleased", {"fleet/clusters/edge-2.yaml": "name: edge-2-new\n"})
    source = Source(SourceSpec(url=git_server.repo_url("fleet"), path="fleet"), tmp_path / "state")
    assert source.sync().commit == newer

    path = source.checkout_at(older)

    assert path is not None
    assert (path / "clusters" / "edge-2.yaml").read_text() == "name: edge-2\n"  # the sub-path, at older
    assert (source.checkout / "fleet" / "clusters" / "edge-2.yaml").read_text() == "name: edge-2-new\n"
    again = source.sync()  # the main checkout is intact and still the remote's commit
    assert (again.commit, again.fetched) == (newer, False)
    assert source.checkout_at(older) == path


def test_checkout_at_refuses_what_is_not_a_commit_of_the_repo_and_does_not_retry_it_every_pass(
    git_server: GitServer, served: WorkingClone, tmp_path: Path
) -> None:
    source = Source(SourceSpec(url=git_server.repo_url("fleet")), tmp_path / "state")
    assert source.checkout_at("a" * 40) is None  # no checkout yet
    source.sync()
    for hostile in ("HEAD", "--upload-pack=touch /tmp/x", "../../etc", "A" * 40):
        assert source.checkout_at(hostile) is None
    fetches = source.fetches
    assert source.checkout_at("b" * 40) is None  # not in the repo
    tried = source.fetches - fetches
    assert tried >= 1
    assert source.checkout_at("b" * 40) is None
    assert source.fetches - fetches == tried  # remembered: no second round of fetches
