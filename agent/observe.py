"""The observe and correct steps of a pass: a release's live objects, their health and drift, and
the server-side apply that puts drifted objects back (``agent.correction`` says what to apply).

Health and drift are pure rules (``agent.health``, ``agent.drift``); ``agent.kube`` is the one reader.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from agent import correction, drift, fleet, health
from agent.kube import HELM_FIELD_MANAGER, KubeError, ObjectKey, object_key
from agent.passcontext import PassContext
from agent.releases import ReleaseHistory, ReleaseRecord

log = structlog.get_logger("agent.reconcile")


@dataclass(frozen=True)
class Observed:
    healths: tuple[health.ResourceHealth, ...]
    drifts: tuple[drift.Drift, ...]
    objects: Mapping[ObjectKey, Mapping[str, Any]]
    live: Mapping[ObjectKey, Mapping[str, Any] | None] = field(default_factory=dict)
    controller_replicas: frozenset[ObjectKey] = frozenset()  # spec.replicas belongs to an autoscaler


def live_snapshot(
    ctx: PassContext,
    planned: Sequence[fleet.DesiredRelease],
    histories: Mapping[tuple[str, str], ReleaseHistory],
) -> Mapping[ObjectKey, dict[str, Any] | None]:
    """The live state of every object of every planned release, read with one LIST per kind.

    Releases this pass leaves alone are judged on it; one it installs or upgrades is read again.
    """
    keys = [
        object_key(obj)
        for desired in planned
        if (history := histories.get((desired.namespace, desired.release))) is not None
        for obj in history.current.objects
    ]
    try:
        return ctx.kube.live_objects(keys)
    except KubeError as error:
        log.warning("live_snapshot_failed", error=str(error))
        return {}


def observe(
    ctx: PassContext, record: ReleaseRecord | None, snapshot: Mapping[ObjectKey, dict[str, Any] | None]
) -> Observed:
    objects = {object_key(o): o for o in (record.objects if record is not None else ())}
    if not objects:
        return Observed((), (), {})
    live: Mapping[ObjectKey, dict[str, Any] | None]
    if all(key in snapshot for key in objects):
        live = snapshot
    else:
        try:
            live = ctx.kube.live_objects(objects)
        except KubeError as error:
            unknown = tuple(
                health.ResourceHealth(
                    kind=k[1], namespace=k[2], name=k[3], status="Unknown", message=str(error)
                )
                for k in objects
            )
            return Observed(unknown, (), objects)
    scaled_by_hpa = correction.hpa_targets(objects.values())
    healths = []
    drifts = []
    autoscaled = set()
    for key, wanted in objects.items():
        current = live.get(key)
        if (key[0], key[1]) in ctx.kube.unserved:
            healths.append(health.not_served(key[0], key[1], key[2], key[3]))
            continue  # nothing to correct until the kind is served again: reported, not retried
        assessed = health.assess(current) if current is not None else health.missing(key[1], key[2], key[3])
        healths.append(health.within_autoscaler(assessed, current, _scaler_of(key, objects, live)))
        if (key[1], key[3]) in scaled_by_hpa or correction.replicas_owned_by_autoscaler(current):
            autoscaled.add(key)
        difference = drift.compare(wanted, current, ignore_replicas=key in autoscaled)
        if difference is not None:
            drifts.append(difference)
    return Observed(tuple(healths), tuple(drifts), objects, live, frozenset(autoscaled))


def _scaler_of(
    key: ObjectKey,
    objects: Mapping[ObjectKey, Mapping[str, Any]],
    live: Mapping[ObjectKey, Mapping[str, Any] | None],
) -> Mapping[str, Any] | None:
    """The live HPA of the same release that scales the object ``key``, if any."""
    for hpa_key, obj in objects.items():
        if hpa_key[1] != "HorizontalPodAutoscaler" or hpa_key[2] != key[2]:
            continue
        ref = (obj.get("spec") or {}).get("scaleTargetRef") or {}
        if (ref.get("kind"), ref.get("name")) == (key[1], key[3]):
            return live.get(hpa_key)
    return None


def correct(ctx: PassContext, desired: fleet.DesiredRelease, observed: Observed) -> bool:
    """Re-apply Helm's own version of each drifted object, as Helm's field manager (see correction)."""
    corrected = 0
    for difference in observed.drifts:
        wanted = observed.objects.get(difference.key)
        if wanted is None:
            continue
        body = correction.correction_body(
            wanted,
            observed.live.get(difference.key),
            release=desired.release,
            release_namespace=desired.namespace,
            keep_live_replicas=difference.key in observed.controller_replicas,
        )
        try:
            ctx.kube.apply(body, desired.namespace, field_manager=HELM_FIELD_MANAGER)
            corrected += 1
        except KubeError as error:
            log.error("drift_correction_failed", object=difference.message, error=str(error))
    log.info("drift_corrected", release=desired.release, objects=corrected)
    return corrected > 0
