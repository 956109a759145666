"""Signature verdicts from git's ``--raw`` output (recorded from real git 2.39 runs), the trust
policy's checks on its keys file, and the verification settings."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from agent.settings import SettingsError, load_settings
from agent.settings_table import add_settings_arguments
from agent.signatures import SignatureError, SignaturePolicy, Verdict, judge

COMMIT = "a" * 40
SSH_GOOD = 'Good "git" signature for alice@example.com with ED25519 key SHA256:bztIWf53YnliprKqB0V\n'
SSH_UNKNOWN = 'Good "git" signature with ED25519 key SHA256:Z0rIPAnOn/oK5NE\nNo principal matched.\n'
GPG_GOOD = (
    "[GNUPG:] NEWSIG carol@example.com\n"
    "[GNUPG:] GOODSIG B22BBD121233F8FD Carol <carol@example.com>\n"
    "[GNUPG:] VALIDSIG ECB2D066548F3914145D10C0B22BBD121233F8FD 2026-12-01 1796166144 0 4 0 22 8 00 X\n"
)
GPG_UNKNOWN = (
    "[GNUPG:] NEWSIG\n[GNUPG:] ERRSIG B22BBD121233F8FD 22 8 00 1796166144 9 -\n"
    "[GNUPG:] NO_PUBKEY B22BBD121233F8FD\n"
)


def test_a_good_ssh_signature_names_the_principal_and_key() -> None:
    verdict = judge(SSH_GOOD, 0, mode="ssh", commit=COMMIT)
    assert verdict.accepted
    assert (verdict.signer, verdict.key) == ("alice@example.com", "SHA256:bztIWf53YnliprKqB0V")
    assert verdict.describe().startswith(f"commit {COMMIT[:12]} signed by alice@example.com")


@pytest.mark.parametrize(
    ("raw", "status", "mode", "reason"),
    [
        ("", 1, "ssh", "not signed"),
        (SSH_UNKNOWN, 1, "ssh", "signed by a key that is not trusted"),
        (GPG_UNKNOWN, 1, "gpg", "signed by a key that is not trusted"),
        ("[GNUPG:] EXPKEYSIG B22BBD121233F8FD Carol\n", 1, "gpg", "signed by an expired key"),
        ("[GNUPG:] REVKEYSIG B22BBD121233F8FD Carol\n", 1, "gpg", "signed by a revoked key"),
        ("[GNUPG:] BADSIG B22BBD121233F8FD Carol\n", 1, "gpg", "bad signature"),
        (SSH_GOOD, 0, "gpg", "wrong format"),
        (GPG_GOOD, 0, "ssh", "wrong format"),
        (SSH_GOOD, 1, "ssh", "signature not accepted"),  # git said no: never accepted on output alone
    ],
)
def test_refusals_say_why(raw: str, status: int, mode: str, reason: str) -> None:
    verdict = judge(raw, status, mode=mode, commit=COMMIT)
    assert not verdict.accepted
    assert reason in verdict.reason
    assert "refused" in verdict.describe()


def test_the_untrusted_key_is_named_in_a_refusal() -> None:
    assert judge(SSH_UNKNOWN, 1, mode="ssh", commit=COMMIT).key == "SHA256:Z0rIPAnOn/oK5NE"
    assert judge(GPG_UNKNOWN, 1, mode="gpg", commit=COMMIT).key == "B22BBD121233F8FD"


def test_a_good_gpg_signature_names_the_user_id_and_fingerprint() -> None:
    verdict = judge(GPG_GOOD, 0, mode="gpg", commit=COMMIT, tag="v1")
    assert verdict.accepted
    assert verdict.signer == "Carol <carol@example.com>"
    assert verdict.key == "ECB2D066548F3914145D10C0B22BBD121233F8FD"
    assert verdict.subject == f"tag v1 ({COMMIT[:12]})"


def test_signer_text_is_bounded_and_has_no_control_characters() -> None:
    hostile = f'Good "git" signature for {"x" * 5000}\x1b[31m with ED25519 key SHA256:k\n'
    verdict = judge(hostile, 0, mode="ssh", commit=COMMIT)
    assert verdict.signer is not None
    assert len(verdict.signer) <= 200
    assert "\x1b" not in verdict.signer


def test_a_verdict_survives_the_state_file_round_trip() -> None:
    verdict = judge(SSH_UNKNOWN, 1, mode="ssh", commit=COMMIT, tag="v2")
    assert Verdict.from_record(verdict.to_record()) == verdict
    assert Verdict.from_record({"commit": 5}) is None


def test_the_policy_refuses_unusable_keys_files(tmp_path: Path) -> None:
    with pytest.raises(SignatureError, match="needs a trusted keys file"):
        SignaturePolicy("ssh")
    comments = tmp_path / "allowed_signers"
    comments.write_text("# nobody\n\n")
    with pytest.raises(SignatureError, match="no allowed signers"):
        SignaturePolicy("ssh", comments).read_keys()
    with pytest.raises(SignatureError, match="not an armored OpenPGP public keyring"):
        SignaturePolicy("gpg", comments).read_keys()
    with pytest.raises(SignatureError, match="No such file"):
        SignaturePolicy("ssh", tmp_path / "missing").read_keys()
    huge = tmp_path / "huge"
    huge.write_bytes(b"a" * (1024 * 1024 + 1))
    with pytest.raises(SignatureError, match="larger than"):
        SignaturePolicy("ssh", huge).read_keys()


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_settings_arguments(parser)
    return parser.parse_args(["--repo-url", "/srv/fleet", "--cluster", "a", *argv])


def test_verification_settings_come_from_flags_or_environment(tmp_path: Path) -> None:
    signers = tmp_path / "allowed_signers"
    signers.write_text("alice@example.com ssh-ed25519 AAAA\n")
    from_env = load_settings(
        parse(), environ={"FLOTILLA_VERIFY_SIGNATURES": "SSH", "FLOTILLA_TRUSTED_KEYS": str(signers)}
    )
    assert from_env.signatures == SignaturePolicy("ssh", signers)
    assert load_settings(parse(), environ={}).signatures.mode == "off"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--verify-signatures", "x509"], "--verify-signatures must be ssh, gpg or off"),
        (["--verify-signatures", "gpg"], "needs --trusted-keys"),
        (["--verify-signatures", "ssh", "--trusted-keys", "/nonexistent/keys"], "--trusted-keys"),
    ],
)
def test_bad_verification_settings_stop_startup_naming_the_setting(argv: list[str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(parse(*argv), environ={})
