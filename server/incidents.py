"""The incident and alert-rule routes.

``GET /v1/tenants/{t}/incidents?from=&to=&state=&kind=``: the incidents that overlap the
period (default the last 30 days), newest first; ``GET .../incidents/{id}``; staff
``POST .../incidents/{id}/acknowledge`` (a note optional) and ``.../resolve`` (a note
required). ``GET /v1/tenants/{t}/alert-rules``: the tier's rules, the tenant's overrides and
what is in force; staff ``PUT`` replaces the overrides. Times are in the tenant's zone.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from core import support, zones
from core.incidents import KINDS, STATES, Incident
from core.store import Tenant
from server.api import _param, _period, _run, local_time, tenant_and_token
from server.errors import ApiError
from server.sla import _body, _staff, _who, _write
from server.state import STATE, ServerState

#: the default period of the incident list
DEFAULT_DAYS = 30


def incident_json(
    state: ServerState, tenant: Tenant, incident: Incident, now_ns: int | None = None
) -> dict[str, Any]:
    """An incident with its response and resolve times in support minutes (so far, if not
    answered yet) and where each stands against the tier's target."""
    now = time.time_ns() if now_ns is None else now_ns
    out = incident.to_json(tenant.name, local_time(tenant))
    for name, measure in support.measures(incident, tenant.tier, tenant.tz, now).items():
        out[f"{name}_min"] = measure.shown
        out[f"{name}_target_min"] = measure.target_min
        out[f"{name}_status"] = measure.status
    return out


def _choices(request: web.Request, name: str, allowed: tuple[str, ...]) -> set[str] | None:
    given = _param(request, name)
    if given is None:
        return None
    wanted = {v.strip() for v in given.split(",") if v.strip()}
    bad = sorted(wanted - set(allowed))
    if bad or not wanted:
        raise ApiError(400, "bad_parameter", f"{name} must be one or more of {', '.join(allowed)}")
    return wanted


async def incidents(request: web.Request) -> web.Response:
    state = request.app[STATE]
    tenant, _ = await tenant_and_token(request, state)
    start, end, _ = _period(request, default_days=DEFAULT_DAYS)
    states, kinds = _choices(request, "state", STATES), _choices(request, "kind", KINDS)
    found = await _run(state, state.store.incidents, tenant.id)
    shown = [
        incident_json(state, tenant, i)
        for i in reversed(found)
        if i.start_ns < end
        and (i.end_ns < 0 or i.end_ns > start)
        and (states is None or i.state in states)
        and (kinds is None or i.kind in kinds)
    ]
    return web.json_response({"tenant": tenant.name, "zone": tenant.tz, "incidents": shown})


def _incident_id(request: web.Request) -> int:
    try:
        return int(request.match_info["incident"])
    except ValueError:
        raise ApiError(404, "not_found", "no such incident") from None


async def incident(request: web.Request) -> web.Response:
    state = request.app[STATE]
    tenant, _ = await tenant_and_token(request, state)
    incident_id = _incident_id(request)
    try:
        found = await _run(state, state.store.incident, tenant.id, incident_id)
    except KeyError:
        raise ApiError(404, "not_found", f"no incident {incident_id}") from None
    return web.json_response(incident_json(state, tenant, found))


async def _answer(request: web.Request, action: str) -> web.Response:
    state = request.app[STATE]
    tenant, token = await tenant_and_token(request, state)
    _staff(token)
    incident_id = _incident_id(request)
    body = await _body(request) if request.can_read_body else {}
    note = body.get("note", "")
    if not isinstance(note, str) or len(note) > 2000:
        raise ApiError(400, "bad_request", "note must be a string of at most 2000 characters")
    now = time.time_ns()

    def answer() -> Incident:
        return state.store.answer_incident(tenant.id, incident_id, action, _who(token), note, now)

    try:
        answered = await _write(state, answer)
    except KeyError:
        raise ApiError(404, "not_found", f"no incident {incident_id}") from None
    if state.watcher is not None and state.watcher.on_events is not None:
        state.watcher.on_events()
    return web.json_response(incident_json(state, tenant, answered))


async def acknowledge(request: web.Request) -> web.Response:
    return await _answer(request, "acknowledge")


async def resolve(request: web.Request) -> web.Response:
    return await _answer(request, "resolve")


async def alert_rules(request: web.Request) -> web.Response:
    state = request.app[STATE]
    tenant, _ = await tenant_and_token(request, state)
    return web.json_response(_rules_json(tenant))


def _rules_json(tenant: Tenant) -> dict[str, Any]:
    return {
        "tenant": tenant.name,
        "tier": tenant.plan,
        "tier_rules": tenant.tier.alerts.to_json(),
        "overrides": tenant.alerts,
        "rules": tenant.alert_rules.to_json(),
    }


async def set_alert_rules(request: web.Request) -> web.Response:
    state = request.app[STATE]
    tenant, token = await tenant_and_token(request, state)
    _staff(token)
    body = await _body(request)
    overrides = body.get("overrides", body)
    changed = await _write(state, lambda: state.store.set_tenant(tenant.id, alerts=overrides))
    return web.json_response(_rules_json(changed))


async def compliance(request: web.Request) -> web.Response:
    """``GET /v1/tenants/{t}/incidents/compliance?month=YYYY-MM``: the month's response and
    resolve compliance against the tier's targets (docs/sla.md)."""
    state = request.app[STATE]
    tenant, _ = await tenant_and_token(request, state)
    given = _param(request, "month")
    now = time.time_ns()
    try:
        year, month = zones.parse_month(given) if given else zones.month_of(now, tenant.tz)
    except ValueError as exc:
        raise ApiError(400, "bad_parameter", f"month: {exc}") from None
    found = await _run(state, state.store.incidents, tenant.id)
    tier = tenant.tier
    figures = support.month_compliance(
        found,
        year,
        month,
        tenant.tz,
        tier.support_hours,
        tier.response_target_min,
        tier.resolve_target_min,
        now,
    )

    def tally(t: support.Tally, target: int) -> dict[str, Any]:
        share = t.share
        return {
            "target_min": target,
            "met": t.met,
            "missed": t.missed,
            "pending": t.pending,
            "share": support.shown_share(share),
        }

    return web.json_response(
        {
            "tenant": tenant.name,
            "month": f"{year:04d}-{month:02d}",
            "zone": tenant.tz,
            "support_hours": tier.support_hours.text,
            "response": tally(figures.response, tier.response_target_min),
            "resolve": tally(figures.resolve, tier.resolve_target_min),
            "excluded": figures.excluded,
        }
    )
