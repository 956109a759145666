"""Agent configuration: flags over environment over config file, and errors that name the setting."""

from __future__ import annotations

import argparse

import pytest

from agent.settings import SettingsError, load_settings
from agent.settings_table import add_settings_arguments


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_settings_arguments(parser)
    return parser.parse_args(argv)


def test_flags_override_environment_which_overrides_the_config_file(tmp_path):
    config = tmp_path / "agent.yaml"
    config.write_text(
        "repo_url: https://git.example/fleet.git\ncluster: from-file\ninterval: 30\nbranch: stable\n"
    )
    settings = load_settings(
        parse("--config", str(config), "--cluster", "from-flag"),
        environ={"FLOTILLA_INTERVAL": "45", "FLOTILLA_CLUSTER": "from-env"},
    )
    assert settings.cluster == "from-flag"
    assert settings.interval == 45.0
    assert settings.branch == "stable"
    assert settings.repo_url == "https://git.example/fleet.git"
    assert settings.state_dir.as_posix() == "/var/lib/flotilla"


def test_a_pin_by_tag_replaces_the_default_branch():
    settings = load_settings(parse("--repo-url", "/srv/fleet", "--cluster", "a", "--tag", "v1"), environ={})
    assert (settings.branch, settings.tag) == (None, "v1")
    assert settings.is_local_source


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        pytest.param(
            ("--cluster", "a"), {}, "--repo-url (or FLOTILLA_REPO_URL) is required", id="missing repo"
        ),
        pytest.param(
            ("--repo-url", "x"), {}, "--cluster (or FLOTILLA_CLUSTER) is required", id="missing cluster"
        ),
        pytest.param(
            ("--repo-url", "x", "--cluster", "a", "--interval", "soon"),
            {},
            "--interval must be a number",
            id="bad interval",
        ),
        pytest.param(
            ("--repo-url", "x", "--cluster", "a", "--tag", "v1", "--commit", "abc"),
            {},
            "at most one",
            id="two pins",
        ),
    ],
)
def test_invalid_settings_name_the_setting(argv, environ, message):
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_settings(parse(*argv), environ=environ)


def test_config_file_with_an_unknown_key_is_refused_with_the_file_and_key(tmp_path):
    config = tmp_path / "agent.yaml"
    config.write_text("repo_url: x\nclustr: a\n")
    with pytest.raises(SettingsError, match=r"agent.yaml: unknown setting\(s\) clustr"):
        load_settings(parse("--config", str(config)), environ={})


def test_credentials_are_read_from_their_file_and_never_shown(tmp_path):
    credentials = tmp_path / "git.yaml"
    credentials.write_text("username: robot\npassword: hunter2-secret\n")
    token = tmp_path / "hub-token"
    token.write_text("hub-secret-token\n")
    settings = load_settings(
        parse(
            "--repo-url", "https://robot:inline-secret@git.example/fleet.git", "--cluster", "a",
            "--credentials-file", str(credentials), "--hub-token-file", str(token),
        ),
        environ={},
    )  # fmt: skip
    assert settings.credentials.password == "hunter2-secret"
    assert settings.hub_token == "hub-secret-token"
    shown = repr(settings)
    for secret in ("hunter2-secret", "hub-secret-token", "inline-secret"):
        assert secret not in shown


def test_namespaces_and_lease_namespace_settings():
    settings = load_settings(
        parse("--repo-url", "r", "--cluster", "c", "--namespaces", "shop, cache,shop"),
        environ={"FLOTILLA_LEASE_NAMESPACE": "flotilla-system"},
    )
    assert settings.namespaces == ("cache", "shop")
    assert settings.lease_namespace == "flotilla-system"
    assert load_settings(parse("--repo-url", "r", "--cluster", "c"), environ={}).namespaces is None
    with pytest.raises(SettingsError, match="--namespaces: Bad_NS"):
        load_settings(parse("--repo-url", "r", "--cluster", "c", "--namespaces", "ok,Bad_NS"), environ={})


def test_the_lease_lives_in_the_pods_namespace_in_cluster_else_in_default(tmp_path, monkeypatch):
    from agent import loop

    settings = load_settings(parse("--repo-url", "r", "--cluster", "c"), environ={})
    namespace_file = tmp_path / "namespace"
    namespace_file.write_text("edge-agent\n")
    monkeypatch.setattr(loop, "SERVICE_ACCOUNT_NAMESPACE", namespace_file)
    assert loop._lease_namespace(settings) == "edge-agent"
    with_kubeconfig = load_settings(
        parse("--repo-url", "r", "--cluster", "c", "--kubeconfig", "k"), environ={}
    )
    assert loop._lease_namespace(with_kubeconfig) == "default"
