"""What the agent applies to undo drift, and which fields it must leave to a controller (pure).

Helm 4 applies every object server-side as field manager ``helm`` and upgrades without
``--force-conflicts``: a field owned by any other manager makes its next upgrade fail with
``conflict with "<manager>"``.  So drift is corrected by re-applying *exactly Helm's applied
configuration* — the release's manifest object plus the ownership metadata Helm adds at apply time
(``app.kubernetes.io/managed-by`` and the ``meta.helm.sh/release-*`` annotations) — under Helm's own
field manager, with force.  Ownership of every corrected field returns to ``helm`` and Helm's set of
fields is unchanged (nothing it applied is dropped), so the next ``helm upgrade`` finds no conflict.

A field a controller owns is never fought over: ``spec.replicas`` of a workload scaled by an HPA
(named by an HPA in the release, or last written by ``kube-controller-manager``) keeps its live value.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any, Final

MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
RELEASE_NAME_ANNOTATION: Final = "meta.helm.sh/release-name"
RELEASE_NAMESPACE_ANNOTATION: Final = "meta.helm.sh/release-namespace"
# Field managers of controllers that scale workloads (the HPA controller runs in kube-controller-manager).
AUTOSCALER_MANAGERS: Final = frozenset({"kube-controller-manager"})


def correction_body(
    wanted: Mapping[str, Any],
    live: Mapping[str, Any] | None,
    *,
    release: str,
    release_namespace: str,
    keep_live_replicas: bool,
) -> dict[str, Any]:
    """The object to server-side apply as ``helm`` to put ``wanted`` back (``live`` may be absent)."""
    body: dict[str, Any] = copy.deepcopy(dict(wanted))
    metadata = body.setdefault("metadata", {})
    metadata["labels"] = {**(metadata.get("labels") or {}), MANAGED_BY_LABEL: "Helm"}
    metadata["annotations"] = {
        **(metadata.get("annotations") or {}),
        RELEASE_NAME_ANNOTATION: release,
        RELEASE_NAMESPACE_ANNOTATION: release_namespace,
    }
    spec = body.get("spec")
    live_spec = (live or {}).get("spec")
    if (
        keep_live_replicas
        and isinstance(spec, dict)
        and "replicas" in spec
        and isinstance(live_spec, Mapping)
        and "replicas" in live_spec
    ):
        spec["replicas"] = live_spec["replicas"]
    return body


def replicas_owned_by_autoscaler(live: Mapping[str, Any] | None) -> bool:
    """Was ``spec.replicas`` last written by an autoscaling controller (per ``managedFields``)?"""
    if not live:
        return False
    entries = (live.get("metadata") or {}).get("managedFields") or []
    for entry in entries if isinstance(entries, list) else ():
        if not isinstance(entry, Mapping) or entry.get("manager") not in AUTOSCALER_MANAGERS:
            continue
        spec = (entry.get("fieldsV1") or {}).get("f:spec")
        if isinstance(spec, Mapping) and "f:replicas" in spec:
            return True
    return False


def hpa_targets(objects: Iterable[Mapping[str, Any]]) -> set[tuple[str, str]]:
    """(kind, name) of every workload an HPA among ``objects`` scales."""
    targets = set()
    for obj in objects:
        if obj.get("kind") == "HorizontalPodAutoscaler":
            ref = (obj.get("spec") or {}).get("scaleTargetRef") or {}
            targets.add((str(ref.get("kind", "")), str(ref.get("name", ""))))
    return targets
