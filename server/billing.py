"""The billing routes: subscriptions, the month close, invoices, the revenue figures and the
what-if (``docs/billing.md``, "Revenue figures and the what-if over the API").

``GET /v1/tenants/{t}/subscription`` (readers of the tenant) answers the history and the
state today; staff ``POST`` records one event. Staff ``POST /v1/months/{YYYY-MM}/close``
issues a month's invoices (409 while it cannot be closed yet). ``GET
/v1/tenants/{t}/invoices`` and ``.../invoices/{number}`` (readers of the tenant; JSON, or CSV
with ``Accept: text/csv``, both from :mod:`core.billing.export`); another tenant's number is
404 exactly as a number that does not exist. Staff ``GET /v1/revenue`` and ``GET
/v1/what-if`` answer :mod:`core.billing.report`'s documents, as ``uptally revenue`` and
``uptally what-if`` print them.

Reads run in the read pool; the subscription event and the close go to the writer thread.
"""

from __future__ import annotations

import json
import time
from datetime import date
from typing import Any

from aiohttp import web

from core import zones
from core.billing import report
from core.billing.export import invoice_json, invoices_csv
from core.billing.subscriptions import Cancel, Change, Event, Start, state_on
from core.store import Tenant
from core.store.store import PREFIX
from server.api import _param, _run, local_time, tenant_and_token
from server.auth import authenticate
from server.errors import ApiError
from server.sla import _body, _staff, _who, _write
from server.state import STATE, ServerState

CSV = "text/csv"
_EVENT_KEYS = {
    "start": {"kind", "on", "tier", "term", "trial_days"},
    "change": {"kind", "on", "tier", "term"},
    "cancel": {"kind", "on"},
}


# --- subscriptions ------------------------------------------------------------------------------


def _subscription_json(state: ServerState, tenant: Tenant) -> dict[str, Any]:
    """The history as stored and the state on the tenant's local today (read-pool work)."""
    store = state.store
    records = store.subscription_records(tenant.id)
    history = store.subscription(tenant.id)
    today = zones.local_date(time.time_ns(), tenant.tz)
    now = state_on(history, today)
    when = local_time(tenant)
    return {
        "tenant": tenant.name,
        "zone": tenant.tz,
        "currency": tenant.currency,
        "events": [
            {
                "kind": r["kind"],
                "on": r["on"],
                "tier": r["tier"],
                "term": r["term"],
                "trial_days": r["trial_days"],
                "recorded_at": when(r["recorded_ns"]),
                "by": r["by"],
            }
            for r in records
        ],
        "today": {
            "date": today.isoformat(),
            "subscribed": now is not None,
            "tier": None if now is None else now.tier,
            "term": None if now is None else now.term,
            "trial": None if now is None else now.trial,
        },
    }


async def subscription(request: web.Request) -> web.Response:
    state = request.app[STATE]
    tenant, _ = await tenant_and_token(request, state)
    return web.json_response(await _run(state, _subscription_json, state, tenant))


def _event(body: dict[str, Any]) -> Event:
    """The event of a POST body, or 400 saying what is wrong with its shape (the rules of
    the history are the store's, which answers their refusal)."""
    kind = body.get("kind")
    if kind not in _EVENT_KEYS:
        raise ApiError(400, "bad_request", 'kind must be "start", "change" or "cancel"')
    unknown = sorted(set(body) - _EVENT_KEYS[kind])
    if unknown:
        raise ApiError(400, "bad_request", f"a {kind} takes no {', '.join(unknown)}")
    on = body.get("on")
    try:
        day = date.fromisoformat(on) if isinstance(on, str) else None
    except ValueError:
        day = None
    if day is None:
        raise ApiError(400, "bad_request", f"on must be a local date YYYY-MM-DD, not {on!r}")
    if kind == "start":
        if "tier" not in body:
            raise ApiError(400, "bad_request", "a start needs a tier")
        return Start(day, body["tier"], body.get("term", "monthly"), body.get("trial_days", 0))
    if kind == "change":
        return Change(day, body.get("tier"), body.get("term"))
    return Cancel(day)


async def add_subscription_event(request: web.Request) -> web.Response:
    state = request.app[STATE]
    tenant, token = await tenant_and_token(request, state)
    _staff(token)
    event = _event(await _body(request))
    now = time.time_ns()
    await _write(
        state, lambda: state.store.add_subscription_event(tenant.id, event, _who(token), now)
    )
    return web.json_response(await _run(state, _subscription_json, state, tenant), status=201)


# --- the close ------------------------------------------------------------------------------------


def _month_of(text: str, name: str = "month") -> tuple[int, int]:
    try:
        return zones.parse_month(text)
    except ValueError as exc:
        raise ApiError(400, "bad_parameter", f"{name}: {exc}") from None


