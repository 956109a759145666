"""A staged change is watched while it bakes: turning Degraded before it has baked is a failed canary.

Helm returning success says little when the bundle asks for ``wait: false``: the pods come later.
So a change applied under a rollout gate's "go" is recorded (``baking.json`` in the state directory)
with the revision it replaced.  Until the release has been Ready for its wave's ``bakeSeconds`` on
the agent's clock, a pass that finds the bundle ``Degraded`` rolls the release back to that revision
and reports the change failed, exactly as a failed ``wait: true`` apply does: the go is withdrawn,
the hub counts the failure against the wave's budget (and halts the rollout past it), and the
digest backs off.  The next commit starts a new rollout and rolls forward as usual.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import structlog

from agent import actions, apply, fleet, state
from agent.actions import Failure
from agent.helm import HelmError
from agent.passcontext import PassContext
from agent.releases import ReleaseHistory

log = structlog.get_logger("agent.reconcile")

FILE = "baking.json"
Verdict = Literal["watching", "baked", "rollback", "gone"]


@dataclass(frozen=True)
class Watch:
    commit: str
    revision: int  # the Helm revision the gated change produced
    previous: int | None  # the last good revision before it: where a failed canary goes back to
    ready_since: float | None = None  # on the agent's clock


def judge(
    watch: Watch, *, revision: int | None, bundle_state: str, now: float, bake_seconds: int
) -> tuple[Verdict, Watch | None]:
    """What the bundle's state this pass means for a watched change (pure); the watch to keep, if any."""
    if revision != watch.revision:
        return "gone", None  # another change replaced it (a newer commit, a recovery): not ours to judge
    if bundle_state == "Degraded":
        return "rollback", None
    if bundle_state != "Ready":
        return "watching", dataclasses.replace(watch, ready_since=None)
    since = watch.ready_since if watch.ready_since is not None else now
    if now - since >= bake_seconds:
        return "baked", None
    return "watching", dataclasses.replace(watch, ready_since=since)


def _load(state_dir: Path) -> dict[str, dict[str, Any]]:
    raw = state.read_json(state_dir / FILE)
    return raw if isinstance(raw, dict) else {}


def _store(state_dir: Path, key: str, watch: Watch | None) -> None:
    watches = _load(state_dir)
    before = watches.get(key)
    if watch is None:
        watches.pop(key, None)
    else:
        watches[key] = dataclasses.asdict(watch)
    if watches.get(key) != before:
        state.write_json_atomic(state_dir / FILE, watches)


def start(
    ctx: PassContext,
    desired: fleet.DesiredRelease,
    commit: str,
    before: ReleaseHistory | None,
    after: ReleaseHistory | None,
) -> None:
    """Watch the change a gate released, just applied (``before`` and ``after`` the apply)."""
    if desired.wave is None or after is None:
        return
    previous = before.last_deployed() if before is not None else None
    watch = Watch(commit, after.current.revision, previous.revision if previous is not None else None)
    _store(ctx.state_dir, f"{desired.namespace}/{desired.release}", watch)


def check(
    ctx: PassContext,
    desired: fleet.DesiredRelease,
    digest: str,
    history: ReleaseHistory | None,
    bundle_state: str,
    detail: str,
    failures: dict[str, Failure],
) -> tuple[str, ReleaseHistory | None] | None:
    """Judge a watched change this pass; when it turned Degraded, roll it back and return the
    failure message and the release's history after the rollback.  None otherwise."""
    key = f"{desired.namespace}/{desired.release}"
    raw = _load(ctx.state_dir).get(key)
    if raw is None or desired.wave is None:
        return None
    try:
        watch = Watch(**raw)
    except TypeError:
        _store(ctx.state_dir, key, None)
        return None
    bake = desired.wave.spec.all_waves()[desired.wave.index - 1].bake_seconds
    revision = history.current.revision if history is not None else None
    verdict, kept = judge(
        watch, revision=revision, bundle_state=bundle_state, now=ctx.clock(), bake_seconds=bake
    )
    _store(ctx.state_dir, key, kept)
    if verdict == "baked":
        log.info("rollout_change_baked", bundle=desired.bundle, revision=watch.revision)
    if verdict != "rollback":
        return None
    message = f"turned Degraded before its bake time was over ({detail})"
    if watch.previous is None:
        message += "; there is no earlier revision to roll back to"
    else:
        try:
            apply.rollback(ctx, desired, watch.previous)
            message += f"; rolled back to revision {watch.previous}"
        except HelmError as error:
            message += f"; rollback to revision {watch.previous} failed: {error}"
        history = apply.refreshed_history(ctx, desired)
    log.error("rollout_canary_degraded", bundle=desired.bundle, release=desired.release, message=message)
    if ctx.gates is not None:
        ctx.gates.failed(desired.bundle, watch.commit)
    failures[key] = actions.next_retry(failures.get(key), digest, message, ctx.clock(), ctx.interval)
    return message, history
