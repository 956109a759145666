"""Digests change exactly when something that reaches Helm changes."""

from __future__ import annotations

import pathlib
from collections.abc import Callable

import pytest

from agent import fleet
from tests.unit.fleet.repos import base_files, write_repo

Files = dict[str, str]


def digests(root: pathlib.Path, cluster: str = "eu-1") -> dict[str, str]:
    return {r.bundle: r.digest for r in fleet.plan_cluster(fleet.load_repo(root), cluster).releases}


def edit_web(old: str, new: str) -> Callable[[Files], None]:
    def change(files: Files) -> None:
        assert old in files["bundles/web/bundle.yaml"]
        files["bundles/web/bundle.yaml"] = files["bundles/web/bundle.yaml"].replace(old, new)

    return change


def append_web(text: str) -> Callable[[Files], None]:
    def change(files: Files) -> None:
        files["bundles/web/bundle.yaml"] += text

    return change


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(edit_web("replicas: 1", "replicas: 2"), id="a value"),
        pytest.param(edit_web("namespace: web", "namespace: web2"), id="namespace"),
        pytest.param(append_web("releaseName: shop\n"), id="release name"),
        pytest.param(append_web("helm: {timeoutSeconds: 301}\n"), id="helm timeout"),
        pytest.param(append_web("helm: {maxHistory: 4}\n"), id="helm max history"),
        pytest.param(append_web("helm: {wait: false}\n"), id="helm wait"),
        pytest.param(append_web("valuesFrom: [{kind: Secret, name: s}]\n"), id="valuesFrom added"),
        pytest.param(
            edit_web("- clusterSelector: {}", "- clusterSelector: {}\n    values: {x: 1}"), id="target values"
        ),
        pytest.param(
            lambda files: files.update(
                {"charts/app/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\n# edit\n"}
            ),
            id="local chart file content",
        ),
        pytest.param(
            lambda files: files.update({"charts/app/templates/new.yaml": ""}), id="local chart new file"
        ),
    ],
)
def test_changing_what_reaches_helm_changes_the_digest(
    tmp_path: pathlib.Path, change: Callable[[Files], None]
) -> None:
    before = digests(write_repo(tmp_path / "before", base_files()))
    files = base_files()
    change(files)
    after = digests(write_repo(tmp_path / "after", files))
    assert after["web"] != before["web"]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(append_web("paused: true\n"), id="paused"),
        pytest.param(append_web("correctDrift: false\n"), id="correctDrift"),
        pytest.param(edit_web("dependsOn:\n  - base\n", ""), id="dependsOn"),
        pytest.param(
            edit_web("- clusterSelector: {}", "- name: everyone\n    clusterSelector: {}"), id="target name"
        ),
        pytest.param(
            edit_web("- clusterSelector: {}", "- clusterName: eu-1"), id="how the cluster is targeted"
        ),
        pytest.param(edit_web("replicas: 1", "replicas: 1  # a comment"), id="comment"),
        pytest.param(edit_web("values:\n  replicas: 1\n", "values: {replicas: 1}\n"), id="flow style"),
        pytest.param(
            append_web("helm: {timeoutSeconds: 300, wait: true, maxHistory: 5}\n"), id="defaults spelled out"
        ),
        pytest.param(
            lambda files: files.update(
                {"clusters/eu-1.yaml": files["clusters/eu-1.yaml"] + "  site: lyon\n"}
            ),
            id="an unrelated cluster label",
        ),
    ],
)
def test_changes_that_do_not_reach_helm_keep_the_digest(
    tmp_path: pathlib.Path, change: Callable[[Files], None]
) -> None:
    before = digests(write_repo(tmp_path / "before", base_files()))
    files = base_files()
    change(files)
    after = digests(write_repo(tmp_path / "after", files))
    assert after["web"] == before["web"]


def test_the_same_release_on_two_clusters_has_the_same_digest(tmp_path: pathlib.Path) -> None:
    root = write_repo(tmp_path, base_files())
    assert digests(root, "eu-1") == digests(root, "us-1")


def test_key_order_does_not_matter(tmp_path: pathlib.Path) -> None:
    files = base_files()
    files["bundles/web/bundle.yaml"] = files["bundles/web/bundle.yaml"].replace(
        "values:\n  replicas: 1\n", "values:\n  a: {x: 1, y: 2}\n  replicas: 1\n"
    )
    reordered = base_files()
    reordered["bundles/web/bundle.yaml"] = reordered["bundles/web/bundle.yaml"].replace(
        "values:\n  replicas: 1\n", "values:\n  replicas: 1\n  a: {y: 2, x: 1}\n"
    )
    assert digests(write_repo(tmp_path / "a", files)) == digests(write_repo(tmp_path / "b", reordered))


def test_digest_is_a_sha256_hex_pinned_for_a_known_input() -> None:
    """Guards the canonical form: changing it silently would make every agent reinstall everything."""
    from agent.fleet.digest import release_digest

    digest = release_digest(
        release="web",
        namespace="web",
        chart=fleet.ChartSource(kind="oci", oci_ref="oci://r/c", version="1.0.0"),
        values={"b": [1, {"z": None}], "a": "é"},
        values_from=(fleet.ValuesRef(kind="Secret", name="s"),),
        options=fleet.HelmOptions(),
    )
    import hashlib
    import json

    expected_document = {
        "digestVersion": 1,
        "release": "web",
        "namespace": "web",
        "chart": {
            "kind": "oci",
            "path": None,
            "repo_url": None,
            "name": None,
            "version": "1.0.0",
            "oci_ref": "oci://r/c",
            "content_digest": None,
        },
        "values": {"a": "é", "b": [1, {"z": None}]},
        "valuesFrom": [
            {"kind": "Secret", "name": "s", "namespace": None, "key": "values.yaml", "optional": False}
        ],
        "options": {"timeout_seconds": 300, "wait": True, "max_history": 5},
    }
    canonical = json.dumps(expected_document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert digest == hashlib.sha256(canonical.encode()).hexdigest()
