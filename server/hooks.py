"""The webhook routes: a tenant's endpoints, a test event, and the alert log.

Staff add, delete and test endpoints; staff and the tenant's read token list its endpoints
(never their secrets: a secret is answered once, when its endpoint is made) and read its
alert log (events newest first, with their deliveries and attempts). Reads run in the read
pool, writes in the writer thread; an endpoint or event of another tenant is answered 404,
as one that does not exist.
"""

from __future__ import annotations

import time

from aiohttp import web

from core.webhooks import TEST_EVENT
from server.api import _param, _run, parse_time, tenant_and_token
from server.errors import ApiError
from server.sla import _body, _staff, _who, _write
from server.state import STATE

#: events ``/events`` answers at most (``limit``), and by default
MAX_EVENTS, DEFAULT_EVENTS = 1000, 100


def _endpoint_id(request: web.Request) -> int:
    given = request.match_info["endpoint"]
    if not given.isascii() or not given.isdigit() or len(given) > 9:
        raise ApiError(404, "not_found", "no such webhook")
    return int(given)


async def endpoints(request: web.Request) -> web.Response:
    state = request.app[STATE]
    tenant, _ = await tenant_and_token(request, state)
    found = await _run(state, state.store.endpoints, tenant.id)
    return web.json_response({"tenant": tenant.name, "webhooks": [e.to_json() for e in found]})


async def add_endpoint(request: web.Request) -> web.Response:
    """``{"url": ..., "events": ["incident.*"], "description": ...}``: 201 with the secret,
    the only time it is shown."""
    state = request.app[STATE]
    tenant, token = await tenant_and_token(request, state)
    _staff(token)
    body = await _body(request)
    unknown = sorted(set(body) - {"url", "events", "description"})
    if unknown:
        raise ApiError(400, "bad_request", f"unknown keys: {', '.join(unknown)}")
    if "url" not in body:
        raise ApiError(400, "bad_request", "url is required")
    events = body.get("events", ["*"])
    if not isinstance(events, list):
        raise ApiError(400, "bad_request", "events must be a list of patterns")
    secret, endpoint = await _write(
        state,
        lambda: state.store.add_endpoint(
            tenant.id, body["url"], events, body.get("description", ""), _who(token)
        ),
    )
    return web.json_response({**endpoint.to_json(), "secret": secret}, status=201)


async def delete_endpoint(request: web.Request) -> web.Response:
    state = request.app[STATE]
    tenant, token = await tenant_and_token(request, state)
    _staff(token)
    endpoint_id = _endpoint_id(request)
    try:
        await state.writer.call(lambda: state.store.delete_endpoint(tenant.id, endpoint_id))
    except KeyError:
        raise ApiError(404, "not_found", f"no webhook {endpoint_id}") from None
    return web.Response(status=204)


async def test_endpoint(request: web.Request) -> web.Response:
    """Emit a ``webhook.test`` event to this endpoint only; 202 with the event (its delivery
    pending: the deliverer sends it at once)."""
    state = request.app[STATE]
    tenant, token = await tenant_and_token(request, state)
    _staff(token)
    endpoint_id = _endpoint_id(request)
    data = {"endpoint": endpoint_id, "requested_by": _who(token)}
    try:
        emitted = await state.writer.call(
            lambda: state.store.emit(
                tenant.id, [(TEST_EVENT, data)], time.time_ns(), endpoint_id=endpoint_id
            )
        )
    except KeyError:
        raise ApiError(404, "not_found", f"no webhook {endpoint_id}") from None
    state.deliverer.wake()
    assert isinstance(emitted, list)
    return web.json_response(emitted[0].to_json(), status=202)


async def events(request: web.Request) -> web.Response:
    """The alert log: ``from``/``to`` (ISO 8601 or Unix seconds; default: all), ``type``
    (patterns as in an endpoint's filter, repeatable), ``limit`` (default 100)."""
    state = request.app[STATE]
    tenant, _ = await tenant_and_token(request, state)
    since, to = _param(request, "from"), _param(request, "to")
    start = parse_time(since, "from") if since is not None else 0
    end = parse_time(to, "to") if to is not None else 2**63 - 1
    if start >= end:
        raise ApiError(400, "bad_parameter", "from must be before to")
    types = request.query.getall("type", []) or None
    given = _param(request, "limit")
    try:
        limit = DEFAULT_EVENTS if given is None else int(given)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_EVENTS:
        raise ApiError(400, "bad_parameter", f"limit must be 1..{MAX_EVENTS}")
    try:
        found = await _run(state, state.store.events, tenant.id, start, end, types, limit)
    except ValueError as exc:
        raise ApiError(400, "bad_parameter", f"type: {exc}") from None
    return web.json_response({"tenant": tenant.name, "events": [e.to_json() for e in found]})
