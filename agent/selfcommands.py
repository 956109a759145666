"""``flotilla-agent ready`` (the pod's readiness probe) and ``bootstrap`` (install and self-manage)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from agent import readiness


def add_self_commands(subparsers: Any) -> None:
    ready = subparsers.add_parser(
        "ready",
        help="exit 0 when this pod's agent has completed a reconcile pass (the readiness probe)",
        description="The readiness probe: 0 once the agent running in this pod completed a full pass.",
    )
    ready.add_argument("--state-dir", help="state directory (env FLOTILLA_STATE_DIR)")
    ready.set_defaults(handler=_ready)
    from agent.bootstrap import add_bootstrap_command

    add_bootstrap_command(subparsers)


def _ready(args: argparse.Namespace) -> int:
    state_dir = Path(args.state_dir or os.environ.get("FLOTILLA_STATE_DIR") or "/var/lib/flotilla")
    ok, why = readiness.check(state_dir)
    print(f"{'ready' if ok else 'not ready'}: {why}", file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1
