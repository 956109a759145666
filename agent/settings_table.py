"""The agent's settings, declared once: each one's config-file key, flag, environment variable, help
and default, and the command-line arguments made from them (resolved by ``agent.settings``)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass


@dataclass(frozen=True)
class Setting:
    key: str  # snake_case: the config-file key and the argparse dest
    flag: str
    env: str
    help: str
    default: str | None = None


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "repo_url",
        "--repo-url",
        "FLOTILLA_REPO_URL",
        "fleet repo: https://, ssh://, git@host:, or a local path",
    ),
    Setting("branch", "--branch", "FLOTILLA_BRANCH", "branch to follow (default: main)"),
    Setting("tag", "--tag", "FLOTILLA_TAG", "pin to a tag instead of a branch"),
    Setting("commit", "--commit", "FLOTILLA_COMMIT", "pin to a commit"),
    Setting("path", "--path", "FLOTILLA_REPO_PATH", "the fleet repo's directory inside the Git repo", "."),
    Setting("cluster", "--cluster", "FLOTILLA_CLUSTER", "this cluster's name in the fleet repo"),
    Setting(
        "credentials_file",
        "--credentials-file",
        "FLOTILLA_CREDENTIALS_FILE",
        "YAML with {username, password}, {token} or {ssh_key_file, known_hosts_file}, and "
        "chart_registries: {HOST: {username, password, plain_http, ca_file}}",
    ),
    Setting(
        "interval", "--interval", "FLOTILLA_INTERVAL", "seconds between passes (plus up to 10%% jitter)", "60"
    ),
    Setting("state_dir", "--state-dir", "FLOTILLA_STATE_DIR", "state directory", "/var/lib/flotilla"),
    Setting("kubeconfig", "--kubeconfig", "KUBECONFIG", "kubeconfig (default: in-cluster service account)"),
    Setting("hub_url", "--hub-url", "FLOTILLA_HUB_URL", "hub to report to (optional)"),
    Setting(
        "hub_token_file",
        "--hub-token-file",
        "FLOTILLA_HUB_TOKEN_FILE",
        "file holding this cluster's hub token",
    ),
    Setting("helm", "--helm", "FLOTILLA_HELM", "helm binary (default: helm on PATH)", "helm"),
    Setting(
        "lease_namespace",
        "--lease-namespace",
        "FLOTILLA_LEASE_NAMESPACE",
        "namespace of the agent's Lease (default: the pod's namespace in-cluster, else 'default')",
    ),
    Setting(
        "namespaces",
        "--namespaces",
        "FLOTILLA_NAMESPACES",
        "comma-separated namespaces the agent may write to (namespaced RBAC mode); default: all",
    ),
    Setting(
        "verify_signatures",
        "--verify-signatures",
        "FLOTILLA_VERIFY_SIGNATURES",
        "apply only commits (tag pins: tags) signed by a trusted key: ssh, gpg or off",
        "off",
    ),
    Setting(
        "trusted_keys",
        "--trusted-keys",
        "FLOTILLA_TRUSTED_KEYS",
        "the trusted keys: an SSH allowed_signers file (ssh) or an armored public keyring (gpg)",
    ),
    Setting(
        "sops_key_secret",
        "--sops-key-secret",
        "FLOTILLA_SOPS_KEY_SECRET",
        "[NAMESPACE/]NAME of the Secret (key age.agekey) with this site's age key for SOPS values",
    ),
    Setting("sops", "--sops", "FLOTILLA_SOPS", "sops binary (default: sops on PATH)", "sops"),
)
CONFIG_ENV = "FLOTILLA_CONFIG"


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", help=f"YAML config file with any of the settings below (env {CONFIG_ENV})"
    )
    for setting in SETTINGS:
        parser.add_argument(setting.flag, dest=setting.key, help=f"{setting.help} (env {setting.env})")
