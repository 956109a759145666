"""The agent's configuration: flags override environment variables, which override a YAML config file.

Pure except for reading the config file; ``load_settings`` raises :class:`SettingsError` with a
message naming the flag, variable or file key that is wrong.

The settings themselves (key, flag, variable, help, default) and their command-line arguments are
declared in ``agent.settings_table``.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from agent.helm import ChartAccess
from agent.redaction import redact_url
from agent.settings_table import CONFIG_ENV, SETTINGS
from agent.signatures import SignatureError, SignaturePolicy
from agent.source import Credentials


class SettingsError(ValueError):
    """The configuration is incomplete or invalid; the message names the setting."""


@dataclass(frozen=True)
class AgentSettings:
    repo_url: str
    cluster: str
    state_dir: Path
    branch: str | None = "main"
    tag: str | None = None
    commit: str | None = None
    path: str = "."
    credentials: Credentials = field(default_factory=Credentials)
    interval: float = 60.0
    kubeconfig: Path | None = None
    hub_url: str | None = None
    hub_token: str | None = None
    helm: str = "helm"
    config_file: Path | None = None
    lease_namespace: str | None = None
    namespaces: tuple[str, ...] | None = None  # None: every namespace
    signatures: SignaturePolicy = field(default_factory=SignaturePolicy)
    sops_key_secret: str | None = None  # "namespace/name"
    chart_access: Mapping[str, ChartAccess] = field(default_factory=dict)  # by registry/repo host
    sops: str = "sops"

    @property
    def is_local_source(self) -> bool:
        """A plain directory (not a URL): the agent reads it in place and watches it for changes."""
        return "://" not in self.repo_url and not _is_scp_like(self.repo_url)

    def __repr__(self) -> str:  # keep the hub token out of any accidental log line
        return (
            f"AgentSettings(repo_url={redact_url(self.repo_url)!r}, cluster={self.cluster!r}, "
            f"branch={self.branch!r}, tag={self.tag!r}, commit={self.commit!r}, path={self.path!r}, "
            f"state_dir='{self.state_dir}', "
            f"interval={self.interval})"
        )


def _is_scp_like(url: str) -> bool:
    head = url.split("/", 1)[0]
    return "@" in head and ":" in head


def load_settings(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> AgentSettings:
    """Resolve flags > environment > config file > defaults, and validate the result."""
    environ = os.environ if environ is None else environ
    config_path = getattr(args, "config", None) or environ.get(CONFIG_ENV)
    file_values = _read_config_file(Path(config_path)) if config_path else {}
    raw: dict[str, str | None] = {}
    for setting in SETTINGS:
        value = getattr(args, setting.key, None)
        if value is None:
            value = environ.get(setting.env)
        if value is None and setting.key in file_values:
            value = str(file_values[setting.key])
        raw[setting.key] = value if value not in (None, "") else setting.default
    return _validated(raw, Path(config_path) if config_path else None)


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as error:
        raise SettingsError(f"config file {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise SettingsError(f"config file {path}: not valid YAML: {error}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SettingsError(f"config file {path}: must be a mapping of setting names to values")
    known = {s.key for s in SETTINGS}
    normalised = {str(k).replace("-", "_"): v for k, v in data.items()}
    unknown = sorted(set(normalised) - known)
    if unknown:
        raise SettingsError(
            f"config file {path}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    return normalised


def _validated(raw: Mapping[str, str | None], config_file: Path | None) -> AgentSettings:
    def required(key: str) -> str:
        value = raw.get(key)
        if not value:
            setting = next(s for s in SETTINGS if s.key == key)
            raise SettingsError(f"{setting.flag} (or {setting.env}) is required")
        return value

    pins = [k for k in ("tag", "commit") if raw.get(k)]
    if len(pins) > 1:
        raise SettingsError("give at most one of --tag and --commit")
    try:
        interval = float(raw["interval"] or 60)
    except ValueError:
        raise SettingsError(f"--interval must be a number of seconds, not {raw['interval']!r}") from None
    if interval <= 0:
        raise SettingsError("--interval must be positive")
    hub_token = None
    if raw.get("hub_token_file"):
        hub_token = _read_secret_file(Path(str(raw["hub_token_file"])), "--hub-token-file")
    credentials, chart_access = (
        _read_credentials(Path(str(raw["credentials_file"])))
        if raw.get("credentials_file")
        else (Credentials(), {})
    )
    return AgentSettings(
        repo_url=required("repo_url"),
        cluster=required("cluster"),
        state_dir=Path(required("state_dir")),
        branch=None if pins else (raw.get("branch") or "main"),
        tag=raw.get("tag"),
        commit=raw.get("commit"),
        path=raw.get("path") or ".",
        credentials=credentials,
        chart_access=chart_access,
        interval=interval,
        kubeconfig=Path(str(raw["kubeconfig"])) if raw.get("kubeconfig") else None,
        hub_url=raw.get("hub_url"),
        hub_token=hub_token,
        helm=raw.get("helm") or "helm",
        config_file=config_file,
        lease_namespace=raw.get("lease_namespace") or None,
        namespaces=_namespaces(raw.get("namespaces")),
        signatures=signature_policy(raw.get("verify_signatures"), raw.get("trusted_keys")),
        sops_key_secret=_secret_reference(raw.get("sops_key_secret")),
        sops=raw.get("sops") or "sops",
    )


def _namespaces(raw: str | None) -> tuple[str, ...] | None:
    if not raw:
        return None
    names = tuple(sorted({n.strip() for n in raw.split(",") if n.strip()}))
    bad = [n for n in names if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", n)]
    if not names:
        raise SettingsError(f"--namespaces: {raw!r} names no namespace")
    if bad:
        raise SettingsError(
            f"--namespaces: {', '.join(bad)} is not a namespace name (lower-case letters, digits and '-')"
        )
    return names


SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def _secret_reference(value: str | None) -> str | None:
    """``namespace/name``; a bare name is in the agent's own namespace (from its service account)."""
    if not value:
        return None
    namespace, _, name = value.strip().rpartition("/")
    if not namespace:
        try:
            namespace = SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
        except OSError:
            raise SettingsError(
                f"--sops-key-secret {value!r}: give it as NAMESPACE/NAME outside a pod"
            ) from None
    if not name or "/" in namespace:
        raise SettingsError(f"--sops-key-secret {value!r} must be NAME or NAMESPACE/NAME")
    return f"{namespace}/{name}"


