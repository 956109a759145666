"""Rollout endpoints: a cluster asks for its own gates; viewers read every rollout and refused prune.

``POST /api/v1/rollout/gates`` takes a cluster token; the request must name that token's cluster,
and the answer holds only that cluster's gates (counts of other clusters, never their names).
``GET /api/v1/rollouts`` and ``GET /api/v1/rollouts/{bundle}`` need a viewer credential.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hub.auth import cluster_of, may_read
from hub.context import HubContext
from hub.rollout_book import RolloutBook
from hub.rollout_contract import RolloutContractError, parse_gate_request
from hub.rollout_model import RolloutView, WaveView

MAX_GATE_BODY = 64 * 1024
MAX_CLUSTERS_LISTED = 500  # per wave (by name) and failing: the counts say how many there are in all


def _ctx(request: Request) -> HubContext:
    ctx: HubContext = request.app.state.hub
    return ctx


def book(request: Request) -> RolloutBook:
    """The app's rollout book (opened once at start-up)."""
    return _ctx(request).rollouts


def _error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers or None)


async def gates(request: Request) -> Response:
    ctx = _ctx(request)
    cluster = cluster_of(ctx, request)
    if cluster is None:
        return _error(401, "missing or invalid cluster token", **{"WWW-Authenticate": "Bearer"})
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_GATE_BODY:
            return _error(413, f"gate request exceeds {MAX_GATE_BODY} bytes")
    try:
        wanted = parse_gate_request(json.loads(body or b"{}"))
    except (ValueError, RecursionError) as exc:
        field = exc.field_path if isinstance(exc, RolloutContractError) else None
        return JSONResponse({"error": f"invalid gate request: {exc}", "field": field}, status_code=422)
    if wanted["cluster"] != cluster:
        return _error(403, f"this token may only ask for the gates of cluster {cluster!r}")
    answer = book(request).answer(cluster, wanted["commit"], wanted["bundles"], ctx.staged(), ctx.now())
    reply: dict[str, Any] = {"cluster": cluster, "gates": answer}
    if wanted["prune_id"] and book(request).take_prune(cluster, wanted["prune_id"]) is not None:
        reply["prune"] = {"prune_id": wanted["prune_id"], "allowed": True}
    return JSONResponse(reply)


def wave_json(wave: WaveView) -> dict[str, Any]:
    return {
        "index": wave.index,
        "name": wave.name,
        "state": wave.state,
        "counts": dict(wave.counts),
        "seconds_left": None if wave.seconds_left is None else round(wave.seconds_left, 1),
        "bake_seconds": wave.spec.bake_seconds,
        "deadline_seconds": wave.spec.deadline_seconds,
        "max_concurrent": wave.spec.max_concurrent,
        "max_failed": wave.spec.max_failed,
        "summary": wave.summary,
        "clusters": [
            {"cluster": c.cluster, "category": c.category, "detail": c.detail}
            for c in wave.clusters[:MAX_CLUSTERS_LISTED]
        ],
        "clusters_total": len(wave.clusters),
    }


def rollout_json(view: RolloutView) -> dict[str, Any]:
    return {
        "bundle": view.bundle,
        "commit": view.commit,
        "state": view.state,
        "paused": view.paused,
        "waves": [wave_json(w) for w in view.waves],
        "failing": [
            {"cluster": c.cluster, "state": c.detail, "error": c.error}
            for c in view.failing[:MAX_CLUSTERS_LISTED]
        ],
        "failing_total": len(view.failing),
    }


def brakes_json(ctx: HubContext) -> list[dict[str, Any]]:
    """Every cluster whose last report says the deletion brake refused a prune."""
    return ctx.rollout_index.brakes()


async def rollouts(request: Request) -> Response:
    ctx = _ctx(request)
    if not may_read(ctx, request):
        return _error(
            401, "a viewer credential is required", **{"WWW-Authenticate": 'Basic realm="flotilla-hub"'}
        )
    pictures = book(request).pictures(ctx.staged(), ctx.now())
    return JSONResponse(
        {"rollouts": [rollout_json(p) for p in pictures], "deletion_brakes": brakes_json(ctx)}
    )


async def rollout(request: Request) -> Response:
    ctx = _ctx(request)
    if not may_read(ctx, request):
        return _error(
            401, "a viewer credential is required", **{"WWW-Authenticate": 'Basic realm="flotilla-hub"'}
        )
    name = request.path_params["bundle"]
    found = [p for p in book(request).pictures(ctx.staged(), ctx.now()) if p.bundle == name]
    if not found:
        return _error(404, f"no staged rollout of a bundle named {name!r} is known")
    return JSONResponse(rollout_json(found[0]))


_BUNDLE_PARAMETER = [{"name": "bundle", "in": "path", "required": True, "schema": {"type": "string"}}]
OPENAPI_PATHS: dict[str, Any] = {
    "/api/v1/rollout/gates": {
        "post": {
            "summary": "A cluster asks whether its staged changes may advance (hub/rollout_contract.py)",
            "security": [{"clusterToken": []}],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
            "responses": {
                "200": {"description": "this cluster's gates: go or hold, with the reason"},
                "401": {"description": "missing or invalid token"},
                "403": {"description": "the request names another cluster than the token's"},
                "413": {"description": "body over the limit"},
                "422": {"description": "invalid request; `field` names the offending field"},
            },
        }
    },
    "/api/v1/rollouts": {
        "get": {
            "security": [{"viewerBearer": []}, {"viewerBasic": []}],
            "responses": {"200": {"description": "every bundle's newest staged rollout, and refused prunes"}},
        }
    },
    "/api/v1/rollouts/{bundle}": {
        "get": {
            "security": [{"viewerBearer": []}, {"viewerBasic": []}],
            "parameters": _BUNDLE_PARAMETER,
            "responses": {"200": {"description": "the rollout's waves"}, "404": {"description": "unknown"}},
        }
    },
}
