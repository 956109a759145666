"""The deletion brake (pure): a pass that would uninstall too many releases uninstalls none of them.

"Too many" is more than ``maxReleases`` releases, or more than one release and more than
``maxPercent`` % of the Flotilla releases this cluster runs (``fleet.yaml``, ``deletionBrake``).
Removing a single release is never a mass deletion.  A refused prune is reported with a prune id:
a hash of the cluster and the exact list, so a confirmation (``deletionBrake.confirm`` in
``fleet.yaml``: ``<cluster>:<id>``) lets through that one set of deletions and nothing else.  The
hub can give the same confirmation once (``flotilla-hub rollout allow-prune``, hub.prune_allowances):
the agent asks it about a refused prune through its gate request.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from agent.fleet.rollout import FLEET_FILE, DeletionBrake


@dataclass(frozen=True)
class Refusal:
    releases: tuple[str, ...]  # namespace/name, sorted
    prune_id: str
    owned: int
    reason: str

    @property
    def how_to_confirm(self) -> str:
        cluster = self.prune_id.rsplit(":", 1)[0]
        return (
            f"to confirm, add '{self.confirmation}' to deletionBrake.confirm in {FLEET_FILE}, "
            f"or run 'flotilla-hub rollout allow-prune {cluster} --id {self.prune_id}' (once)"
        )

    @property
    def confirmation(self) -> str:
        return self.prune_id

    def message(self) -> str:
        count = len(self.releases)
        return (
            f"deletion brake: refused to uninstall {count} release(s) ({self.reason}); {self.how_to_confirm}"
        )


def prune_id(cluster: str, releases: Sequence[str]) -> str:
    digest = hashlib.sha256("\n".join([cluster, *sorted(releases)]).encode()).hexdigest()[:12]
    return f"{cluster}:{digest}"


def check(cluster: str, prunable: Sequence[str], owned: int, brake: DeletionBrake) -> Refusal | None:
    """A refusal when pruning ``prunable`` out of ``owned`` Flotilla releases trips the brake."""
    count = len(prunable)
    if count == 0:
        return None
    reasons = []
    if count > brake.max_releases:
        reasons.append(f"more than {brake.max_releases}")
    if count > 1 and count * 100 > brake.max_percent * max(owned, 1):
        reasons.append(f"{count} of the cluster's {owned} releases is more than {brake.max_percent}%")
    if not reasons:
        return None
    identity = prune_id(cluster, prunable)
    if identity in brake.confirmed:
        return None
    return Refusal(tuple(sorted(prunable)), identity, owned, "; ".join(reasons))
