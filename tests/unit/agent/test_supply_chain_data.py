"""Pure parts of the supply-chain features: the signature fields of the report and the contract's
bounds on them, the SOPS leaf substitution that keeps the plan's merge order, the redaction of
``plan`` output, and the detection of SOPS documents."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from agent import report
from agent.commands import print_report
from agent.fleet.output import REDACTED, redact_encrypted
from agent.fleet.parsing import is_sops_document
from agent.reconcile import PassOutcome
from agent.signatures import Verdict
from agent.sops import _pair, _substitute, hide
from hub import contract

REFUSED = Verdict("b" * 40, False, "ssh", None, "SHA256:abc", "signed by a key that is not trusted")


def build(verdict: Verdict | None) -> contract.StatusReport:
    return report.build(
        PassOutcome(cluster="edge-1", commit="a" * 40, source_error=verdict.describe() if verdict else None),
        sequence=1,
        source_url="https://git.example/fleet.git",
        ref="branch main",
        interval_seconds=60,
        signature=verdict,
    )


def test_a_refusal_is_in_the_report_and_survives_the_hubs_parser() -> None:
    built = build(REFUSED)
    parsed = contract.parse_report(built.to_json())
    assert parsed.source.signature == "refused"
    assert parsed.source.signature_commit == f"commit {'b' * 12}"
    assert parsed.source.signature_signer == "unknown (key SHA256:abc)"
    assert parsed.source.signature_reason == "signed by a key that is not trusted"
    assert "b" * 12 in (parsed.source.error or "")
    assert "signature" not in contract.to_v1_dict(parsed)["source"]


def test_verification_off_leaves_the_fields_out_and_the_table_unchanged() -> None:
    built = build(None)
    assert built.source.signature is None
    out = io.StringIO()
    print_report(built, out)
    assert "signature" not in out.getvalue()


def test_the_agents_table_shows_the_refusal() -> None:
    out = io.StringIO()
    print_report(build(REFUSED), out)
    assert (
        "signature: commit bbbbbbbbbbbb refused, signer unknown (key SHA256:abc): signed by a key"
        in out.getvalue()
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [("signature", "maybe"), ("signature_signer", "x" * (contract.MAX_SHORT + 1)), ("signature_reason", 5)],
)
def test_the_hub_bounds_the_signature_fields(field: str, value: Any) -> None:
    data = build(REFUSED).to_json_dict()
    data["source"][field] = value
    with pytest.raises(contract.ContractError, match=field):
        contract.parse_report(data)


def test_ciphertext_leaves_are_replaced_in_place_and_later_layers_still_win() -> None:
    password, port = "ENC[AES256_GCM,data:aa,type:str]", "ENC[AES256_GCM,data:bb,type:int]"
    cipher = {"db": {"password": password, "port": port}, "list": ["ENC[AES256_GCM,data:cc,type:str]"]}
    plain = {"db": {"password": "hunter2", "port": 5432}, "list": ["x"]}
    mapping: dict[str, Any] = {}
    _pair(cipher, plain, mapping)
    merged = {"db": {"password": password, "port": 6000}, "list": cipher["list"]}
    assert _substitute(merged, mapping) == {"db": {"password": "hunter2", "port": 6000}, "list": ["x"]}


def test_hide_scrubs_decrypted_values_from_messages() -> None:
    assert hide("render failed: password hunter2 is bad", ["hunter2"]) == "render failed: password *** is bad"


def test_plan_redaction_shows_only_that_a_value_is_encrypted() -> None:
    values = {"a": "ENC[AES256_GCM,data:Zm9v,iv:x,tag:y,type:str]", "b": ["ENC[AES256_GCM,data:x,type:int]"],
              "c": "ENC[not sops", "d": 3}  # fmt: skip
    assert redact_encrypted(values) == {"a": REDACTED, "b": [REDACTED], "c": "ENC[not sops", "d": 3}


def test_a_sops_document_is_recognised_by_its_metadata() -> None:
    assert is_sops_document({"x": 1, "sops": {"mac": "ENC[...]", "age": []}})
    assert not is_sops_document({"sops": "a value named sops"})
    assert not is_sops_document({"sops": {"version": "3"}})


def test_chart_registry_credentials_are_read_from_the_credentials_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from agent.helm import ChartAccess
    from agent.settings import _read_credentials

    path = tmp_path / "credentials.yaml"
    path.write_text(
        "token: t0k3n\nchart_registries:\n"
        "  registry.example.com: {username: u, password: s3cret, ca_file: /etc/ca.pem}\n"
        "  127.0.0.1:5000: {plain_http: true}\n"
    )
    git, charts = _read_credentials(path)
    assert git.password == "t0k3n"
    assert charts["registry.example.com"] == ChartAccess("u", "s3cret", False, Path("/etc/ca.pem"))
    assert charts["127.0.0.1:5000"].plain_http
    assert "s3cret" not in repr(charts)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{'oci://r.example.com': {username: u, password: p}}", "must be a host"),
        ("{r.example.com: {username: u}}", "both username and password"),
        ("{r.example.com: {user: u}}", "only username, password"),
        ("[r.example.com]", "must map registry hosts"),
    ],
)
def test_bad_chart_registry_entries_name_the_file_and_the_entry(tmp_path, entry: str, message: str) -> None:  # type: ignore[no-untyped-def]
    from agent.settings import SettingsError, _read_credentials

    path = tmp_path / "credentials.yaml"
    path.write_text(f"chart_registries: {entry}\n")
    with pytest.raises(SettingsError, match=message) as raised:
        _read_credentials(path)
    assert str(path) in str(raised.value)
    assert "chart_registries" in str(raised.value)


def test_oci_credentials_live_in_a_private_file_only_while_helm_runs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from agent.helm import ChartAccess, ChartRef, Helm, chart_host

    chart = ChartRef("oci://r.example.com:5000/charts/app", version="1.0.0")
    assert chart_host(chart) == "r.example.com:5000"
    assert (
        chart_host(ChartRef("app", repo_url="https://u:p@charts.example.org/stable")) == "charts.example.org"
    )
    helm = Helm(
        "helm", None, tmp_path / "helm", access={"r.example.com:5000": ChartAccess("u", "s3cret", True)}
    )
    with helm._chart_access(chart) as args:
        config = Path(args[args.index("--registry-config") + 1])
        assert "--plain-http" in args
        assert "s3cret" not in " ".join(args)
        assert config.stat().st_mode & 0o077 == 0
        assert not config.is_relative_to(tmp_path)  # not in the state directory
    assert not config.exists()
    with helm._chart_access(ChartRef("oci://other.example.com/app")) as args:
        assert args == ["oci://other.example.com/app"]  # no access configured: the chart alone
