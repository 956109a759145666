"""Commit and tag signature verification: the trust policy, git's settings for it, and the verdict.

Git's own ``verify-commit`` / ``verify-tag`` do the cryptography; :mod:`agent.source` runs them
(through :mod:`agent.gitprocess`, the only module that starts git) with the settings and
environment built here:

- ``ssh``: ``gpg.format=ssh`` and ``gpg.ssh.allowedSignersFile`` = the trusted keys file, an SSH
  ``allowed_signers`` file (principals, ``valid-after``/``valid-before`` and ``namespaces`` honoured
  by ``ssh-keygen -Y verify``).
- ``gpg``: a private ``GNUPGHOME`` in the state directory holding only the armored public keyring
  from the trusted keys file, with ``trust-model always`` (the keyring *is* the trust list) and
  ``no-autostart`` (no gpg-agent daemon is left behind).  Expired and revoked keys still fail.

In each mode the other signature formats are switched off (their program is ``false``), so an
OpenPGP signature can never pass an SSH policy through some keyring git finds on its own.
An object is accepted only when git exits 0; the signer and key are read from ``--raw`` output,
which the signer controls, so they are bounded and stripped of control characters.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

Mode = Literal["off", "ssh", "gpg"]
MODES: Final = ("off", "ssh", "gpg")
MAX_TRUSTED_KEYS_BYTES: Final = 1024 * 1024
_MAX_FIELD = 200
_SSH_GOOD = re.compile(r'Good "git" signature for (?P<signer>.+?) with (?P<type>\S+) key (?P<key>\S+)')
_GPG_GOOD = re.compile(r"^\[GNUPG:\] GOODSIG (?P<keyid>[0-9A-F]+) (?P<signer>.*)$", re.M)
_GPG_VALID = re.compile(r"^\[GNUPG:\] VALIDSIG (?P<fpr>[0-9A-F]+)", re.M)
_GPG_STATUS = re.compile(r"^\[GNUPG:\] (?P<word>[A-Z_]+) ?(?P<rest>.*)$", re.M)


class SignatureError(ValueError):
    """The trust policy cannot be used (a missing or empty trusted keys file, no keys in it)."""


@dataclass(frozen=True)
class SignaturePolicy:
    """Which signatures the agent trusts: ``off``, or ``ssh``/``gpg`` with a trusted keys file."""

    mode: Mode = "off"
    trusted_keys: Path | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            choices = ", ".join(MODES)
            raise SignatureError(f"signature verification must be one of {choices}, not {self.mode!r}")
        if self.mode != "off" and self.trusted_keys is None:
            raise SignatureError(f"signature verification {self.mode} needs a trusted keys file")

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    def read_keys(self) -> bytes:
        """The trusted keys file's content, bounded; a clear error when it cannot be used."""
        assert self.trusted_keys is not None
        path = self.trusted_keys
        try:
            with path.open("rb") as stream:
                data = stream.read(MAX_TRUSTED_KEYS_BYTES + 1)
        except OSError as error:
            raise SignatureError(f"trusted keys file {path}: {error.strerror or error}") from None
        if len(data) > MAX_TRUSTED_KEYS_BYTES:
            raise SignatureError(f"trusted keys file {path}: larger than {MAX_TRUSTED_KEYS_BYTES} bytes")
        if self.mode == "ssh" and not any(
            line.strip() and not line.lstrip().startswith(b"#") for line in data.splitlines()
        ):
            raise SignatureError(f"trusted keys file {path}: no allowed signers in it")
        if self.mode == "gpg" and b"-----BEGIN PGP PUBLIC KEY BLOCK-----" not in data:
            raise SignatureError(f"trusted keys file {path}: not an armored OpenPGP public keyring")
        return data


@dataclass(frozen=True)
class Verdict:
    """The result of checking one commit (or tag) against the policy."""

    commit: str
    accepted: bool
    mode: str
    signer: str | None = None
    key: str | None = None
    reason: str = ""
    tag: str | None = None

    @property
    def subject(self) -> str:
        return f"tag {self.tag} ({self.commit[:12]})" if self.tag else f"commit {self.commit[:12]}"

    def describe(self) -> str:
        """One line for logs, the agent's table and the hub: commit, signer and reason."""
        by = f" by {self.signer}" if self.signer else ""
        key = f" (key {self.key})" if self.key else ""
        if self.accepted:
            return f"{self.subject} signed{by}{key}: trusted ({self.mode})"
        signed = f", signed{by}{key}" if self.signer or self.key else ""
        return f"{self.subject} refused{signed}: {self.reason} (signature verification: {self.mode})"

    def to_record(self) -> dict[str, str | bool | None]:
        return {
            "commit": self.commit,
            "accepted": self.accepted,
            "mode": self.mode,
            "signer": self.signer,
            "key": self.key,
            "reason": self.reason,
            "tag": self.tag,
        }

    @classmethod
    def from_record(cls, data: object) -> Verdict | None:
        if not isinstance(data, dict) or not isinstance(data.get("commit"), str):
            return None
        text = {k: (str(data[k]) if data.get(k) is not None else None) for k in ("signer", "key", "tag")}
        return cls(
            commit=str(data["commit"]),
            accepted=data.get("accepted") is True,
            mode=str(data.get("mode") or ""),
            signer=text["signer"],
            key=text["key"],
            reason=str(data.get("reason") or ""),
            tag=text["tag"],
        )


def _bounded(text: str | None) -> str | None:
    if not text:
        return None
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in text.strip())
    return cleaned[:_MAX_FIELD] or None


