"""Where and how big the agent's pod is: resources, nodeSelector and tolerations (pure).

Shared by ``flotilla-agent manifests`` (command-line flags) and the Helm chart's values
(:mod:`agent.chart`), so both describe the pod the same way.  Every flag value is checked here and
rejected with a message naming it, before anything is rendered.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from typing import Any

Manifest = dict[str, Any]

_CPU = re.compile(r"^[0-9]+(\.[0-9]+)?m?$")
_MEMORY = re.compile(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
# A label key: optional DNS-subdomain prefix and "/", then a name of at most 63 characters.
_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


@dataclass(frozen=True)
class Resources:
    cpu_request: str = "50m"
    memory_request: str = "96Mi"
    cpu_limit: str = "500m"
    memory_limit: str = "256Mi"

    def manifest(self) -> Manifest:
        return {
            "requests": {"cpu": self.cpu_request, "memory": self.memory_request},
            "limits": {"cpu": self.cpu_limit, "memory": self.memory_limit},
        }


DEFAULT_RESOURCES = Resources()


def cpu_quantity(value: str) -> str:
    if not _CPU.match(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a CPU quantity (like 50m or 0.5)")
    return value


def memory_quantity(value: str) -> str:
    if not _MEMORY.match(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a memory quantity (like 96Mi)")
    return value


def _label_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not _LABEL_KEY.match(key) or len(key) > 316 or not _LABEL_VALUE.match(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a label KEY=VALUE")
    return key, value


def node_selector(value: str) -> tuple[tuple[str, str], ...]:
    """``--node-selector kubernetes.io/arch=arm64[,KEY=VALUE...]``."""
    pairs = [_label_pair(part.strip()) for part in value.split(",") if part.strip()]
    if not pairs:
        raise argparse.ArgumentTypeError(f"{value!r} is not a list of KEY=VALUE labels")
    return tuple(dict(pairs).items())


def toleration(value: str) -> Manifest:
    """``--toleration KEY[=VALUE]:EFFECT``: ``Equal`` with a value, ``Exists`` without."""
    pair, sep, effect = value.rpartition(":")
    if not sep or effect not in EFFECTS:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not KEY[=VALUE]:EFFECT with EFFECT one of {', '.join(EFFECTS)}"
        )
    if "=" in pair:
        key, tolerated = _label_pair(pair)
        return {"key": key, "operator": "Equal", "value": tolerated, "effect": effect}
    if not _LABEL_KEY.match(pair):
        raise argparse.ArgumentTypeError(f"{pair!r} in {value!r} is not a taint key")
    return {"key": pair, "operator": "Exists", "effect": effect}


def add_placement_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = DEFAULT_RESOURCES
    parser.add_argument("--cpu-request", type=cpu_quantity, default=defaults.cpu_request)
    parser.add_argument("--memory-request", type=memory_quantity, default=defaults.memory_request)
    parser.add_argument("--cpu-limit", type=cpu_quantity, default=defaults.cpu_limit)
    parser.add_argument("--memory-limit", type=memory_quantity, default=defaults.memory_limit)
    parser.add_argument(
        "--node-selector",
        type=node_selector,
        default=(),
        metavar="KEY=VALUE[,...]",
        help="schedule the agent only on nodes with these labels (e.g. kubernetes.io/arch=arm64)",
    )
    parser.add_argument(
        "--toleration",
        type=toleration,
        action="append",
        default=[],
        metavar="KEY[=VALUE]:EFFECT",
        help="tolerate a node taint (repeatable), e.g. edge=arm:NoSchedule",
    )


def resources_from_args(args: argparse.Namespace) -> Resources:
    return Resources(args.cpu_request, args.memory_request, args.cpu_limit, args.memory_limit)
