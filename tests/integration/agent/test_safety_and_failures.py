"""What the agent does when things go wrong: an unreachable Git server, a commit with a broken
bundle file, a chart that does not render, an upgrade that never becomes ready, a missing
valuesFrom Secret, and a release of the same name installed by hand."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.integration.agent.harness import bundle_file, by_bundle, cluster_file, flotilla_releases, get
from tests.localcluster import NEVER_READY_LABEL

pytestmark = pytest.mark.cluster


def two_bundles(name: str, ns: str) -> dict[str, str]:
    return {
        f"clusters/{name}.yaml": cluster_file(name, {"region": "eu"}),
        "bundles/web/bundle.yaml": bundle_file("web", ns, targets=[{"clusterName": name}]),
        "bundles/api/bundle.yaml": bundle_file("api", ns, targets=[{"clusterName": name}]),
    }


def test_unreachable_git_uninstalls_nothing_reports_the_error_and_keeps_the_last_good_state(
    cluster, git_server, fleet_repo_factory, harness_factory, unique
):
    repo = fleet_repo_factory(two_bundles(unique, unique))
    agent = harness_factory(cluster, unique, repo.url)
    assert agent.run_pass()[0].ok
    # A commit that drops "api" is pushed, but the agent never sees it: Git goes away first.
    repo.write({"bundles/api/bundle.yaml": None}, "drop api")
    git_server.stop()

    outcome, report = agent.run_pass()

    assert outcome.pruned == ()
    assert outcome.prune_skipped
    assert "source" in outcome.prune_skipped
    assert flotilla_releases(cluster, unique) == {(unique, "web"), (unique, "api")}
    assert report.source.error
    assert "127.0.0.1" in report.source.error
    assert {b.bundle: b.state for b in report.bundles} == {"web": "Ready", "api": "Ready"}


def test_offline_restart_with_a_populated_state_dir_keeps_everything_ready(
    cluster, git_server, fleet_repo_factory, harness_factory, unique
):
    repo = fleet_repo_factory(two_bundles(unique, unique))
    agent = harness_factory(cluster, unique, repo.url)
    assert agent.run_pass()[0].ok
    git_server.stop()
    agent.restart()

    result = subprocess.run(
        agent.command("once"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert "Ready" in result.stdout, result.stdout + result.stderr
    assert flotilla_releases(cluster, unique) == {(unique, "web"), (unique, "api")}
    assert "source:" in result.stdout  # the table says the source could not be fetched
    # `once` exits non-zero: the bundles are Ready but the source is failing, which an operator must see.
    assert result.returncode == 1


def test_a_broken_bundle_file_leaves_its_release_untouched_while_the_others_upgrade_and_prune(
    cluster, fleet_repo_factory, harness_factory, unique
):
    files = two_bundles(unique, unique)
    files["bundles/db/bundle.yaml"] = bundle_file("db", unique, targets=[{"clusterName": unique}])
    worker = bundle_file("worker", unique, dependsOn=["api"], targets=[{"clusterName": unique}])
    files["bundles/worker/bundle.yaml"] = worker
    repo = fleet_repo_factory(files)
    agent = harness_factory(cluster, unique, repo.url)
    assert agent.run_pass()[0].ok
    revisions = {r.bundle: r.helm_revision for r in agent.run_pass()[0].releases}
    broken = bundle_file("api", unique, values={"region": "new"}, targets=[{"clusterName": unique}])
    repo.write(
        {
            "bundles/web/bundle.yaml": bundle_file(
                "web", unique, values={"region": "new"}, targets=[{"clusterName": unique}]
            ),
            "bundles/api/bundle.yaml": broken.replace("namespace:", "namepsace:"),  # a typo: api is broken
            "bundles/db/bundle.yaml": None,  # and db is deleted: still pruned
            # worker depends on api: held back, although its own file is fine
            "bundles/worker/bundle.yaml": bundle_file(
                "worker",
                unique,
                dependsOn=["api"],
                values={"region": "new"},
                targets=[{"clusterName": unique}],
            ),
        },
        "typo in api, web and worker changed, db removed",
    )

    outcome, report = agent.run_pass()

    releases = by_bundle(outcome)
    assert releases["web"].state == "Ready"
    assert releases["web"].helm_revision == revisions["web"] + 1
    assert "api" not in releases  # its targets are unknown: nothing is decided about it
    assert releases["worker"].state == "Failed"
    assert releases["worker"].message == "not applied: it depends on 'api', which has problems"
    assert releases["worker"].helm_revision == revisions["worker"]
    assert outcome.pruned == (f"{unique}/db",)
    assert outcome.helm_calls.count("upgrade") == 1, outcome.helm_calls  # web only
    assert [(p.file, p.line) for p in report.source.errors] == [("bundles/api/bundle.yaml", 4)]
    assert flotilla_releases(cluster, unique) == {(unique, "web"), (unique, "api"), (unique, "worker")}
    assert get(cluster, f"/api/v1/namespaces/{unique}/configmaps/web-config")["data"]["region"] == "new"
    assert get(cluster, f"/api/v1/namespaces/{unique}/configmaps/api-config")["data"]["region"] == "none"
    assert get(cluster, f"/api/v1/namespaces/{unique}/configmaps/worker-config")["data"]["region"] == "none"
    assert not outcome.ok

    # The next ordinary commit fixes api: it is upgraded, and the agent is whole again.
    repo.write({"bundles/api/bundle.yaml": broken}, "fix the typo")
    outcome, report = agent.run_pass()
    assert outcome.ok, outcome
    assert by_bundle(outcome)["api"].helm_revision == revisions["api"] + 1
    assert by_bundle(outcome)["worker"].helm_revision == revisions["worker"] + 1
    assert get(cluster, f"/api/v1/namespaces/{unique}/configmaps/api-config")["data"]["region"] == "new"
    assert get(cluster, f"/api/v1/namespaces/{unique}/configmaps/worker-config")["data"]["region"] == "new"
    assert not report.source.errors


def test_chart_that_does_not_render_is_failed_with_helms_message(
    cluster, fleet_repo_factory, harness_factory, unique
):
    files = two_bundles(unique, unique)
    files["bundles/api/bundle.yaml"] = bundle_file(
        "api", unique, values={"breakRendering": True}, targets=[{"clusterName": unique}]
    )
    repo = fleet_repo_factory(files)
    agent = harness_factory(cluster, unique, repo.url)

    outcome, report = agent.run_pass()

    states = {b.bundle: b for b in report.bundles}
    assert states["web"].state == "Ready"
    assert states["api"].state == "Failed"
    assert "app.no-such-template" in states["api"].message
    assert not outcome.ok


def test_upgrade_that_never_becomes_ready_fails_with_the_resource_message_and_is_rolled_back(
    cluster, fleet_repo_factory, harness_factory, unique
):
    repo = fleet_repo_factory(
        {
            f"clusters/{unique}.yaml": cluster_file(unique, {}),
            "bundles/web/bundle.yaml": bundle_file(
                "web",
                unique,
                values={"region": "good"},
                targets=[{"clusterName": unique}],
                helm={"timeoutSeconds": 15},
            ),
        }
    )
    agent = harness_factory(cluster, unique, repo.url)
    assert agent.run_pass()[0].ok
    never_ready = {NEVER_READY_LABEL: "true"}
    repo.write(
        {
            "bundles/web/bundle.yaml": bundle_file(
                "web",
                unique,
                values={"region": "bad", "podLabels": never_ready},
                targets=[{"clusterName": unique}],
                helm={"timeoutSeconds": 15},
            )
        },
        "web: a release whose pods never become ready",
    )

    outcome, report = agent.run_pass()

    web = by_bundle(outcome)["web"]
    assert web.state in ("Failed", "Degraded")
    assert "rolled back to revision 1" in web.message
    assert get(cluster, f"/api/v1/namespaces/{unique}/configmaps/web-config")["data"]["region"] == "good"
    assert report.bundles[0].helm_revision == 3  # 1 good, 2 failed, 3 = rollback to 1

    # The next pass does not hammer the same broken digest: it reports the failure and backs off.
    again, _ = agent.run_pass()
    assert by_bundle(again)["web"].action == "backoff"
    assert "upgrade" not in again.helm_calls


def test_missing_values_from_secret_fails_only_that_bundle_with_a_message_saying_so(
    cluster, fleet_repo_factory, harness_factory, unique
):
    files = two_bundles(unique, unique)
    files["bundles/api/bundle.yaml"] = bundle_file(
        "api",
        unique,
        targets=[{"clusterName": unique}],
        valuesFrom=[{"kind": "Secret", "name": "api-license", "key": "values.yaml"}],
    )
    repo = fleet_repo_factory(files)
    agent = harness_factory(cluster, unique, repo.url)

    _, report = agent.run_pass()
    states = {b.bundle: b for b in report.bundles}
    assert states["web"].state == "Ready"
    assert states["api"].state == "Failed"
    assert "api-license" in states["api"].message
    assert "not found" in states["api"].message

    # A Secret holding a "billion laughs" document is refused as it is read, not expanded.
    bomb = "l0: &l0 [lol]\n" + "".join(
        f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 10)
    )
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "api-license"}}
    cluster.api(
        f"/api/v1/namespaces/{unique}/secrets",
        method="POST",
        body={**secret, "stringData": {"values.yaml": bomb}},
    )
    _, report = agent.run_pass()
    states = {b.bundle: b for b in report.bundles}
    assert states["web"].state == "Ready"
    assert states["api"].state == "Failed"
    assert "is not YAML (line 6: the document exceeds the limit of 100000 values" in states["api"].message
    cluster.api(f"/api/v1/namespaces/{unique}/secrets/api-license", method="DELETE")

    cluster.api(
        f"/api/v1/namespaces/{unique}/secrets",
        method="POST",
        body={
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "api-license"},
            "stringData": {"values.yaml": "region: licensed\n"},
        },
    )
    _, report = agent.run_pass()
    assert {b.bundle: b.state for b in report.bundles}["api"] == "Ready"
    assert get(cluster, f"/api/v1/namespaces/{unique}/configmaps/api-config")["data"]["region"] == "licensed"


def test_a_release_installed_by_hand_is_reported_as_a_conflict_and_left_alone(
    cluster, fleet_repo_factory, harness_factory, unique
):
    subprocess.run(
        [
            cluster.tools.helm,
            "install",
            "web",
            "tests/charts/app",
            "--namespace",
            unique,
            "--create-namespace",
            "--set",
            "region=by-hand",
        ],
        env=cluster.env(),
        check=True,
        capture_output=True,
        timeout=120,
    )
    repo = fleet_repo_factory(two_bundles(unique, unique))
    agent = harness_factory(cluster, unique, repo.url)

    _, report = agent.run_pass()

    states = {b.bundle: b for b in report.bundles}
    assert states["web"].state == "Failed"
    assert "not installed by Flotilla" in states["web"].message
    assert states["api"].state == "Ready"
    assert get(cluster, f"/api/v1/namespaces/{unique}/configmaps/web-config")["data"]["region"] == "by-hand"


def test_a_commit_linking_files_outside_the_repo_reads_none_of_them(
    cluster, fleet_repo_factory, harness_factory, unique, tmp_path, capfd
):
    marker = f"HOST-SECRET-{unique}-5c1e"
    outside = tmp_path / "host"
    outside.mkdir()
    (outside / "token.yaml").write_text(f"region: {marker}\n")
    repo = fleet_repo_factory(two_bundles(unique, unique))
    agent = harness_factory(cluster, unique, repo.url)
    assert agent.run_pass()[0].ok
    checkout = repo.clone.path
    shutil.copytree(checkout / "charts" / "app", checkout / "charts" / "evil")
    (checkout / "charts" / "evil" / "templates" / "leak.yaml").symlink_to(outside / "token.yaml")
    (checkout / "bundles" / "web" / "leak.yaml").symlink_to(outside / "token.yaml")
    web = bundle_file("web", unique, valuesFiles=["leak.yaml"], targets=[{"clusterName": unique}])
    api = bundle_file("api", unique, values={"region": "new"}, targets=[{"clusterName": unique}])
    repo.write(
        {"bundles/web/bundle.yaml": web, "bundles/api/bundle.yaml": api.replace("charts/app", "charts/evil")},
        "symlinks to host files",
    )

    outcome, report = agent.run_pass()

    assert outcome.releases == ()
    assert outcome.helm_calls == ()
    assert outcome.pruned == ()
    messages = {(p.file, p.message) for p in report.source.errors}
    assert ("charts/evil", "local chart file charts/evil/templates/leak.yaml is a symlink to a path outside "
            "the fleet repo; not read") in messages  # fmt: skip
    assert any(file == "bundles/web/bundle.yaml" and "symlink" in message for file, message in messages)
    configmaps = get(cluster, f"/api/v1/namespaces/{unique}/configmaps")
    assert marker not in json.dumps(configmaps)
    assert marker not in report.to_json()
    assert marker not in "".join(capfd.readouterr())

    # The next ordinary commit drops the links: both bundles apply again.
    repo.write({"bundles/web/bundle.yaml": web.replace("valuesFiles:\n- leak.yaml\n", ""),
                "bundles/api/bundle.yaml": api}, "no more links")  # fmt: skip
    outcome, _ = agent.run_pass()
    assert outcome.ok, outcome
    assert get(cluster, f"/api/v1/namespaces/{unique}/configmaps/api-config")["data"]["region"] == "new"


def test_a_pass_stopped_midway_reports_the_bundles_it_did_not_reach_as_they_were_and_the_next_pass_finishes(
    cluster, git_server, fleet_repo_factory, harness_factory, unique
):
    """SIGTERM mid-pass (a pod roll, a node drain): the report must not tell the hub the bundles the
    pass never reached are gone, nor mark the commit applied; the next pass upgrades them."""
    repo = fleet_repo_factory(two_bundles(unique, unique))
    agent = harness_factory(cluster, unique, repo.url)
    first, _ = agent.run_pass()
    assert first.ok
    revisions = {r.bundle: r.helm_revision for r in first.releases}
    commit = repo.write(
        {
            f"bundles/{name}/bundle.yaml": bundle_file(
                name, unique, values={"region": "v2"}, targets=[{"clusterName": unique}]
            )
            for name in ("web", "api")
        },
        "both change",
    )
    runner = agent.agent
    assert runner is not None
    real_upgrade = runner.helm.upgrade_install

    def upgrade_then_stop(*args, **kwargs):  # the signal arrives while the first upgrade runs
        result = real_upgrade(*args, **kwargs)
        runner.stop.set()
        return result

    runner.helm.upgrade_install = upgrade_then_stop
    stopped, report = agent.run_pass()

    assert len(stopped.unreached) == 1
    assert not stopped.ok
    reached = next(r for r in stopped.releases if r.bundle not in stopped.unreached)
    assert reached.helm_revision == revisions[reached.bundle] + 1
    carried = {b.bundle: b for b in report.bundles}[stopped.unreached[0]]
    assert (carried.state, carried.helm_revision) == ("Ready", revisions[carried.bundle])
    assert "the agent was stopping" in carried.message
    assert {b.bundle for b in report.bundles} == {"web", "api"}
    assert report.source.applied_commit is None
    assert flotilla_releases(cluster, unique) == {(unique, "web"), (unique, "api")}

    runner.stop.clear()
    runner.helm.upgrade_install = real_upgrade
    after, report = agent.run_pass()
    assert after.ok
    assert after.unreached == ()
    assert {b.bundle: b.helm_revision for b in report.bundles} == {n: r + 1 for n, r in revisions.items()}
    assert report.source.applied_commit == commit
