"""SOPS-encrypted values files, decrypted at the edge with this site's age key.  The only module
that runs ``sops``.

Why the ``sops`` binary (pinned, built from the Go module proxy and shipped in the image): it *is*
the format's reference implementation — every cipher suite, key group and Shamir threshold, the
MAC over the whole tree (a tampered file fails), ``encrypted_regex``/``unencrypted_suffix``
partial encryption.  No maintained Python library covers that; a partial re-implementation of a
crypto file format is the wrong place to save 20 MB.

How the secrets stay secret:
- The plan never decrypts: a release's merged values carry the ciphertext (``ENC[...]`` leaves),
  its digest is over the ciphertext, and ``flotilla-agent plan`` prints ``<encrypted>``.
- Decryption happens only when a release is installed or upgraded (a pass that changes nothing
  decrypts nothing).  ``sops`` reads the encrypted file from the checkout and writes the plaintext
  to a pipe; the age key goes to it in its environment (``SOPS_AGE_KEY``), read from a Secret in
  the cluster for each use, never written anywhere.  The plaintext values reach helm on its stdin.
- Each ciphertext leaf in the merged values is replaced by its plaintext: the merge order of the
  plan is kept exactly (a later layer that overrode an encrypted key still wins).
- Error messages name the file and the reason, never a value; :func:`hide` scrubs the decrypted
  strings out of any helm error before it is logged or reported.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from agent.kube import Kube, KubeError

AGE_KEY_FIELD: Final = "age.agekey"
MAX_OUTPUT_BYTES: Final = 16 * 1024 * 1024
_MIN_HIDDEN_LENGTH = 4  # shorter strings ("true", "1") would blank out ordinary words


class SopsError(Exception):
    """A values file cannot be decrypted here; the message names the file and why (no values)."""


@dataclass
class Decryptor:
    """Decrypts with the age key(s) that ``read_key`` returns (None: the key is not there)."""

    read_key: Callable[[], str | None]
    key_source: str  # where the key lives, for messages: "Secret flotilla-system/site-age"
    binary: str = "sops"
    timeout_seconds: float = 60.0
    decryptions: int = 0  # files decrypted: the benchmark and tests read it

    def decrypt(self, path: Path, shown_as: str) -> Any:
        """The plaintext tree of the SOPS file at ``path`` (``shown_as`` is its repo path)."""
        key = self.read_key()
        if not key or "AGE-SECRET-KEY-" not in key:
            raise SopsError(
                f"cannot decrypt {shown_as}: this site has no age key ({self.key_source} is missing)"
            )
        self.decryptions += 1
        with tempfile.TemporaryDirectory(prefix="flotilla-sops-") as empty:
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HOME": empty,  # no key file, keyring or config of the agent's user is looked at
                "XDG_CONFIG_HOME": empty,
                "GNUPGHOME": empty,
                "SOPS_AGE_KEY": key,
            }
            try:
                result = subprocess.run(
                    [self.binary, "decrypt", "--output-type", "json", str(path)],
                    env=env,
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    timeout=self.timeout_seconds,
                    check=False,
                )
            except FileNotFoundError:
                raise SopsError(
                    f"cannot decrypt {shown_as}: the sops binary {self.binary!r} is not installed"
                ) from None
            except subprocess.TimeoutExpired:
                raise SopsError(
                    f"cannot decrypt {shown_as}: sops did not finish in {self.timeout_seconds:.0f}s"
                ) from None
        if result.returncode != 0:
            reason = _explain(result.stderr.decode(errors="replace"), self.key_source)
            raise SopsError(f"cannot decrypt {shown_as}: {reason}")
        if len(result.stdout) > MAX_OUTPUT_BYTES:
            raise SopsError(
                f"cannot decrypt {shown_as}: the decrypted file is larger than {MAX_OUTPUT_BYTES} bytes"
            )
        try:
            return json.loads(result.stdout)
        except ValueError:
            raise SopsError(f"cannot decrypt {shown_as}: sops did not return a values tree") from None


def from_secret(kube: Kube, secret: str, binary: str = "sops") -> Decryptor:
    """A decryptor reading the age key from ``secret`` ("namespace/name", key ``age.agekey``)."""
    namespace, _, name = secret.rpartition("/")
    source = f"Secret {namespace}/{name} key {AGE_KEY_FIELD}"

    def read_key() -> str | None:
        try:
            return kube.read_value("Secret", namespace, name, AGE_KEY_FIELD)
        except KubeError as error:
            raise SopsError(f"cannot read this site's age key: {error}") from None

    return Decryptor(read_key=read_key, key_source=source, binary=binary)


def _explain(stderr: str, key_source: str) -> str:
    lowered = stderr.lower()
    if "mac mismatch" in lowered:
        return "the file was changed after it was encrypted (MAC mismatch)"
    if "failed to get the data key" in lowered or "no identity matched" in lowered:
        return f"this site's age key ({key_source}) is not one of the file's recipients"
    if "failed to parse" in lowered or "error unmarshalling" in lowered or "invalid" in lowered:
        return "the age key or the file is malformed"
    lines = [line.strip() for line in stderr.splitlines() if line.strip() and "AGE-SECRET-KEY" not in line]
    return (lines[-1] if lines else "sops failed")[:300]


def reveal(
    decryptor: Decryptor | None, values: Mapping[str, Any], files: Iterable[str], repo_root: Path
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """``values`` with the ciphertext leaves of ``files`` decrypted, and the plaintext strings
    (for :func:`hide`).  Raises :class:`SopsError` naming the file when one cannot be decrypted."""
    files = tuple(files)
    if not files:
        return dict(values), ()
    if decryptor is None:
        raise SopsError(
            f"{files[0]} is SOPS-encrypted but this agent has no age key configured "
            "(set --sops-key-secret to the Secret holding the site's age key)"
        )
    plaintext: dict[str, Any] = {}
    for relative in files:
        path = repo_root / relative
        try:
            cipher = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
            raise SopsError(f"cannot read {relative}: {error}") from None
        _pair(cipher, decryptor.decrypt(path, relative), plaintext)
    revealed = _substitute(values, plaintext)
    hidden = {str(v) for v in _leaves(plaintext.values()) if len(str(v)) >= _MIN_HIDDEN_LENGTH}
    return revealed, tuple(sorted(hidden, key=len, reverse=True))


def hide(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every decrypted value replaced by ``***``."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def _pair(cipher: Any, plain: Any, out: dict[str, Any]) -> None:
    """Map each ``ENC[...]`` leaf of the ciphertext tree to the plaintext at the same place."""
    if isinstance(cipher, dict) and isinstance(plain, dict):
        for key, value in cipher.items():
            if key != "sops" and key in plain:
                _pair(value, plain[key], out)
    elif isinstance(cipher, list) and isinstance(plain, list) and len(cipher) == len(plain):
        for c, p in zip(cipher, plain, strict=True):
            _pair(c, p, out)
    elif isinstance(cipher, str) and cipher.startswith("ENC["):
        out[cipher] = plain


def _substitute(values: Any, plaintext: Mapping[str, Any]) -> Any:
    if isinstance(values, dict):
        return {key: _substitute(value, plaintext) for key, value in values.items()}
    if isinstance(values, list):
        return [_substitute(value, plaintext) for value in values]
    if isinstance(values, str) and values in plaintext:
        return plaintext[values]
    return values


def _leaves(values: Iterable[Any]) -> Iterable[Any]:
    for value in values:
        if isinstance(value, dict):
            yield from _leaves(value.values())
        elif isinstance(value, list):
            yield from _leaves(value)
        elif isinstance(value, str | int | float) and not isinstance(value, bool):
            yield value
