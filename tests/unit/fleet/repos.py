"""Small fleet repos written to a temp dir, for tests that break one thing at a time."""

from __future__ import annotations

import pathlib
import textwrap

from hypothesis import HealthCheck, settings

HEADER = "apiVersion: flotilla.dev/v1alpha1\n"


def cluster(name: str, **labels: str) -> str:
    lines = "".join(f"  {key}: {value}\n" for key, value in labels.items())
    return (
        f"{HEADER}kind: Cluster\nname: {name}\nlabels:\n{lines}"
        if labels
        else f"{HEADER}kind: Cluster\nname: {name}\n"
    )


def base_files() -> dict[str, str]:
    """A valid repo: two clusters, one group, a local chart and two bundles (web depends on base)."""
    return {
        "clusters/eu-1.yaml": cluster("eu-1", region="eu", arch="arm64"),
        "clusters/us-1.yaml": cluster("us-1", region="us", arch="amd64"),
        "groups/arm.yaml": HEADER
        + textwrap.dedent(
            """\
            kind: ClusterGroup
            name: arm
            selector:
              matchLabels:
                arch: arm64
            """
        ),
        "charts/app/Chart.yaml": "apiVersion: v2\nname: app\nversion: 1.0.0\n",
        "charts/app/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\n",
        "bundles/base/bundle.yaml": HEADER
        + textwrap.dedent(
            """\
            kind: Bundle
            name: base
            namespace: base
            chart:
              path: ../../charts/app
            targets:
              - clusterSelector: {}
            """
        ),
        "bundles/web/bundle.yaml": HEADER
        + textwrap.dedent(
            """\
            kind: Bundle
            name: web
            namespace: web
            chart:
              path: ../../charts/app
            dependsOn:
              - base
            values:
              replicas: 1
            targets:
              - clusterSelector: {}
            """
        ),
    }


def write_repo(root: pathlib.Path, files: dict[str, str]) -> pathlib.Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def bundle(name: str, body: str, *, namespace: str | None = None) -> str:
    """A bundle file with a local chart, plus ``body`` (dedented YAML) appended."""
    return (
        f"{HEADER}kind: Bundle\nname: {name}\nnamespace: {namespace or name}\n"
        "chart:\n  path: ../../charts/app\n" + textwrap.dedent(body)
    )


# The CI machine is small and busy: judge property tests on their examples, not on their timing.
relaxed = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Property tests that write repos to disk: fewer examples, each one a whole load and plan.
relaxed_io = settings(relaxed, max_examples=30)
