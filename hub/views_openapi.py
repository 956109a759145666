"""OpenAPI paths of the operator's views (merged into :data:`hub.openapi.OPENAPI`)."""

from __future__ import annotations

from typing import Any

from hub.timeline import WINDOWS

_PAGE = [
    {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}},
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 0}},
]
_WINDOW = {"name": "window", "in": "query", "schema": {"type": "string", "enum": list(WINDOWS)}}


def _op(summary: str, *params: dict[str, Any]) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "parameters": list(params),
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}},
                "400": {"description": "a query parameter is out of range (named in the answer)"},
                "401": {"description": "a viewer token is needed"},
            },
        }
    }


def _path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


OPENAPI_PATHS: dict[str, Any] = {
    "/api/v1/glance": _op(
        "the fleet at a glance: clusters per display state, and grouped by a label (`group`, default region),"
        " groups with trouble first",
        {"name": "group", "in": "query", "schema": {"type": "string"}},
        *_PAGE,
    ),
    "/api/v1/errors": _op("errors grouped by normalised signature, the most widespread first", *_PAGE),
    "/api/v1/errors/{id}": _op(
        "one error group and a page of the clusters it affects", _path_param("id"), *_PAGE
    ),
    "/api/v1/versions": _op(
        "per bundle: clusters per commit, chart version and digest, and how many are not on the"
        " target commit; clusters per agent version and architecture, and agent versions per group"
        " (`agents_by`: `by` a label key or `wave`, the wave of the agent's own bundle; paged by `apage`)",
        *_PAGE,
        {"name": "by", "in": "query", "schema": {"type": "string", "maxLength": 253}},
        {"name": "apage", "in": "query", "schema": {"type": "integer", "minimum": 1}},
    ),
    "/api/v1/versions/{name}": _op(
        "the clusters whose bundle is not on its target commit", _path_param("name"), *_PAGE
    ),
    "/api/v1/history": _op("the fleet's states over 24h or 7d (samples) and recent events", _WINDOW, *_PAGE),
    "/api/v1/clusters/{name}/history": _op(
        "one cluster's states over 24h or 7d and its events, from its retained history",
        _path_param("name"),
        _WINDOW,
    ),
}