async def close_month(request: web.Request) -> web.Response:
    state = request.app[STATE]
    token = await authenticate(request, state.store, state.read_pool)
    _staff(token)
    label = request.match_info["month"]
    year, month = _month_of(label)
    body = await _body(request) if request.can_read_body else {}
    if set(body) - {"prefix"}:
        raise ApiError(400, "bad_request", "the body takes only prefix")
    prefix = body.get("prefix", state.config.invoice_prefix)
    if not (isinstance(prefix, str) and PREFIX.fullmatch(prefix)):
        raise ApiError(400, "bad_request", "prefix must be 1-16 of A-Z, 0-9 and -")
    now = time.time_ns()
    try:
        issued = await state.writer.call(lambda: state.store.close_month(year, month, now, prefix))
    except ValueError as exc:  # not ended in every zone, the checkpoint not past it yet
        raise ApiError(409, "not_closable", str(exc)) from None
    assert isinstance(issued, list)
    answer: dict[str, Any] = {"month": f"{year:04d}-{month:02d}"}
    answer["numbers"] = [r["number"] for r in issued]
    if not issued:
        closed = (await _run(state, state.store.closed_months)).get(answer["month"])
        answer["already_closed"] = closed is not None and closed["closed_ns"] != now
        if closed is not None:
            answer["closed_at"] = zones.iso_local(closed["closed_ns"], "UTC")
    else:
        answer["already_closed"] = False
    return web.json_response(answer)


# --- invoices -------------------------------------------------------------------------------------


def _wants_csv(request: web.Request) -> bool:
    """Whether the Accept header prefers text/csv to JSON (by q, then by order)."""
    best: tuple[float, int, str] | None = None
    for i, part in enumerate(request.headers.get("Accept", "").split(",")):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        if media.lower() in (CSV, "application/json") and q > 0:
            if best is None or (q, -i) > (best[0], -best[1]):
                best = (q, i, media.lower())
    return best is not None and best[2] == CSV


def _csv(text: str) -> web.Response:
    return web.Response(text=text, content_type=CSV, charset="utf-8")


async def invoices(request: web.Request) -> web.Response:
    state = request.app[STATE]
    tenant, _ = await tenant_and_token(request, state)
    found = await _run(state, state.store.invoices, tenant.id)
    if _wants_csv(request):
        return _csv(invoices_csv(found))
    return web.json_response(
        {"tenant": tenant.name, "invoices": [json.loads(invoice_json(r)) for r in found]}
    )


async def invoice(request: web.Request) -> web.Response:
    state = request.app[STATE]
    tenant, _ = await tenant_and_token(request, state)
    number = request.match_info["number"]
    try:
        record = await _run(state, state.store.invoice, number)
    except KeyError:
        record = None
    if record is None or record["tenant"] != tenant.id:  # another's is as none
        raise ApiError(404, "not_found", f"no invoice {number!r}")
    if _wants_csv(request):
        return _csv(invoices_csv([record]))
    return web.Response(text=invoice_json(record), content_type="application/json")


# --- revenue and the what-if ----------------------------------------------------------------------


async def revenue(request: web.Request) -> web.Response:
    state = request.app[STATE]
    token = await authenticate(request, state.store, state.read_pool)
    _staff(token)
    given = {name: _param(request, name) for name in ("from", "to")}
    missing = [name for name, value in given.items() if value is None]
    if missing:
        raise ApiError(400, "bad_parameter", f"give {' and '.join(missing)} (YYYY-MM)")
    first = _month_of(str(given["from"]), "from")
    last = _month_of(str(given["to"]), "to")
    config = state.config
    try:
        report.month_range(first, last)
    except ValueError as exc:
        raise ApiError(400, "bad_parameter", str(exc)) from None
    document = await _run(
        state, report.revenue_document, state.store, first, last, config.costs, config.arr_multiple
    )
    return web.json_response(document)


def _int_param(request: web.Request, name: str) -> int | None:
    given = _param(request, name)
    if given is None:
        return None
    try:
        return int(given)
    except ValueError:
        raise ApiError(400, "bad_parameter", f"{name} must be a whole number") from None


async def what_if(request: web.Request) -> web.Response:
    state = request.app[STATE]
    token = await authenticate(request, state.store, state.read_pool)
    _staff(token)
    tier = _param(request, "tier")
    if tier is None:
        raise ApiError(400, "bad_parameter", "give tier")
    heartbeat_s = _int_param(request, "heartbeat_s")
    days = _int_param(request, "days")
    term = _param(request, "term") or "monthly"
    try:
        counts = report.device_counts(
            _param(request, "devices"),
            _int_param(request, "devices_from"),
            _int_param(request, "devices_to"),
            _int_param(request, "devices_step"),
        )
        document = report.what_if_document(
            tier,
            state.config.tiers,
            counts,
            heartbeat_s,
            state.config.costs,
            days=30 if days is None else days,
            term=term,
        )
    except ValueError as exc:
        raise ApiError(400, "bad_parameter", str(exc)) from None
    return web.json_response(document)
