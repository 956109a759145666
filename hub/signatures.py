"""Error signatures: an error message with what varies between clusters stripped out, so that 1,387
clusters failing for one reason are one line on the errors page.

Pure functions, no I/O. Replaced, in this order: the cluster's own name, UUIDs, digests and commit
ids (hex runs with a digit), generated Kubernetes names (``web-7d4b9c8f6d-x2k9p``), IP addresses,
host names of three or more labels, quoted names, then every number (``2.4.1`` is one ``#``).
The original message is kept beside the signature as an example.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass

from hub.report_facts import ReportFacts

MAX_SIGNATURE = 200
MAX_EXAMPLE = 300
MAX_PROBLEMS = 4  # per cluster: the source error and the first failing bundles' messages

_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I), "<id>"),
    (re.compile(r"\b([a-z][a-z0-9-]*?)-[a-z0-9]{8,10}-[a-z0-9]{5}\b"), r"\1-<pod>"),
    (re.compile(r"\b(?:sha256|sha1|sha512):[0-9a-f]+", re.I), "<digest>"),
    (re.compile(r"\b(?=[0-9a-f]*[0-9])(?=[0-9a-f]*[a-f])[0-9a-f]{7,64}\b", re.I), "<hash>"),
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"), "<ip>"),
    (re.compile(r"\[[0-9a-f:]*:[0-9a-f:]+\](?::\d+)?", re.I), "<ip>"),
    (re.compile(r"\b[a-z][a-z0-9-]*(?:\.[a-z0-9-]+)+\.[a-z][a-z0-9-]*(?::\d+)?\b", re.I), "<host>"),
    (re.compile(r'"[^"\n]{1,200}"'), '"…"'),
    (re.compile(r"'[^'\n]{1,200}'"), "'…'"),
    (re.compile(r"\d+(?:\.\d+)*"), "#"),
    (re.compile(r"\s+"), " "),
)


CACHED_MESSAGE = 1024  # messages up to this length are remembered (an agent repeats its errors)


def normalise(message: str, cluster: str = "") -> str:
    """The signature of ``message``: its first line with names, hashes, addresses and numbers replaced."""
    if len(message) <= CACHED_MESSAGE:  # a message without the cluster's name is shared by clusters
        return _remembered(message, cluster if cluster and cluster in message else "")
    return _normalise(message, cluster)


@functools.lru_cache(maxsize=16384)  # at most 16k x 1 KiB: a failing fleet repeats the same few messages
def _remembered(message: str, cluster: str) -> str:
    return _normalise(message, cluster)


def _normalise(message: str, cluster: str) -> str:
    lines = [line for line in message.strip().splitlines() if line.strip()]
    text = lines[0].strip() if lines else ""
    if cluster and len(cluster) >= 3:
        text = text.replace(cluster, "<cluster>")
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text[:MAX_SIGNATURE]


def signature_id(signature: str) -> str:
    """A short stable id for a signature, for links that can be shared (``/errors/3f2a…``)."""
    return hashlib.sha256(signature.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class ProblemBrief:
    """One error of one cluster: where it occurs, its signature and the original message."""

    signature: str  # "<where>: <normalised message>", the grouping key
    bundle: str  # "" for the source
    example: str


def problems_of(report: ReportFacts) -> tuple[ProblemBrief, ...]:
    """The errors a report carries: its source error, then each failing or degraded bundle's message
    and the messages of its non-ready resources (at most MAX_PROBLEMS, one per signature)."""
    found: dict[str, ProblemBrief] = {}

    def add(where: str, bundle: str, message: str) -> None:
        if not message.strip() or len(found) >= MAX_PROBLEMS:
            return
        key = f"{where}: {normalise(message, report.cluster)}"
        found.setdefault(key, ProblemBrief(key, bundle, message.strip()[:MAX_EXAMPLE]))

    if report.source.error:
        add("source", "", report.source.error)
    for bundle in report.bundles:
        if bundle.state not in ("Failed", "Degraded"):
            continue
        add(f"{bundle.state} {bundle.bundle}", bundle.bundle, bundle.message)
        for resource in bundle.non_ready:
            add(f"{bundle.state} {bundle.bundle} {resource.kind}", bundle.bundle, resource.message)
    return tuple(found.values())
