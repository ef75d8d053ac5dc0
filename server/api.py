"""The read API (JSON). Staff tokens read every tenant; a tenant's read token only its own.

Times a person reads (series buckets, outages, last seen) are ISO 8601 in the tenant's zone
(``Z`` for a UTC tenant), and day and hour buckets are the tenant's local ones; a period's
``from``/``to`` are answered in UTC. ``from``/``to`` accept ISO 8601 or Unix seconds.
Answers reflect the store's last checkpoint (at most ``checkpoint_interval_s`` old).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from core import query, times, zones
from core.rollup import ENGINE
from core.sla.history import state_at
from core.store import Tenant, Token, UnknownTenant
from core.times import NS_PER_DAY, NS_PER_MS, S_PER_HOUR, iso
from server.auth import authenticate, require_reader
from server.errors import ApiError
from server.state import STATE, ServerState

#: The longest period one query may span; longer ones are asked for piece by piece.
MAX_PERIOD_DAYS = 366
#: The longest outage ``min_outage`` may ask for, in slots.
MAX_MIN_OUTAGE = 10_000


def parse_time(value: str, name: str) -> int:
    """A query's time (``core.times.parse_time``), or 400 naming the parameter."""
    try:
        return times.parse_time(value)
    except ValueError as exc:
        raise ApiError(400, "bad_parameter", f"{name} {exc}") from None


async def _tenant(request: web.Request, state: ServerState) -> Tenant:
    return (await tenant_and_token(request, state))[0]


async def tenant_and_token(request: web.Request, state: ServerState) -> tuple[Tenant, Token]:
    """The path's tenant, if the request's token may read it, and the token."""
    token = await authenticate(request, state.store, state.read_pool)
    name = request.match_info["tenant"]
    # the CLI beside the server may have added or changed tenants (a zone, a tier): answer
    # with what is stored, not with what this process read before
    await _run(state, state.store.refresh_changed_tenants)
    try:
        tenant = state.store.tenant(name)
    except UnknownTenant:
        if token.scope != "staff":  # do not tell others which tenants exist
            raise ApiError(403, "forbidden", "this token may not read this tenant") from None
        raise ApiError(404, "not_found", f"no tenant {name!r}") from None
    require_reader(token, tenant.id)
    return tenant, token


def local_time(tenant: Tenant) -> Callable[[int], str | None]:
    """Times as a person of the tenant reads them: ISO 8601 in its zone (``Z`` for UTC)."""
    if tenant.tz == "UTC":
        return iso
    return lambda ns: zones.iso_local(ns, tenant.tz) if ns >= 0 else None


def _param(request: web.Request, name: str) -> str | None:
    """A query parameter given at most once."""
    values = request.query.getall(name, [])
    if len(values) > 1:
        raise ApiError(400, "bad_parameter", f"{name} is given more than once")
    return values[0] if values else None


def _period(request: web.Request, default_days: int = 1) -> tuple[int, int, int]:
    now = time.time_ns()
    to, since = _param(request, "to"), _param(request, "from")
    end = parse_time(to, "to") if to is not None else now
    start = parse_time(since, "from") if since is not None else end - default_days * NS_PER_DAY
    if start >= end:
        raise ApiError(400, "bad_parameter", "from must be before to")
    if end - start > MAX_PERIOD_DAYS * NS_PER_DAY:
        raise ApiError(
            400, "bad_parameter", f"a period spans at most {MAX_PERIOD_DAYS} days: ask in parts"
        )
    return start, end, now


def _devices(request: web.Request, state: ServerState, tenant: Tenant) -> list[int] | None:
    wanted = list(dict.fromkeys(request.query.getall("device", [])))  # each device once
    if not wanted:
        return None
    indexes = []
    for device_id in wanted:
        dev = state.store.device_index(tenant.id, device_id)
        if dev is None:
            raise ApiError(404, "not_found", f"no device {device_id!r}")
        indexes.append(dev)
    return indexes