def signature_policy(mode: str | None, trusted_keys: str | None) -> SignaturePolicy:
    """The verification settings, checked now: a bad mode or an unusable keys file stops startup."""
    mode = (mode or "off").strip().lower()
    if mode not in ("off", "ssh", "gpg"):
        raise SettingsError(f"--verify-signatures must be ssh, gpg or off, not {mode!r}")
    if mode == "off":
        return SignaturePolicy()
    if not trusted_keys:
        raise SettingsError(f"--verify-signatures {mode} needs --trusted-keys (or FLOTILLA_TRUSTED_KEYS)")
    policy = SignaturePolicy(mode, Path(trusted_keys))  # type: ignore[arg-type]
    try:
        policy.read_keys()
    except SignatureError as error:
        raise SettingsError(f"--trusted-keys: {error}") from None
    return policy


def _read_secret_file(path: Path, flag: str) -> str:
    try:
        value = path.read_text().strip()
    except OSError as error:
        raise SettingsError(f"{flag} {path}: {error.strerror}") from None
    if not value:
        raise SettingsError(f"{flag} {path}: the file is empty")
    return value


def _read_credentials(path: Path) -> tuple[Credentials, dict[str, ChartAccess]]:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as error:
        raise SettingsError(f"--credentials-file {path}: {error.strerror}") from None
    except yaml.YAMLError:
        raise SettingsError(f"--credentials-file {path}: not valid YAML") from None  # never echo its content
    if not isinstance(data, dict):
        raise SettingsError(f"--credentials-file {path}: must be a mapping")
    allowed = {"username", "password", "token", "ssh_key_file", "known_hosts_file", "chart_registries"}
    unknown = sorted(set(map(str, data)) - allowed)
    if unknown:
        raise SettingsError(f"--credentials-file {path}: unknown key(s) {', '.join(unknown)}")
    if data.get("password") and not data.get("username"):
        raise SettingsError(f"--credentials-file {path}: password given without username")
    charts = _chart_access(path, data.get("chart_registries") or {})
    if data.get("token"):
        token = Credentials.token(str(data["token"]), username=str(data.get("username") or "x-access-token"))
        return token, charts
    git = Credentials(
        username=_opt_str(data.get("username")),
        password=_opt_str(data.get("password")),
        ssh_key=Path(str(data["ssh_key_file"])) if data.get("ssh_key_file") else None,
        known_hosts=Path(str(data["known_hosts_file"])) if data.get("known_hosts_file") else None,
    )
    return git, charts


def _chart_access(path: Path, entries: object) -> dict[str, ChartAccess]:
    """``chart_registries``: chart hosts (``host[:port]``) and how to log in to each."""
    where = f"--credentials-file {path}: chart_registries"
    if not isinstance(entries, dict):
        raise SettingsError(f"{where} must map registry hosts to {{username, password, plain_http, ca_file}}")
    access = {}
    for host, entry in entries.items():
        if not isinstance(entry, dict) or set(map(str, entry)) - {
            "username",
            "password",
            "plain_http",
            "ca_file",
        }:
            raise SettingsError(
                f"{where}.{host}: only username, password, plain_http and ca_file are allowed"
            )
        if bool(entry.get("username")) != bool(entry.get("password")):
            raise SettingsError(f"{where}.{host}: give both username and password, or neither")
        if "://" in str(host) or "/" in str(host):
            raise SettingsError(f"{where}: {host!r} must be a host[:port], not a URL")
        access[str(host)] = ChartAccess(
            username=_opt_str(entry.get("username")),
            password=_opt_str(entry.get("password")),
            plain_http=entry.get("plain_http") is True,
            ca_file=Path(str(entry["ca_file"])) if entry.get("ca_file") else None,
        )
    return access


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)
