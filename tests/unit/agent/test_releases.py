"""Helm release records decoded from Helm's storage Secrets, and manifests split into objects."""

from __future__ import annotations

import base64
import gzip
import json

from agent.releases import group_releases, manifest_objects


def storage_secret(name: str, namespace: str, revision: int, status: str, **labels: str) -> dict:
    document = {
        "name": name,
        "namespace": namespace,
        "version": revision,
        "info": {"status": status, "description": "Install complete"},
        "chart": {"metadata": {"name": "app", "version": "1.0.0"}},
        "manifest": "---\nkind: ConfigMap\napiVersion: v1\nmetadata:\n  name: cfg\n",
    }
    helm_encoded = base64.b64encode(gzip.compress(json.dumps(document).encode()))
    return {
        "metadata": {
            "name": f"sh.helm.release.v1.{name}.v{revision}",
            "namespace": namespace,
            "labels": {"owner": "helm", "name": name, "status": status, "version": str(revision), **labels},
        },
        "data": {"release": base64.b64encode(helm_encoded).decode()},
    }


def test_revisions_are_grouped_per_release_newest_last_and_the_last_deployed_is_found():
    secrets = [
        storage_secret("web", "ns", 2, "failed"),
        storage_secret("web", "ns", 1, "superseded"),
        storage_secret("web", "ns", 3, "pending-upgrade", **{"flotilla.dev/owner": "flotilla"}),
        storage_secret("api", "other", 1, "deployed"),
        {"metadata": {"name": "garbage", "namespace": "ns"}, "data": {"release": "not base64!"}},
    ]
    releases = group_releases(secrets)
    assert sorted(releases) == [("ns", "web"), ("other", "api")]
    web = releases[("ns", "web")]
    assert [r.revision for r in web.revisions] == [1, 2, 3]
    assert web.current.pending
    assert web.current.owned
    assert web.current.chart_version == "1.0.0"
    assert web.last_deployed(before=3).revision == 1
    assert not releases[("other", "api")].current.owned


def test_manifest_objects_fill_in_the_release_namespace_and_skip_empty_documents():
    manifest = (
        "---\n# Source: app/templates/a.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n"
        "---\n# only a comment\n"
        "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: b\n  namespace: elsewhere\n"
    )
    objects = manifest_objects(manifest, "release-ns")
    assert [(o["kind"], o["metadata"]["namespace"]) for o in objects] == [
        ("ConfigMap", "release-ns"),
        ("Service", "elsewhere"),
    ]


def test_helm_log_lines_are_dropped_and_the_cause_leads() -> None:
    from agent.helm import scrub

    stderr = (
        'level=WARN msg="upgrade failed" name=web error="context deadline exceeded"\n'
        'time=2026-12-01T23:00:00Z level=INFO msg="rolling back"\n'
        "Error: UPGRADE FAILED: resource Deployment/shop/web not ready. status: InProgress\n"
    )
    assert scrub(stderr) == "UPGRADE FAILED: resource Deployment/shop/web not ready. status: InProgress"
    assert scrub('level=WARN msg="only a warning"') == 'level=WARN msg="only a warning"'
    assert scrub("Error: x https://user:secret@example.com/r") == "x https://example.com/r"