def judge(raw: str, status: int, *, mode: str, commit: str, tag: str | None = None) -> Verdict:
    """The verdict from ``git verify-commit --raw`` / ``verify-tag --raw`` (pure).

    Accepted only when git exited 0 *and* the output shows a good signature in the policy's format.
    """
    signer = key = None
    if mode == "ssh":
        good = _SSH_GOOD.search(raw)
        if good:
            signer, key = _bounded(good["signer"]), _bounded(good["key"])
        else:
            unknown = re.search(r'Good "git" signature with \S+ key (\S+)', raw)
            key = _bounded(unknown[1]) if unknown else None
    else:
        good_gpg = _GPG_GOOD.search(raw)
        valid = _GPG_VALID.search(raw)
        signer = _bounded(good_gpg["signer"]) if good_gpg else None
        key = _bounded(valid["fpr"] if valid else good_gpg["keyid"] if good_gpg else None)
    if status == 0 and signer is not None and key is not None:
        return Verdict(commit, True, mode, signer, key, "", tag)
    return Verdict(commit, False, mode, signer, key or _gpg_key(raw), _reason(raw, mode, tag), tag)


def _gpg_key(raw: str) -> str | None:
    for match in _GPG_STATUS.finditer(raw):
        if match["word"] in ("ERRSIG", "NO_PUBKEY", "EXPKEYSIG", "REVKEYSIG", "BADSIG"):
            return _bounded(match["rest"].split(" ", 1)[0])
    return None


def _reason(raw: str, mode: str, tag: str | None) -> str:
    words = {m["word"] for m in _GPG_STATUS.finditer(raw)}
    lowered = raw.lower()
    if "non-tag object" in lowered:
        return f"tag {tag} is a lightweight tag: it carries no signature (use an annotated, signed tag)"
    if ("[GNUPG:]" in raw and mode == "ssh") or ('Good "git" signature' in raw and mode == "gpg"):
        return f"signed with the wrong format for {mode} verification"
    if "EXPKEYSIG" in words:
        return "signed by an expired key"
    if "REVKEYSIG" in words:
        return "signed by a revoked key"
    if "BADSIG" in words or "signature verification failed" in lowered or "could not verify" in lowered:
        return "the signature does not match the content (bad signature)"
    if "NO_PUBKEY" in words or "ERRSIG" in words or "no principal matched" in lowered:
        return "signed by a key that is not trusted"
    if 'good "git" signature with' in lowered:
        return "signed by a key that is not trusted"
    if not raw.strip() or "no signature" in lowered:
        return "not signed"
    lines = [line for line in raw.splitlines() if line.strip()]
    return f"signature not accepted: {_bounded(lines[-1]) or 'unknown reason'}"


class TrustStore:
    """Git's settings and environment for verifying under a policy; GPG's keyring kept up to date.

    The trusted keys file is read again only when its size or modification time changed, so a
    pass that verifies nothing costs one ``stat``.
    """

    def __init__(self, policy: SignaturePolicy, home: Path) -> None:
        self.policy = policy
        self.home = home  # GNUPGHOME for gpg mode (public keys only)
        self._stamp: tuple[int, int, int] | None = None
        self._digest = ""

    def digest(self) -> str:
        """A fingerprint of the policy and the keys; a change re-checks what was accepted or refused."""
        if not self.policy.enabled:
            return "off"
        assert self.policy.trusted_keys is not None
        try:
            stat = self.policy.trusted_keys.stat()
            stamp = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        except OSError:
            stamp = None
        if stamp is None or stamp != self._stamp:
            data = self.policy.read_keys()
            self._digest = f"{self.policy.mode}:{hashlib.sha256(data).hexdigest()}"
            if self.policy.mode == "gpg":
                self._import(data)
            self._stamp = stamp
        return self._digest

    def git_config(self) -> list[tuple[str, str]]:
        """``-c`` settings for ``git verify-*``: only the policy's format can succeed."""
        if self.policy.mode == "ssh":
            return [
                ("gpg.format", "ssh"),
                ("gpg.ssh.allowedSignersFile", str(self.policy.trusted_keys)),
                ("gpg.openpgp.program", "false"),
                ("gpg.x509.program", "false"),
            ]
        return [
            ("gpg.format", "openpgp"),
            ("gpg.openpgp.program", "gpg"),
            ("gpg.ssh.program", "false"),
            ("gpg.ssh.allowedSignersFile", "/dev/null"),
            ("gpg.x509.program", "false"),
        ]

    def environment(self) -> dict[str, str]:
        return {"GNUPGHOME": str(self.home)}

    def _import(self, data: bytes) -> None:
        """A fresh keyring holding exactly the trusted keys (a removed key stops being trusted)."""
        staging = self.home.with_name(self.home.name + ".new")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(mode=0o700, parents=True)
        (staging / "gpg.conf").write_text("trust-model always\nno-autostart\n")
        try:
            result = _gpg(staging, "--quiet", "--import", stdin=data)
            listed = _gpg(staging, "--with-colons", "--list-keys")
        except (OSError, subprocess.TimeoutExpired) as error:
            raise SignatureError(f"cannot run gpg to import the trusted keys: {error}") from None
        if result.returncode != 0 or "\nfpr:" not in "\n" + listed.stdout.decode(errors="replace"):
            raise SignatureError(
                f"trusted keys file {self.policy.trusted_keys}: gpg imported no public keys from it"
            )
        shutil.rmtree(self.home, ignore_errors=True)
        staging.rename(self.home)


def _gpg(home: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )
