"""``flotilla-agent bootstrap``: install the agent into the current cluster with its Helm chart and
make it a bundle of the fleet repo (``agent.selfbundle``), so its version changes by ``git commit``.

Steps, each printed as it runs (``--dry-run`` prints them and changes nothing):

1. the agent's namespace (server-side apply; the release lives in it, so it exists before helm);
2. the ConfigMap ``flotilla-agent-site`` with this site's values (read by the bundle's valuesFrom);
3. ``helm upgrade --install flotilla-agent`` of the bundled chart, labelled as the ``flotilla-system``
   bundle's release so the agent takes it over; a release that is already deployed and managed
   from Git is left alone (the repo owns it now);
4. the bundle and chart files: written into ``--write-bundle DIR`` (a fleet repo checkout; commit
   them), else printed as a diff for a pull request.

Running it again changes nothing that is already as it should be.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import yaml

from agent import chart as agent_chart
from agent import selfbundle
from agent.install_options import InstallOptions
from agent.manifests import build_manifests
from agent.manifests_cli import add_install_arguments, options_from_args

if TYPE_CHECKING:  # the Kubernetes client is imported only when bootstrap runs: every CLI call
    from agent.kube import Kube  # (the readiness probe too) builds this command's parser

from agent.releases import (
    BUNDLE_LABEL,
    CLUSTER_LABEL,
    COMMIT_LABEL,
    DIGEST_LABEL,
    OWNER_LABEL,
    OWNER_VALUE,
    TIMEOUT_LABEL,
    group_releases,
)

HELM_TIMEOUT_SECONDS = 300


class BootstrapError(RuntimeError):
    pass


def add_bootstrap_command(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "bootstrap",
        help="install the agent into the current cluster and manage it from the fleet repo",
        description="Install the agent's Helm chart into the current cluster (KUBECONFIG) and create "
        "the flotilla-system bundle that keeps it up to date from the fleet repo.  Idempotent; "
        "--dry-run shows every step without changing anything.",
    )
    add_install_arguments(parser)
    parser.add_argument("--dry-run", action="store_true", help="print the steps, change nothing")
    parser.add_argument(
        "--write-bundle",
        metavar="DIR",
        type=Path,
        help="a fleet repo checkout: write bundles/flotilla-system and charts/flotilla-agent into it "
        "(default: print them as a diff)",
    )
    parser.add_argument("--kubeconfig", type=Path, default=_env_path("KUBECONFIG"))
    parser.add_argument("--helm", default=os.environ.get("FLOTILLA_HELM") or "helm", help="helm binary")
    parser.set_defaults(handler=_run_bootstrap)


def _env_path(name: str) -> Path | None:
    """KUBECONFIG (its first file), else ~/.kube/config when it exists, else in-cluster."""
    value = (os.environ.get(name) or "").split(os.pathsep)[0]
    if value:
        return Path(value)
    default = Path.home() / ".kube" / "config"
    return default if default.is_file() else None


def _run_bootstrap(args: argparse.Namespace) -> int:
    from agent.helm import HelmError
    from agent.kube import KubeError

    try:
        options = replace(options_from_args(args), create_namespace=False)
        build_manifests(options)  # refuses inconsistent options before anything is done
        bootstrap(
            options,
            kubeconfig=args.kubeconfig,
            helm_binary=args.helm,
            dry_run=args.dry_run,
            bundle_dir=args.write_bundle,
            out=sys.stdout,
        )
    except (ValueError, BootstrapError, KubeError, HelmError) as error:
        print(f"flotilla-agent bootstrap: {error}", file=sys.stderr)
        return 1
    return 0


def site_configmap(options: InstallOptions) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": selfbundle.SITE_CONFIGMAP,
            "namespace": options.namespace,
            "labels": {"app.kubernetes.io/name": "flotilla-agent", "app.kubernetes.io/part-of": "flotilla"},
        },
        "data": {selfbundle.SITE_KEY: yaml.safe_dump(selfbundle.site_values(options), sort_keys=True)},
    }


def release_labels(cluster: str) -> dict[str, str]:
    """The labels the agent's reconcile gives its releases; the digest is a placeholder, so the
    agent's first pass upgrades the release once to the bundle's exact values and records its own."""
    return {
        OWNER_LABEL: OWNER_VALUE,
        BUNDLE_LABEL: selfbundle.SELF_BUNDLE,
        CLUSTER_LABEL: cluster,
        COMMIT_LABEL: "bootstrap",
        DIGEST_LABEL: "bootstrap",
        TIMEOUT_LABEL: str(HELM_TIMEOUT_SECONDS),
    }


def bootstrap(
    options: InstallOptions,
    *,
    kubeconfig: Path | None,
    helm_binary: str,
    dry_run: bool,
    bundle_dir: Path | None,
    out: TextIO,
) -> None:
    prefix = "[dry run] " if dry_run else ""
    # Everything that can be refused is checked before the first change.
    if bundle_dir is not None and not (bundle_dir / "clusters").is_dir():
        raise BootstrapError(
            f"--write-bundle {bundle_dir}: not a fleet repo checkout (no clusters/ directory)"
        )
    selfbundle.bundle_change(bundle_dir, options)  # refuses an unreadable existing bundle file

    def say(step: int, text: str) -> None:
        print(f"{prefix}[{step}/4] {text}", file=out, flush=True)

    namespace = next(
        o for o in build_manifests(replace(options, create_namespace=True)) if o["kind"] == "Namespace"
    )
    from agent.kube import Kube

    kube = None if dry_run else Kube.connect(kubeconfig)
    ns = options.namespace
    say(1, f"namespace {ns}: {'would apply' if kube is None else 'apply'}")
    if kube is not None:
        kube.apply(namespace, ns)
    say(2, f"configmap {ns}/{selfbundle.SITE_CONFIGMAP}: site values for cluster {options.cluster!r}")
    if kube is not None:
        kube.apply(site_configmap(options), ns)
    _install_release(options, kube, helm_binary, kubeconfig, lambda text: say(3, text))
    _bundle_files(options, bundle_dir, dry_run, out, lambda text: say(4, text))


def _install_release(
    options: InstallOptions, kube: Kube | None, helm_binary: str, kubeconfig: Path | None, say: Any
) -> None:
    ns, release = options.namespace, selfbundle.RELEASE
    what = f"helm upgrade --install {release} {agent_chart.chart_dir()} -n {ns} (image {options.image})"
    if kube is None:
        say(f"would run {what}")
        return
    history = group_releases(kube.helm_release_secrets(ns, release)).get((ns, release))
    if history is not None:
        current = history.current
        if current.status == "deployed" and current.labels.get(BUNDLE_LABEL) == selfbundle.SELF_BUNDLE:
            say(
                f"release {ns}/{release} revision {current.revision} is deployed, managed from Git: unchanged"
            )
            return
        if not current.owned:
            raise BootstrapError(
                f"release {ns}/{release} exists and is not Flotilla's (installed by hand?); "
                f"uninstall it first or choose another --namespace"
            )
    say(what)
    from agent.helm import ChartRef, Helm

    with tempfile.TemporaryDirectory(prefix="flotilla-bootstrap-") as home:
        helm = Helm(binary=helm_binary, kubeconfig=kubeconfig, home=Path(home), create_namespace=False)
        helm.upgrade_install(
            release=release,
            namespace=ns,
            chart=ChartRef(str(agent_chart.chart_dir())),
            values=agent_chart.chart_values(options),
            labels=release_labels(options.cluster),
            timeout_seconds=HELM_TIMEOUT_SECONDS,
            wait=False,
            max_history=5,
        )
    say(f"release {ns}/{release} installed")


def _bundle_files(
    options: InstallOptions, bundle_dir: Path | None, dry_run: bool, out: TextIO, say: Any
) -> None:
    changes = [selfbundle.bundle_change(bundle_dir, options), *selfbundle.chart_changes(bundle_dir)]
    changed = [c for c in changes if c.changed]
    if not changed:
        say(f"{selfbundle.BUNDLE_FILE} already targets {options.cluster!r}: unchanged")
        return
    if bundle_dir is None or dry_run:
        say(f"bundle files to commit to the fleet repo ({len(changed)} files):")
        for change in changed:
            out.write(change.diff())
        return
    for change in changed:
        path = bundle_dir / change.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(change.new)
        say(f"wrote {change.path}")
    say(f"commit them: git -C {bundle_dir} add {selfbundle.BUNDLE_FILE} {selfbundle.CHART_DIR}")
