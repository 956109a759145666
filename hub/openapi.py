"""The OpenAPI description of the hub's HTTP API (served at /api/v1/openapi.json)."""

from __future__ import annotations

from typing import Any

from hub import __version__
from hub.connectivity import CONNECTIVITY_STATES
from hub.contract import BUNDLE_STATES, CURRENT_VERSION, SUPPORTED_VERSIONS
from hub.views_openapi import OPENAPI_PATHS


def _json(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": schema or {"type": "object"}}},
    }


_ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "field": {"type": "string"}},
    "required": ["error"],
}
_CLUSTER = {
    "type": "object",
    "required": ["name", "health", "connectivity", "commit", "labels"],
    "properties": {
        "name": {"type": "string"},
        "health": {"type": "string", "enum": list(BUNDLE_STATES)},
        "connectivity": {"type": "string", "enum": list(CONNECTIVITY_STATES)},
        "commit": {"type": ["string", "null"]},
        "desired_commit": {"type": ["string", "null"]},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "agent_version": {"type": "string"},
        "agent_arch": {
            "type": "string",
            "description": "the agent's machine (uname -m); empty if not reported",
        },
        "sequence": {"type": "integer"},
        "interval_seconds": {"type": "integer"},
        "last_report_age_seconds": {"type": "number"},
        "source_error": {"type": ["string", "null"]},
        "cause": {"type": ["string", "null"], "description": "signature of what is wrong, for grouping"},
        "bundles": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
_FILTERS = [
    {
        "name": "selector",
        "in": "query",
        "schema": {"type": "string"},
        "description": "label selector, e.g. region=eu,tier!=prod,gpu,!legacy",
    },
    {"name": "health", "in": "query", "schema": {"type": "string"}, "description": "comma-separated states"},
    {
        "name": "connectivity",
        "in": "query",
        "schema": {"type": "string"},
        "description": "Online,Stale,Offline",
    },
    {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}},
    {
        "name": "limit",
        "in": "query",
        "schema": {"type": "integer", "minimum": 0, "maximum": 1000, "default": 200},
    },
]
_PAGING = _FILTERS[-2:]
_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
_READ: list[dict[str, list[str]]] = [{"viewerBearer": []}, {"viewerBasic": []}]

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Flotilla hub",
        "version": __version__,
        "description": f"Status report contract v{CURRENT_VERSION} (accepted: {list(SUPPORTED_VERSIONS)}).",
    },
    "components": {
        "securitySchemes": {
            "clusterToken": {"type": "http", "scheme": "bearer", "description": "flotilla-hub token create"},
            "viewerBearer": {"type": "http", "scheme": "bearer", "description": "flotilla-hub viewer create"},
            "viewerBasic": {
                "type": "http",
                "scheme": "basic",
                "description": "any user, viewer token as password",
            },
        }
    },
    "paths": {
        "/api/v1/reports": {
            "post": {
                "summary": "Submit a status report (hub/contract.py)",
                "security": [{"clusterToken": []}],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "responses": {
                    "202": _json("stored (result: current or late)"),
                    "200": _json("already stored (result: duplicate)"),
                    "401": _json("missing or invalid token", _ERROR),
                    "403": _json("the token belongs to another cluster", _ERROR),
                    "408": _json("body too slow", _ERROR),
                    "413": _json("body over the limit", _ERROR),
                    "503": _json("shutting down, storage failure or connection limit: retry", _ERROR),
                    "422": _json("invalid report; `field` names the offending field", _ERROR),
                },
            }
        },
        "/api/v1/summary": {
            "get": {
                "security": _READ,
                "parameters": [
                    {
                        "name": "label",
                        "in": "query",
                        "schema": {"type": "string"},
                        "description": "count per value",
                    }
                ],
                "responses": {"200": _json("fleet summary, most common causes")},
            }
        },
        "/api/v1/clusters": {
            "get": {
                "security": _READ,
                "parameters": _FILTERS,
                "responses": {
                    "200": _json(
                        "clusters",
                        {
                            "type": "object",
                            "properties": {
                                "total": {"type": "integer"},
                                "offset": {"type": "integer"},
                                "limit": {"type": "integer"},
                                "clusters": {"type": "array", "items": _CLUSTER},
                            },
                        },
                    ),
                    "400": _json("bad filter", _ERROR),
                },
            }
        },
        "/api/v1/clusters/{name}": {
            "get": {
                "security": _READ,
                "parameters": [_NAME, *_PAGING],
                "responses": {
                    "200": _json("cluster with its current report and a page of its history", _CLUSTER),
                    "404": _json("unknown", _ERROR),
                },
            }
        },
        "/api/v1/bundles": {
            "get": {
                "security": _READ,
                "parameters": _PAGING,
                "responses": {"200": _json("a page of bundle rollouts"), "400": _json("bad paging", _ERROR)},
            }
        },
        "/api/v1/bundles/{name}": {
            "get": {
                "security": _READ,
                "parameters": [_NAME, *_PAGING],
                "responses": {
                    "200": _json("rollout: clusters per state and per commit, a page of placements"),
                    "404": _json("unknown", _ERROR),
                },
            }
        },
        "/healthz": {
            "get": {
                "responses": {
                    "200": _json("ready: the fleet is loaded"),
                    "503": _json("starting: the fleet is still loading (every other request is 503 too)"),
                }
            }
        },
        "/metrics": {
            "get": {"security": _READ, "responses": {"200": {"description": "Prometheus text format"}}}
        },
    },
}

from hub.rollout_api import OPENAPI_PATHS as ROLLOUT_PATHS  # noqa: E402 - the rollout routes describe themselves

OPENAPI["paths"].update(ROLLOUT_PATHS)
OPENAPI["paths"].update(OPENAPI_PATHS)  # the operator's views: glance, errors, versions, history
