"""``flotilla-agent validate --verify-signatures``: the agent's signature check on a local clone (CI)."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from agent.logs import configure_logging
from agent.settings import SettingsError, signature_policy
from agent.source import SourceError, verify_clone


def verify(
    path: str, mode: str, trusted_keys: str | None, tag: str | None, *, stdout: TextIO, stderr: TextIO
) -> int:
    """0 when the clone's HEAD (or ``tag``) is signed by a trusted key, 1 when not, 2 for bad settings."""
    configure_logging("warning")  # the verdict is printed; the agent's info events would be noise
    try:
        policy = signature_policy(mode, trusted_keys)
    except SettingsError as error:
        print(f"flotilla-agent: {error}", file=stderr)
        return 2
    try:
        verdict = verify_clone(Path(path), policy, tag=tag)
    except SourceError as error:
        print(f"{path}: {error}", file=stderr)
        return 1
    print(f"{path}: {verdict.describe()}", file=stdout if verdict.accepted else stderr)
    return 0 if verdict.accepted else 1
