"""``GET /v1/openapi.json``: the OpenAPI 3.1 description of every route.

tests/server/test_server.py validates it and checks that it describes exactly the app's routes.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from core import __version__

_ERROR = {"$ref": "#/components/schemas/Error"}


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        400: "Malformed request",
        401: "Missing, unknown or revoked token",
        403: "The token may not do this",
        404: "No such tenant or device",
        409: "Not possible yet (the month has not ended everywhere, or the checkpoint has not "
        "passed it)",
        413: "Body or frame count over the limit",
        415: "Unsupported Content-Type or Content-Encoding",
        429: "Over the tenant's frame rate; see Retry-After",
        503: "Store unavailable; nothing was stored; see Retry-After",
    }
    return {
        str(c): {"description": text[c], "content": {"application/json": {"schema": _ERROR}}}
        for c in codes
    }


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {
        "200": {"description": description, "content": {"application/json": {"schema": schema}}}
    }


_TENANT = {"name": "tenant", "in": "path", "required": True, "schema": {"type": "string"}}
_FROM = {
    "name": "from",
    "in": "query",
    "schema": {"type": "string"},
    "description": (
        "ISO 8601 or Unix seconds, 1970 to the end of 9999; default: one day (outages: 7) "
        "before `to`. A period spans at most 366 days."
    ),
}
_TO = {
    "name": "to",
    "in": "query",
    "schema": {"type": "string"},
    "description": "ISO 8601 or Unix seconds, 1970 to the end of 9999; default: now",
}
_DEVICE = {
    "name": "device",
    "in": "query",
    "schema": {"type": "array", "items": {"type": "string"}},
    "style": "form",
    "explode": True,
    "description": "restrict to these device ids (each counted once)",
}
_DEVICE_PATH = {"name": "device", "in": "path", "required": True, "schema": {"type": "string"}}
_ENDPOINT = {"name": "endpoint", "in": "path", "required": True, "schema": {"type": "integer"}}
_SECURED: list[dict[str, list[str]]] = [{"bearer": []}]
_INCIDENT = {"name": "incident", "in": "path", "required": True, "schema": {"type": "integer"}}
_MONTH_QUERY = {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$"}
_JSON_OR_CSV = {
    "200": {
        "description": "JSON, or CSV with `Accept: text/csv` (docs/billing.md, exports)",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "text/csv": {"schema": {"type": "string"}},
        },
    }
}
_NOTE = {
    "content": {
        "application/json": {
            "schema": {"type": "object", "properties": {"note": {"type": "string"}}}
        }
    }
}

SPEC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Uptally",
        "version": __version__,
        "description": "Gateway ingest and read API. See docs/wire-format.md.",
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error", "detail"],
                "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
            },
            "IngestResult": {
                "type": "object",
                "required": ["accepted", "rejected", "warnings", "duplicate", "errors"],
                "properties": {
                    "accepted": {"type": "integer"},
                    "rejected": {"type": "integer"},
                    "warnings": {"type": "integer"},
                    "duplicate": {"type": "boolean"},
                    "errors": {
                        "type": "array",
                        "maxItems": 20,
                        "items": {
                            "type": "object",
                            "properties": {
                                "index": {"type": "integer"},
                                "reason": {"type": "string"},
                            },
                        },
                    },
                },
            },
        },
    },
    "paths": {
        "/v1/ingest": {
            "post": {
                "summary": "Send a batch of device frames (msgpack, optionally gzip)",
                "security": _SECURED,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/msgpack": {"schema": {"type": "string", "format": "binary"}},
                        "application/x-msgpack": {"schema": {"type": "string", "format": "binary"}},
                    },
                },
                "responses": {
                    "200": {
                        "description": "Committed durably (maybe with rejected frames, maybe a "
                        "duplicate)",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/IngestResult"}
                            },
                            "application/msgpack": {"schema": {"type": "string"}},
                        },
                    },
                    **_errors(400, 401, 403, 413, 415, 429, 503),
                },
            }
        },
        "/v1/tenants": {
            "get": {
                "summary": "Tenants the token may read",
                "security": _SECURED,
                "responses": {**_json({"type": "object"}), **_errors(401, 403)},
            }
        },
        "/v1/tenants/{tenant}/devices": {
            "get": {
                "summary": "Devices with status, last seen, battery, firmware, lifecycle",
                "security": _SECURED,
                "parameters": [_TENANT],
                "responses": {**_json({"type": "object"}), **_errors(401, 403, 404)},
            }
        },
        "/v1/tenants/{tenant}/uptime": {
            "get": {
                "summary": "Uptime per device, or a day/hour series with `granularity`",
                "security": _SECURED,
                "parameters": [
                    _TENANT,
                    _FROM,
                    _TO,
                    _DEVICE,
                    {
                        "name": "granularity",
                        "in": "query",
                        "schema": {"type": "string", "enum": ["day", "hour"]},
                    },
                ],
                "responses": {**_json({"type": "object"}), **_errors(400, 401, 403, 404)},
            }
        },
        "/v1/tenants/{tenant}/outages": {
            "get": {
                "summary": "Outages (runs of down slots of at least min_outage slots)",
                "security": _SECURED,
                "parameters": [
                    _TENANT,
                    _FROM,
                    _TO,
                    _DEVICE,
                    {
                        "name": "min_outage",
                        "in": "query",
                        "schema": {
                            "type": "integer",
                            "default": 5,
                            "minimum": 1,
                            "maximum": 10_000,
                        },
                    },
                ],
                "responses": {**_json({"type": "object"}), **_errors(400, 401, 403, 404)},
            }
        },
        "/v1/tiers": {
            "get": {
                "summary": "Service tiers, each flagged when it promises more than upstream",
                "security": _SECURED,
                "responses": {**_json({"type": "object"}), **_errors(401, 403)},
            }
        },
        "/v1/tenants/{tenant}/sla": {
            "get": {
                "summary": "A local month's attainment, target, band, credit and projection",
                "security": _SECURED,
                "parameters": [
                    _TENANT,
                    {
                        "name": "month",
                        "in": "query",
                        "schema": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$"},
                        "description": "YYYY-MM in the tenant's zone; default: this month",
                    },
                    {
                        "name": "site",
                        "in": "query",
                        "schema": {"type": "string"},
                        "description": "one site's figures, for the slots its devices had it",
                    },
                ],
                "responses": {**_json({"type": "object"}), **_errors(400, 401, 403, 404)},
            }
        },
        "/v1/tenants/{tenant}/sla/history": {
            "get": {
                "summary": "A row of SLA figures per local month, oldest first",
                "security": _SECURED,
                "parameters": [
                    _TENANT,
                    {
                        "name": "months",
                        "in": "query",
                        "schema": {"type": "integer", "default": 12, "minimum": 1, "maximum": 36},
                    },
                ],
                "responses": {**_json({"type": "object"}), **_errors(400, 401, 403, 404)},
            }
        },
        "/v1/tenants/{tenant}/windows": {
            "get": {
                "summary": "Maintenance windows of the tenant",
                "security": _SECURED,
                "parameters": [_TENANT],
                "responses": {**_json({"type": "object"}), **_errors(401, 403, 404)},
            },
            "post": {
                "summary": "Add a maintenance window (staff): one-off or recurring, see "
                "docs/sla.md",
                "security": _SECURED,
                "parameters": [_TENANT],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "responses": {
                    "201": {
                        "description": "Stored",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    **_errors(400, 401, 403, 404),
                },
            },
        },
        "/v1/tenants/{tenant}/windows/{window}": {
            "delete": {
                "summary": "Delete a maintenance window (staff)",
                "security": _SECURED,
                "parameters": [
                    _TENANT,
                    {
                        "name": "window",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer"},
                    },
                ],
                "responses": {"204": {"description": "Deleted"}, **_errors(401, 403, 404)},
            }
        },
        "/v1/tenants/{tenant}/webhooks": {
            "get": {
                "summary": "Webhook endpoints of the tenant (never their secrets)",
                "security": _SECURED,
                "parameters": [_TENANT],
                "responses": {**_json({"type": "object"}), **_errors(401, 403, 404)},
            },
            "post": {
                "summary": "Add a webhook endpoint (staff): url, events (patterns such as "
                '"incident.*" or "*"), description; the answer shows its secret, once. See '
                "docs/webhooks.md",
                "security": _SECURED,
                "parameters": [_TENANT],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "responses": {
                    "201": {
                        "description": "Stored; the secret is in this answer only",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    **_errors(400, 401, 403, 404),
                },
            },
        },
        "/v1/tenants/{tenant}/webhooks/{endpoint}": {
            "delete": {
                "summary": "Delete a webhook endpoint (staff); its pending deliveries fail",
                "security": _SECURED,
                "parameters": [_TENANT, _ENDPOINT],
                "responses": {"204": {"description": "Deleted"}, **_errors(401, 403, 404)},
            }
        },
        "/v1/tenants/{tenant}/webhooks/{endpoint}/test": {
            "post": {
                "summary": "Send a webhook.test event to this endpoint only (staff)",
                "security": _SECURED,
                "parameters": [_TENANT, _ENDPOINT],
                "responses": {
                    "202": {
                        "description": "The event, its delivery pending",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    **_errors(401, 403, 404),
                },
            }
        },
        "/v1/tenants/{tenant}/events": {
            "get": {
                "summary": "The alert log: events newest first, with their deliveries and attempts",
                "security": _SECURED,
                "parameters": [
                    _TENANT,
                    {
                        "name": "from",
                        "in": "query",
                        "schema": {"type": "string"},
                        "description": "ISO 8601 or Unix seconds; default: the first event",
                    },
                    {
                        "name": "to",
                        "in": "query",
                        "schema": {"type": "string"},
                        "description": "ISO 8601 or Unix seconds (exclusive); default: none",
                    },
                    {
                        "name": "type",
                        "in": "query",
                        "schema": {"type": "array", "items": {"type": "string"}},
                        "style": "form",
                        "explode": True,
                        "description": 'event types or patterns ("incident.*")',
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {
                            "type": "integer",
                            "default": 100,
                            "minimum": 1,
                            "maximum": 1000,
                        },
                    },
                ],
                "responses": {**_json({"type": "object"}), **_errors(400, 401, 403, 404)},
            }
        },
        "/v1/tenants/{tenant}/devices/{device}": {
            "get": {
                "summary": "A device's site, lifecycle and firmware histories",
                "security": _SECURED,
                "parameters": [_TENANT, _DEVICE_PATH],
                "responses": {**_json({"type": "object"}), **_errors(401, 403, 404)},
            },
            "patch": {
                "summary": "Move a device to a site and/or set its lifecycle state (staff)",
                "security": _SECURED,
                "parameters": [_TENANT, _DEVICE_PATH],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "responses": {**_json({"type": "object"}), **_errors(400, 401, 403, 404)},
            },
        },
        "/v1/tenants/{tenant}/devices/{device}/replace": {
            "post": {
                "summary": "Retire the device and link its replacement, which takes its site "
                "(staff)",
                "security": _SECURED,
                "parameters": [_TENANT, _DEVICE_PATH],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "responses": {**_json({"type": "object"}), **_errors(400, 401, 403, 404)},
            }
        },
        "/v1/tenants/{tenant}/incidents": {
            "get": {
                "summary": "Incidents overlapping the period (default the last 30 days), newest "
                "first, times in the tenant's zone; see docs/incidents.md",
                "security": _SECURED,
                "parameters": [
                    _TENANT,
                    {
                        **_FROM,
                        "description": "ISO 8601 or Unix seconds; default: 30 days before `to`",
                    },
                    _TO,
                    {
                        "name": "state",
                        "in": "query",
                        "schema": {"type": "string"},
                        "description": "comma-separated: open, acknowledged, resolved, "
                        "cleared_by_backfill",
                    },
                    {
                        "name": "kind",
                        "in": "query",
                        "schema": {"type": "string"},
                        "description": "device or gateway",
                    },
                ],
                "responses": {**_json({"type": "object"}), **_errors(400, 401, 403, 404)},
            }
        },
        "/v1/tenants/{tenant}/incidents/compliance": {
            "get": {
                "summary": "A month's response and resolve compliance against the tier's "
                "targets, in support minutes",
                "security": _SECURED,
                "parameters": [
                    _TENANT,
                    {
                        "name": "month",
                        "in": "query",
                        "schema": {"type": "string"},
                        "description": "YYYY-MM in the tenant's zone; default: this month",
                    },
                ],
                "responses": {**_json({"type": "object"}), **_errors(400, 401, 403, 404)},
            }
        },
        "/v1/tenants/{tenant}/incidents/{incident}": {
            "get": {
                "summary": "One incident",
                "security": _SECURED,
                "parameters": [_TENANT, _INCIDENT],
                "responses": {**_json({"type": "object"}), **_errors(401, 403, 404)},
            }
        },
        "/v1/tenants/{tenant}/incidents/{incident}/acknowledge": {
            "post": {
                "summary": "Acknowledge an incident (staff), with an optional note",
                "security": _SECURED,
                "parameters": [_TENANT, _INCIDENT],
                "requestBody": _NOTE,
                "responses": {**_json({"type": "object"}), **_errors(400, 401, 403, 404)},
            }
        },
        "/v1/tenants/{tenant}/incidents/{incident}/resolve": {
            "post": {
                "summary": "Resolve an incident (staff); the note is required",
                "security": _SECURED,
                "parameters": [_TENANT, _INCIDENT],
                "requestBody": {**_NOTE, "required": True},
                "responses": {**_json({"type": "object"}), **_errors(400, 401, 403, 404)},
            }
        },
        "/v1/tenants/{tenant}/alert-rules": {
            "get": {
                "summary": "The tier's alert rules, the tenant's overrides and those in force",
                "security": _SECURED,
                "parameters": [_TENANT],
                "responses": {**_json({"type": "object"}), **_errors(401, 403, 404)},
            },
            "put": {
                "summary": "Replace the tenant's overrides of its tier's alert rules (staff)",
                "security": _SECURED,
                "parameters": [_TENANT],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "responses": {**_json({"type": "object"}), **_errors(400, 401, 403, 404)},
            },
        },
        "/v1/tenants/{tenant}/subscription": {
            "get": {
                "summary": "The tenant's subscription events and its state today (its local date)",
                "security": _SECURED,
                "parameters": [_TENANT],
                "responses": {**_json({"type": "object"}), **_errors(401, 403, 404)},
            },
            "post": {
                "summary": "Record a subscription event (staff): kind start, change or cancel, "
                "on (local date), tier, term, trial_days; see docs/billing.md",
                "security": _SECURED,
                "parameters": [_TENANT],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["kind", "on"],
                                "properties": {
                                    "kind": {
                                        "type": "string",
                                        "enum": ["start", "change", "cancel"],
                                    },
                                    "on": {"type": "string", "format": "date"},
                                    "tier": {"type": "string"},
                                    "term": {"type": "string", "enum": ["monthly", "annual"]},
                                    "trial_days": {"type": "integer", "minimum": 0},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "201": {
                        "description": "Recorded; the history with it",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    **_errors(400, 401, 403, 404),
                },
            },
        },
        "/v1/months/{month}/close": {
            "post": {
                "summary": "Issue a month's invoices and close it (staff); closing it again "
                "issues nothing",
                "security": _SECURED,
                "parameters": [
                    {"name": "month", "in": "path", "required": True, "schema": _MONTH_QUERY}
                ],
                "requestBody": {
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {"prefix": {"type": "string"}},
                            }
                        }
                    }
                },
                "responses": {**_json({"type": "object"}), **_errors(400, 401, 403, 409)},
            }
        },
        "/v1/tenants/{tenant}/invoices": {
            "get": {
                "summary": "The tenant's issued invoices, in issue order",
                "security": _SECURED,
                "parameters": [_TENANT],
                "responses": {**_JSON_OR_CSV, **_errors(401, 403, 404)},
            }
        },
        "/v1/tenants/{tenant}/invoices/{number}": {
            "get": {
                "summary": "One of the tenant's invoices",
                "security": _SECURED,
                "parameters": [
                    _TENANT,
                    {
                        "name": "number",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    },
                ],
                "responses": {**_JSON_OR_CSV, **_errors(401, 403, 404)},
            }
        },
        "/v1/revenue": {
            "get": {
                "summary": "Revenue figures per currency and closed month (staff): MRR, ARR, "
                "movements, retention, logo churn, revenue, cost, margin, valuation",
                "security": _SECURED,
                "parameters": [
                    {"name": "from", "in": "query", "required": True, "schema": _MONTH_QUERY},
                    {"name": "to", "in": "query", "required": True, "schema": _MONTH_QUERY},
                ],
                "responses": {**_json({"type": "object"}), **_errors(400, 401, 403)},
            }
        },
        "/v1/what-if": {
            "get": {
                "summary": "Revenue, cost and margin of a tier at N devices (staff)",
                "security": _SECURED,
                "parameters": [
                    {"name": "tier", "in": "query", "required": True, "schema": {"type": "string"}},
                    {
                        "name": "devices",
                        "in": "query",
                        "schema": {"type": "string"},
                        "description": "device counts, comma-separated (10,100,1000)",
                    },
                    *(
                        {"name": name, "in": "query", "schema": {"type": "integer"}}
                        for name in ("devices_from", "devices_to", "devices_step")
                    ),
                    {
                        "name": "heartbeat_s",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1},
                        "description": "one frame a device per this many seconds; default: "
                        "the tier's",
                    },
                    {
                        "name": "days",
                        "in": "query",
                        "schema": {"type": "integer", "default": 30, "minimum": 1, "maximum": 31},
                    },
                    {
                        "name": "term",
                        "in": "query",
                        "schema": {"type": "string", "enum": ["monthly", "annual"]},
                    },
                ],
                "responses": {**_json({"type": "object"}), **_errors(400, 401, 403)},
            }
        },
        "/healthz": {"get": {"summary": "Liveness", "responses": _json({"type": "object"})}},
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "responses": {
                    "200": {
                        "description": "Prometheus text format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/v1/openapi.json": {
            "get": {"summary": "This document", "responses": _json({"type": "object"})}
        },
    },
}


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(SPEC)