async def _run(state: ServerState, fn: Any, *args: Any, **kwargs: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(
        state.read_pool, lambda: fn(*args, **kwargs)
    )


def _num(value: float) -> float | None:
    return None if math.isnan(value) else round(float(value), 4)


async def healthz(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return web.json_response(
        {
            "status": "ok",
            "engine": ENGINE,
            "writer_backlog": state.writer.backlog,
        }
    )


async def metrics(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return web.Response(
        body=state.metrics.render(),
        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
    )


async def tenants(request: web.Request) -> web.Response:
    state = request.app[STATE]
    token = await authenticate(request, state.store, state.read_pool)
    if token.scope not in ("staff", "read"):
        raise ApiError(403, "forbidden", "this token may not read")
    await _run(state, state.store.refresh_tenants)
    visible = [t for t in state.store.tenants.values() if token.may_read(t.id)]
    catalog = state.config.catalog
    return web.json_response(
        {
            "tenants": [
                {
                    "name": t.name,
                    "display_name": t.display_name or t.name,
                    "plan": t.plan,
                    "tier": t.plan,
                    "tier_above_upstream": catalog.above_upstream(t.plan),
                    "tz": t.tz,
                    "currency": t.currency,
                    "tax_rate": t.tax_rate,
                    "slot_s": t.slot_s,
                    "heartbeat_s": t.heartbeat_s,
                    "device_cap": t.device_cap,
                    "devices": len(state.store.device_ids(t.id)),
                }
                for t in visible
            ]
        }
    )


async def devices(request: web.Request) -> web.Response:
    state = request.app[STATE]
    tenant = await _tenant(request, state)
    now = time.time_ns()
    status = await _run(state, query.current_status, state.store, tenant.id, now)
    devstate = await _run(state, state.store.devstate, tenant.id)
    sites = await _run(state, state.store.site_history, tenant.id)
    lifecycle = await _run(state, state.store.lifecycle, tenant.id)
    when = local_time(tenant)
    out = []
    for i, device_id in enumerate(status.ids):
        retired = int(devstate["retired_ms"][i])
        first_ns = int(devstate["first_ms"][i]) * NS_PER_MS
        out.append(
            {
                "id": device_id,
                "site": sites.current(i) or None,
                "status": status.state[i],
                "last_seen": when(int(status.last_seen_ns[i])),
                "last_status_code": int(status.last_status[i]),
                "battery": _num(status.battery[i]),
                "rssi": _num(status.rssi[i]),
                "firmware": status.firmware[i] or None,
                "lifecycle": "retired"
                if 0 <= retired * NS_PER_MS <= now
                else state_at(lifecycle.get(i, []), now, first_ns),
            }
        )
    return web.json_response({"tenant": tenant.name, "devices": out})


async def uptime(request: web.Request) -> web.Response:
    state = request.app[STATE]
    tenant = await _tenant(request, state)
    start, end, now = _period(request)
    devs = _devices(request, state, tenant)
    granularity = _param(request, "granularity")
    body: dict[str, Any] = {
        "tenant": tenant.name,
        "from": iso(start),
        "to": iso(end),
        "slot_s": tenant.slot_s,
    }
    if granularity is not None:
        if granularity not in ("day", "hour"):
            raise ApiError(400, "bad_parameter", "granularity must be day or hour")
        if granularity == "hour" and S_PER_HOUR % tenant.slot_s:
            raise ApiError(
                400,
                "bad_parameter",
                f"hour buckets need a slot width that divides an hour, "
                f"and this tenant's slots are {tenant.slot_s} s",
            )
        s = await _run(
            state,
            query.series,
            state.store,
            tenant.id,
            start,
            end,
            now,
            granularity=granularity,
            devices=devs,
            buckets_ns=zones.local_buckets(tenant.tz, granularity, start, end),
        )
        body["granularity"] = granularity
        body["zone"] = tenant.tz
        when = local_time(tenant)
        body["series"] = [
            {"start": when(int(t)), "up": int(u), "down": int(d), "percent": _num(p)}
            for t, u, d, p in zip(s.start_ns, s.up, s.down, s.percent, strict=True)
        ]
        return web.json_response(body)
    table = await _run(state, query.uptime, state.store, tenant.id, start, end, now, devices=devs)
    ids = state.store.device_ids(tenant.id)
    body["fleet_percent"] = table.fleet_percent
    body["devices"] = [
        {"id": ids[int(d)], "up": int(u), "down": int(dn), "excluded": int(x), "percent": _num(p)}
        for d, u, dn, x, p in zip(
            table.devices, table.up, table.down, table.excluded, table.percent, strict=True
        )
    ]
    return web.json_response(body)


async def outages(request: web.Request) -> web.Response:
    state = request.app[STATE]
    tenant = await _tenant(request, state)
    start, end, now = _period(request, default_days=7)
    devs = _devices(request, state, tenant)
    given = _param(request, "min_outage")
    try:
        min_outage = 5 if given is None else int(given)
    except ValueError:
        min_outage = 0
    if not 1 <= min_outage <= MAX_MIN_OUTAGE:
        raise ApiError(
            400,
            "bad_parameter",
            f"min_outage must be a whole number of slots, 1..{MAX_MIN_OUTAGE:,}",
        )
    found = await _run(
        state,
        query.outages,
        state.store,
        tenant.id,
        start,
        end,
        now,
        min_outage=min_outage,
        devices=devs,
    )
    ids = state.store.device_ids(tenant.id)
    when = local_time(tenant)
    return web.json_response(
        {
            "tenant": tenant.name,
            "zone": tenant.tz,
            "from": iso(start),
            "to": iso(end),
            "outages": [
                {
                    "device": ids[o.device],
                    "start": when(o.start_ns),
                    "end": when(o.end_ns),
                    "duration_s": o.duration_s,
                    "ongoing": o.ongoing,
                }
                for o in found
            ],
        }
    )


__all__ = ["devices", "healthz", "metrics", "outages", "tenants", "uptime"]
