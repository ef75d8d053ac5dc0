"""The SLA routes: month attainment and its history, maintenance windows, tiers, and the
staff's changes to devices (site, lifecycle, replacement).

Reads run in the read pool; every write is handed to the writer thread
(:meth:`server.writer.Writer.call`), which owns every write transaction of the server.
Windows and device changes are staff-only; a tenant's read token reads its own SLA and
windows.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

from aiohttp import web

from core import zones
from core.sla import attainment
from core.sla.windows import Window
from core.store import Tenant, Token, UnknownDevice
from server.api import _param, _run, local_time, tenant_and_token
from server.auth import authenticate
from server.errors import ApiError
from server.state import STATE, ServerState

#: the most months ``/sla/history`` answers at once
MAX_HISTORY_MONTHS = 36


def _staff(token: Token) -> None:
    if token.scope != "staff":
        raise ApiError(403, "forbidden", "only a staff token may change this")


def _who(token: Token) -> str:
    return f"token {token.id} ({token.scope})"


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "bad_request", "the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", "the body must be a JSON object")
    return body


async def _write(state: ServerState, fn: Any) -> Any:
    """Run ``fn`` in the writer thread; a ValueError or unknown device is the client's 400
    or 404, and nothing was stored."""
    try:
        return await state.writer.call(fn)
    except UnknownDevice as exc:
        raise ApiError(404, "not_found", f"no device {exc.args[0]!r}") from None
    except ValueError as exc:
        raise ApiError(400, "bad_request", str(exc)) from None


def _month(request: web.Request, tenant: Tenant, name: str = "month") -> tuple[int, int]:
    given = _param(request, name)
    if given is None:
        return zones.month_of(time.time_ns(), tenant.tz)
    try:
        return zones.parse_month(given)
    except ValueError as exc:
        raise ApiError(400, "bad_parameter", f"{name}: {exc}") from None


async def sla(request: web.Request) -> web.Response:
    state = request.app[STATE]
    tenant, _ = await tenant_and_token(request, state)
    year, month = _month(request, tenant)
    site = _param(request, "site")
    now = time.time_ns()
    if site is not None:
        known = (await _run(state, state.store.site_history, tenant.id)).sites()
        if site not in known:
            raise ApiError(404, "not_found", f"no site {site!r}")
    figures = await _run(
        state, attainment.month_sla, state.store, tenant, year, month, now, site=site
    )
    flag = state.config.catalog.above_upstream(tenant.plan)
    return web.json_response(figures.to_json(flag))


async def sla_history(request: web.Request) -> web.Response:
    state = request.app[STATE]
    tenant, _ = await tenant_and_token(request, state)
    now = time.time_ns()
    given = _param(request, "months")
    try:
        count = 12 if given is None else int(given)
    except ValueError:
        count = 0
    if not 1 <= count <= MAX_HISTORY_MONTHS:
        raise ApiError(400, "bad_parameter", f"months must be 1..{MAX_HISTORY_MONTHS}")
    months = attainment.months_back(now, tenant.tz, count)
    rows = await _run(state, attainment.history, state.store, tenant, months, now)
    keep = ("month", "complete", "up", "down", "excluded", "devices", "attainment", "target")
    more = ("met", "band", "credit_percent", "projection")
    out = []
    for row in rows:
        full = row.to_json()
        out.append({k: full[k] for k in (*keep, *more)})
    return web.json_response({"tenant": tenant.name, "zone": tenant.tz, "months": out})


async def windows(request: web.Request) -> web.Response:
    state = request.app[STATE]
    tenant, _ = await tenant_and_token(request, state)
    found = await _run(state, state.store.windows, tenant.id)
    return web.json_response({"tenant": tenant.name, "windows": [w.to_json() for w in found]})


async def add_window(request: web.Request) -> web.Response:
    state = request.app[STATE]
    tenant, token = await tenant_and_token(request, state)
    _staff(token)
    body = await _body(request)
    try:
        window = Window.from_spec(body)
    except ValueError as exc:
        raise ApiError(400, "bad_request", str(exc)) from None
    window = dataclasses.replace(window, created_by=_who(token), created_ns=time.time_ns())
    stored = await _write(state, lambda: state.store.add_window(tenant.id, window))
    return web.json_response(stored.to_json(), status=201)


async def delete_window(request: web.Request) -> web.Response:
    state = request.app[STATE]
    tenant, token = await tenant_and_token(request, state)
    _staff(token)
    try:
        window_id = int(request.match_info["window"])
    except ValueError:
        raise ApiError(404, "not_found", "no such window") from None
    try:
        await state.writer.call(lambda: state.store.delete_window(tenant.id, window_id))
    except KeyError:
        raise ApiError(404, "not_found", f"no window {window_id}") from None
    return web.Response(status=204)


def _at(body: dict[str, Any]) -> int:
    given = body.get("at")
    if given is None:
        return time.time_ns()
    if not isinstance(given, str):
        raise ApiError(400, "bad_request", "at must be an ISO 8601 time with an offset")
    try:
        return zones.parse_instant(given)
    except ValueError as exc:
        raise ApiError(400, "bad_request", f"at {exc}") from None


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key, "")
    if not isinstance(value, str):
        raise ApiError(400, "bad_request", f"{key} must be a string")
    return value


async def set_device(request: web.Request) -> web.Response:
    """PATCH a device: ``{"site": ..., "state": ..., "why": ..., "at": ...}``."""
    state = request.app[STATE]
    tenant, token = await tenant_and_token(request, state)
    _staff(token)
    device_id = request.match_info["device"]
    body = await _body(request)
    unknown = set(body) - {"site", "state", "why", "at"}
    if unknown or not ({"site", "state"} & set(body)):
        raise ApiError(400, "bad_request", "give site and/or state (and why, at), nothing else")
    at, why = _at(body), _text(body, "why")
    site = _text(body, "site") if "site" in body else None
    new_state = _text(body, "state") if "state" in body else None
    await _write(
        state,
        lambda: state.store.change_device(
            tenant.id, device_id, at, site=site, state=new_state, by=_who(token), why=why
        ),
    )
    return await device_history(request)


async def replace_device(request: web.Request) -> web.Response:
    state = request.app[STATE]
    tenant, token = await tenant_and_token(request, state)
    _staff(token)
    body = await _body(request)
    if set(body) - {"new", "why", "at"} or not isinstance(body.get("new"), str):
        raise ApiError(400, "bad_request", "give new (a device id), and why and at if you like")
    old = request.match_info["device"]
    at, why = _at(body), _text(body, "why")
    await _write(
        state,
        lambda: state.store.replace_device(
            tenant.id, old, body["new"], at, by=_who(token), why=why
        ),
    )
    return await device_history(request)


async def device_history(request: web.Request) -> web.Response:
    state = request.app[STATE]
    tenant, _ = await tenant_and_token(request, state)
    device_id = request.match_info["device"]
    store = state.store
    dev = store.device_index(tenant.id, device_id)
    if dev is None:
        raise ApiError(404, "not_found", f"no device {device_id!r}")
    sites = await _run(state, store.site_history, tenant.id)
    entries = await _run(state, store.device_lifecycle, tenant.id, device_id)
    firmware = await _run(state, store.firmware_history, tenant.id, device_id)
    when = local_time(tenant)
    return web.json_response(
        {
            "tenant": tenant.name,
            "device": device_id,
            "site": sites.current(dev),
            "sites": [{"from": when(at), "site": site} for at, site in sites.changes.get(dev, [])],
            "default_site": sites.default(dev),
            "lifecycle": [
                {"at": when(e.at_ns), "state": e.state, "by": e.by, "why": e.why, "link": e.link}
                for e in entries
            ],
            "firmware": [{"at": when(at), "firmware": name} for at, name in firmware],
        }
    )


async def tiers(request: web.Request) -> web.Response:
    state = request.app[STATE]
    token = await authenticate(request, state.store, state.read_pool)
    _staff(token)
    catalog = state.config.catalog
    return web.json_response(
        {
            "upstream_guarantee": None if catalog.upstream is None else str(catalog.upstream),
            "tiers": [tier_json(name, catalog) for name in sorted(catalog.tiers)],
        }
    )


def tier_json(name: str, catalog: Any) -> dict[str, Any]:
    tier = catalog.tiers[name]
    return {
        "name": name,
        "uptime_target": str(tier.uptime_target),
        "above_upstream": catalog.above_upstream(name),
        "credit_bands": [
            {"below": str(below), "credit_percent": str(credit)}
            for below, credit in tier.credit_bands
        ],
        "response_target_min": tier.response_target_min,
        "resolve_target_min": tier.resolve_target_min,
        "support_hours": tier.support_hours.text,
        "currency": tier.currency,
        "base_fee": tier.base_fee,
        "device_price": {
            "mode": tier.device_price.mode,
            "tiers": [
                {"up_to": up_to, "price": price} if up_to is not None else {"price": price}
                for up_to, price in tier.device_price.brackets
            ],
        },
        "included_frames": tier.included_frames,
        "overage_per_1000": tier.overage_per_1000,
        "minimum": tier.minimum,
        "annual_discount": str(tier.annual_discount),
        "device_cap": tier.device_cap,
        "heartbeat_s": tier.heartbeat_s,
        "rate_fps": tier.rate_fps,
    }
