"""What the dashboard shows, as plain functions over a read-only store; no Streamlit here.

Whoever signs in is a ``Token``: staff see every tenant, a client's read token only its own
tenant (``Token.may_read``, the rule the read API applies too), and ingest tokens do not sign
in. Every function that reads a tenant takes the token and checks it, so no page can show a
tenant its viewer may not read. A tenant the viewer may not read and a tenant that does not
exist get the same answer, so clients cannot learn which other tenants exist.

Figures are those of the store's last checkpoint, like the read API's.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from core import query, support, zones
from core.billing.money import major_units, money_text
from core.billing.revenue import (
    CostModel,
    TenantMonths,
    arr,
    logo_churn,
    margin,
    movements,
    mrr_total,
    parse_costs,
    percent_shown,
    retention,
    valuation,
    what_if_range,
)
from core.billing.subscriptions import Term
from core.incidents import OPEN_STATES, Incident
from core.sla import attainment
from core.sla.attainment import MonthSla
from core.store import Store, Tenant, Token, UnknownTenant
from core.tiers import DEFAULT_TIERS, Catalog, Tier, decimal_of, table
from core.times import NS_PER_S, S_PER_DAY, S_PER_HOUR
from core.webhooks import Event

#: What the status column says, in the order the fleet table counts them.
STATES = ("online", "fault", "offline", "inactive")


class SignInRefused(Exception):
    """The secret is not a live read or staff token."""


class NotAllowed(Exception):
    """The viewer may not read this tenant, or (for staff only) it does not exist."""


def open_store(data: str, tiers: Mapping[str, Tier] = DEFAULT_TIERS) -> Store:
    """The store in ``data``, read-only: the dashboard never writes. Its tenants get
    ``tiers``, those ``uptally serve`` uses."""
    if not os.path.exists(os.path.join(data, "data.mdb")):
        raise FileNotFoundError(
            f"no store in {data} (uptally demo or uptally tenant add makes one)"
        )
    return Store(data, readonly=True, tiers=tiers)


def sign_in(store: Store, secret: str) -> Token:
    """The live token behind ``secret``. Asked again on every page view, so a revoked token
    stops working at once."""
    secret = secret.strip()
    token = store.authenticate(secret) if secret else None
    if token is None:
        raise SignInRefused("unknown or revoked token")
    if token.scope == "ingest":
        raise SignInRefused("that is a gateway's ingest token: sign in with a read or staff token")
    return token


def visible_tenants(store: Store, token: Token) -> list[Tenant]:
    """The tenants the viewer may read, by name."""
    store.refresh_tenants()  # tenants added since the dashboard started
    return sorted((t for t in store.tenants.values() if token.may_read(t.id)), key=_name)


def _name(tenant: Tenant) -> str:
    return tenant.name


def tenant_for(store: Store, token: Token, name: str) -> Tenant:
    """The tenant called ``name``, if the viewer may read it; else ``NotAllowed``."""
    store.refresh_tenants()
    try:
        tenant: Tenant | None = store.tenant(name)
    except UnknownTenant:
        tenant = None
    if tenant is not None and token.may_read(tenant.id):
        return tenant
    if tenant is None and token.scope == "staff":
        raise NotAllowed(f"no tenant {name!r}")
    raise NotAllowed(f"this sign-in may not read tenant {name!r}")


def _time(ns: npt.ArrayLike) -> pd.DatetimeIndex:
    return pd.to_datetime(np.asarray(ns, np.int64), unit="ns", utc=True)


def fleet(store: Store, token: Token, now_ns: int, hours: int = 24) -> pd.DataFrame:
    """One row per tenant the viewer may read: devices by state now, and fleet uptime over
    the last ``hours``."""
    rows = []
    for tenant in visible_tenants(store, token):
        status = query.current_status(store, tenant.id, now_ns)
        table = query.uptime(
            store, tenant.id, now_ns - hours * S_PER_HOUR * NS_PER_S, now_ns, now_ns
        )
        rows.append(
            {
                "tenant": tenant.name,
                "plan": tenant.plan,
                "devices": len(status.ids),
                **{state: status.state.count(state) for state in STATES},
                "uptime %": table.fleet_percent,
            }
        )
    columns = ["tenant", "plan", "devices", *STATES, "uptime %"]
    return pd.DataFrame(rows, columns=columns)


def devices(
    store: Store, token: Token, tenant_name: str, start_ns: int, end_ns: int, now_ns: int
) -> pd.DataFrame:
    """One row per device of the tenant: its state now and its uptime over the period."""
    tenant = tenant_for(store, token, tenant_name)
    status = query.current_status(store, tenant.id, now_ns)
    table = query.uptime(store, tenant.id, start_ns, end_ns, now_ns)
    n = len(status.ids)
    last_seen = _time(status.last_seen_ns)
    sites = store.site_history(tenant.id)
    return pd.DataFrame(
        {
            "device": status.ids,
            "site": [sites.current(dev) for dev in range(n)],
            "status": status.state,
            "last seen": last_seen.where(status.last_seen_ns >= 0),
            "battery %": status.battery,
            "rssi dBm": status.rssi,
            "firmware": [fw or None for fw in status.firmware],
            "uptime %": table.percent[:n],
            "up min": table.up[:n] * tenant.slot_s / 60,
            "down min": table.down[:n] * tenant.slot_s / 60,
        }
    )


def fleet_percent(devices: pd.DataFrame) -> float | None:
    """Σ up / Σ (up + down) over a ``devices`` table, as a percentage; None if nothing was
    in scope."""
    up, total = devices["up min"].sum(), devices["up min"].sum() + devices["down min"].sum()
    return float(100 * up / total) if total else None


def uptime_series(
    store: Store, token: Token, tenant_name: str, start_ns: int, end_ns: int, now_ns: int
) -> pd.DataFrame:
    """Fleet uptime per hour (periods up to a week, where slots divide an hour) or per day,
    the tenant's local hours and days, at its wall-clock times."""
    tenant = tenant_for(store, token, tenant_name)
    hourly = end_ns - start_ns <= 7 * S_PER_DAY * NS_PER_S and S_PER_HOUR % tenant.slot_s == 0
    granularity = "hour" if hourly else "day"
    found = query.series(
        store,
        tenant.id,
        start_ns,
        end_ns,
        now_ns,
        granularity=granularity,
        buckets_ns=zones.local_buckets(tenant.tz, granularity, start_ns, end_ns),
    )
    # the tenant's wall clock, without a zone: a chart draws it as given, in any browser
    local = _time(found.start_ns).tz_convert(tenant.tz).tz_localize(None)
    return pd.DataFrame({"start": local, "uptime %": found.percent})


def outages(
    store: Store,
    token: Token,
    tenant_name: str,
    start_ns: int,
    end_ns: int,
    now_ns: int,
    *,
    min_outage: int = 5,
) -> pd.DataFrame:
    """The tenant's outages of at least ``min_outage`` slots, longest first."""
    tenant = tenant_for(store, token, tenant_name)
    found = query.outages(store, tenant.id, start_ns, end_ns, now_ns, min_outage=min_outage)
    ids = store.device_ids(tenant.id)
    frame = pd.DataFrame(
        {
            "device": [ids[o.device] for o in found],
            "start": _time([o.start_ns for o in found]),
            "end": _time([o.end_ns for o in found]),
            "minutes": [o.duration_s / 60 for o in found],
            "ongoing": [o.ongoing for o in found],
        }
    )
    return frame.sort_values("minutes", ascending=False, kind="stable", ignore_index=True)


# --- SLA -------------------------------------------------------------------------------------


def months(store: Store, token: Token, tenant_name: str, now_ns: int, count: int = 12) -> list[str]:
    """The tenant's last ``count`` local months as ``YYYY-MM``, the one running first."""
    tenant = tenant_for(store, token, tenant_name)
    return [f"{y:04d}-{m:02d}" for y, m in attainment.months_back(now_ns, tenant.tz, count)][::-1]


@dataclass
class SlaMonth:
    """What the SLA page shows of one tenant's month: the figures and the tables built
    from them, times in the tenant's zone."""

    tenant: Tenant
    figures: MonthSla
    tier: Tier
    #: the tier promises more than the platform vendor guarantees (``[upstream]``)
    above_upstream: bool
    upstream: Decimal | None
    days: pd.DataFrame
    sites: pd.DataFrame
    windows: pd.DataFrame

    @property
    def attainment(self) -> str:
        """As the spec shows it: three decimals rounded down, ``n/a`` with no counted slot."""
        return _percent(attainment.shown(self.figures.attainment))

    @property
    def projection(self) -> str:
        return _percent(attainment.shown(self.figures.projection))

    @property
    def band(self) -> str:
        band = self.figures.band
        return "none" if band is None else f"below {band[0]} %: {band[1]} % credit"


def _percent(text: str | None) -> str:
    return "n/a" if text is None else f"{text} %"


def sla_month(
    store: Store, token: Token, tenant_name: str, month: str, now_ns: int, catalog: Catalog
) -> SlaMonth:
    """The tenant's SLA figures for local month ``month`` (``YYYY-MM``) as of ``now_ns``:
    a row per local day (for the calendar), per site and per maintenance window."""
    tenant = tenant_for(store, token, tenant_name)
    year, number = zones.parse_month(month)
    tier = catalog.tier(tenant.plan)
    figures = attainment.month_sla(store, tenant, year, number, now_ns, tier=tier)
    slot_min = tenant.slot_s / 60
    dates = [zones.local_date(start, tenant.tz) for start, _, _ in figures.days]
    first = dates[0] if dates else None
    days = pd.DataFrame(
        {
            "date": [d.isoformat() for d in dates],
            "day": [d.day for d in dates],
            "weekday": [d.strftime("%a") for d in dates],
            # the calendar's row: the week of the month, weeks starting on Monday
            "week": [(d.day - 1 + first.weekday()) // 7 if first else 0 for d in dates],
            "uptime %": [_exact_percent(up, down) for _, up, down in figures.days],
            "attainment": [
                _percent(attainment.shown(attainment.ratio(up, down)))
                for _, up, down in figures.days
            ],
            "up min": [up * slot_min for _, up, _ in figures.days],
            "down min": [down * slot_min for _, _, down in figures.days],
        }
    )
    sites = pd.DataFrame(
        {
            "site": [f.site for f in figures.sites],
            "devices": [f.devices for f in figures.sites],
            "attainment": [_percent(attainment.shown(f.attainment)) for f in figures.sites],
            "met": [tier.met(f.attainment) for f in figures.sites],
            "up min": [f.up * slot_min for f in figures.sites],
            "down min": [f.down * slot_min for f in figures.sites],
            "excluded min": [f.excluded * slot_min for f in figures.sites],
        }
    )
    found = store.windows(tenant.id)
    windows = pd.DataFrame(
        {
            "scope": [w.scope for w in found],
            "target": [w.target or tenant.name for w in found],
            "when": [w.describe(tenant.tz) for w in found],
            "this month": [len(w.occurrences(figures.start_ns, figures.end_ns)) for w in found],
            "reason": [w.reason for w in found],
            "by": [w.created_by for w in found],
        }
    )
    return SlaMonth(
        tenant,
        figures,
        tier,
        catalog.above_upstream(tenant.plan),
        catalog.upstream,
        days,
        sites,
        windows,
    )


def _exact_percent(up: int, down: int) -> float | None:
    """A day's uptime for the calendar's colour (a float is fine for a colour; the figure
    shown beside it is the exact one, rounded down)."""
    return 100 * up / (up + down) if up + down else None


# --- incidents and the alert log --------------------------------------------------------------

#: The columns of :func:`incidents`, in the order the page shows them.
INCIDENT_COLUMNS = [
    "id",
    "kind",
    "subject",
    "state",
    "started",
    "ended",
    "detected",
    "acknowledged",
    "resolved",
    "devices",
    "part of",
    "response min",
    "response",
    "resolve min",
    "resolve",
    "acknowledged by",
    "acknowledge note",
    "resolved by",
    "resolve note",
]


def _local_times(ns: Sequence[int], tz: str) -> pd.DatetimeIndex:
    """Instants in the tenant's zone, NaT where not (yet) set (-1)."""
    values = np.asarray(ns, np.int64)
    return _time(values).where(values >= 0).tz_convert(tz)


def _measures(incident: Incident, tier: Tier, tz: str, now_ns: int) -> dict[str, Any]:
    """Response and resolve support minutes (so far, while unanswered) and their status
    against the tier's targets, as ``GET .../incidents`` answers them."""
    out: dict[str, Any] = {}
    for name, measure in support.measures(incident, tier, tz, now_ns).items():
        out[f"{name} min"] = float(measure.shown)
        out[name] = measure.status
    return out


def incidents(
    store: Store,
    token: Token,
    tenant_name: str,
    start_ns: int,
    end_ns: int,
    now_ns: int,
    catalog: Catalog,
) -> pd.DataFrame:
    """The tenant's incidents that overlap ``[start_ns, end_ns)``, as the API lists them:
    the open ones first, then the rest, newest first. ``subject`` is the device or gateway,
    ``devices`` a gateway incident's attached devices, ``part of`` the gateway incident an
    attached device incident belongs to; response and resolve in support minutes (so far,
    while unanswered) with ``met``, ``missed``, ``pending`` or ``excluded`` against the
    tier's targets, as of ``now_ns``. Times in the tenant's zone."""
    tenant = tenant_for(store, token, tenant_name)
    tier = catalog.tier(tenant.plan)
    found = [
        i
        for i in store.incidents(tenant.id)
        if i.start_ns < end_ns and (i.end_ns < 0 or i.end_ns > start_ns) and i.detected_ns <= now_ns
    ]
    found.sort(key=lambda i: (i.state not in OPEN_STATES, -i.start_ns, -i.id))
    tz = tenant.tz

    def when(attr: str) -> pd.DatetimeIndex:
        return _local_times([getattr(i, attr) for i in found], tz)

    measures = [_measures(i, tier, tz, now_ns) for i in found]
    frame = pd.DataFrame(
        {
            "id": pd.array([i.id for i in found], dtype="int64"),
            "kind": [i.kind for i in found],
            "subject": [i.subject for i in found],
            "state": [i.state for i in found],
            "started": when("start_ns"),
            "ended": when("end_ns"),
            "detected": when("detected_ns"),
            "acknowledged": when("acknowledged_ns"),
            "resolved": when("resolved_ns"),
            "devices": [", ".join(i.devices) if i.kind == "gateway" else None for i in found],
            "part of": pd.array([i.gateway_incident or None for i in found], dtype="Int64"),
            **{
                column: [m[column] for m in measures]
                for column in ("response min", "response", "resolve min", "resolve")
            },
            "acknowledged by": [i.acknowledged_by or None for i in found],
            "acknowledge note": [i.acknowledge_note or None for i in found],
            "resolved by": [i.resolved_by or None for i in found],
            "resolve note": [i.resolve_note or None for i in found],
        },
        columns=INCIDENT_COLUMNS,
    )
    return frame


@dataclass(frozen=True)
class IncidentCompliance:
    """A tenant's response and resolve compliance for a local month, with the tier's targets
    and support hours they are measured against."""

    tenant: Tenant
    month: str
    figures: support.Compliance
    response_target_min: int
    resolve_target_min: int
    support_hours: str
    open_now: int

    @property
    def incidents(self) -> int:
        """The month's incidents: counted (met, missed, pending) and excluded."""
        r = self.figures.response
        return r.met + r.missed + r.pending + self.figures.excluded

    @property
    def response_percent(self) -> str:
        return _share(self.figures.response.share)

    @property
    def resolve_percent(self) -> str:
        return _share(self.figures.resolve.share)


def _share(share: Fraction | None) -> str:
    """A share as a percent with one decimal, rounded down (as the API's compliance)."""
    if share is None:
        return "n/a"
    tenths = Decimal(share.numerator * 1000) / share.denominator
    return f"{(tenths.to_integral_value(ROUND_DOWN) / 10):.1f} %"


def incident_compliance(
    store: Store, token: Token, tenant_name: str, month: str, now_ns: int, catalog: Catalog
) -> IncidentCompliance:
    """The month's (``YYYY-MM``, local) compliance as :func:`core.support.month_compliance`
    figures it, and the incidents open now (those attached to a gateway's not counted)."""
    tenant = tenant_for(store, token, tenant_name)
    year, number = zones.parse_month(month)
    tier = catalog.tier(tenant.plan)
    found = [i for i in store.incidents(tenant.id) if i.detected_ns <= now_ns]
    figures = support.month_compliance(
        found,
        year,
        number,
        tenant.tz,
        tier.support_hours,
        tier.response_target_min,
        tier.resolve_target_min,
        now_ns,
    )
    open_now = sum(1 for i in found if i.is_open and not i.gateway_incident)
    return IncidentCompliance(
        tenant,
        f"{year:04d}-{number:02d}",
        figures,
        tier.response_target_min,
        tier.resolve_target_min,
        tier.support_hours.text,
        open_now,
    )


#: The columns of :func:`alert_log`.
EVENT_COLUMNS = [
    "event",
    "type",
    "time",
    "subject",
    "summary",
    "deliveries",
    "attempts",
    "last status",
    "state",
]


def _subject(data: Mapping[str, Any], tenant: str) -> str:
    kind = data.get("kind")
    if isinstance(kind, str) and kind in data:
        return str(data[kind])
    for key in ("device", "gateway"):
        if key in data:
            return str(data[key])
    return tenant


def _figure(key: str, value: Any, tz: str) -> str:
    """One figure of an event's data as a person reads it: instants in the tenant's zone,
    seconds and minutes with their unit."""
    name = key.replace("_", " ")
    if isinstance(value, str) and len(value) >= 20 and value[4:5] == "-" and value[10:11] == "T":
        try:
            local = pd.Timestamp(value).tz_convert(tz)
        except ValueError:
            return f"{name} {value}"
        return f"{name} {local:%Y-%m-%d %H:%M}"
    for suffix, unit in (("_s", "s"), ("_min", "min")):
        if key.endswith(suffix):
            return f"{key.removesuffix(suffix).replace('_', ' ')} {value} {unit}"
    return f"{name} {value}"


def _summary(event_type: str, data: Mapping[str, Any], tz: str) -> str:
    """An event in a line: what happened, without what the subject column says."""
    if event_type.startswith("incident."):
        attached = data.get("devices") or []
        text = f"{data.get('kind')} incident #{data.get('id')} {data.get('state')}"
        return text + (f", {len(attached)} devices attached" if attached else "")
    if event_type.startswith("alert."):
        rule, level = data.get("rule"), data.get("level")
        said = level is None or str(level) in str(rule)  # gateway_silent: silent
        head = f"{rule}" if said else f"{rule} {level}"
        skip = ("rule", "level", "device", "gateway")
        rest = [_figure(k, v, tz) for k, v in data.items() if k not in skip]
        return ", ".join([head, *rest])
    if event_type == "device.flapping":
        return (
            f"{data.get('changes')} changes in {data.get('window_min')} min, "
            f"now {data.get('state')}"
        )
    return ", ".join(_figure(k, v, tz) for k, v in data.items())


def _delivery_state(event: Event) -> str:
    """How an event's deliveries stand: ``no endpoint``, one state, or counts of each."""
    if not event.deliveries:
        return "no endpoint"
    states = [d.state for d in event.deliveries]
    if len(set(states)) == 1:
        return states[0]
    return ", ".join(
        f"{states.count(s)} {s}" for s in ("delivered", "pending", "failed") if s in states
    )


def _last_status(event: Event) -> str | None:
    """The last attempt's answer, over the event's deliveries: an HTTP status or why there
    was none; None before any attempt."""
    tried = [a for d in event.deliveries for a in d.attempts]
    if not tried:
        return None
    last = max(tried, key=lambda a: a.at_ns)
    return str(last.status) if last.status is not None else (last.error or "no answer")


def alert_log(
    store: Store,
    token: Token,
    tenant_name: str,
    start_ns: int,
    end_ns: int,
    limit: int = 200,
) -> pd.DataFrame:
    """The tenant's alert log (``Store.events``): its events created in the period, newest
    first, at most ``limit``, each with its deliveries' attempts counted, the last answer
    and how they stand. Times in the tenant's zone."""
    tenant = tenant_for(store, token, tenant_name)
    found = store.events(tenant.id, start_ns, end_ns, limit=limit)
    sent = [json.loads(e.body).get("data") or {} for e in found]
    return pd.DataFrame(
        {
            "event": [e.name for e in found],
            "type": [e.type for e in found],
            "time": _local_times([e.created_ns for e in found], tenant.tz),
            "subject": [_subject(d, tenant.name) for d in sent],
            "summary": [_summary(e.type, d, tenant.tz) for e, d in zip(found, sent, strict=True)],
            "deliveries": [len(e.deliveries) for e in found],
            "attempts": [sum(len(d.attempts) for d in e.deliveries) for e in found],
            "last status": [_last_status(e) for e in found],
            "state": [_delivery_state(e) for e in found],
        },
        columns=EVENT_COLUMNS,
    )


def event_attempts(
    store: Store, token: Token, tenant_name: str, event: str, limit: int = 1000
) -> pd.DataFrame:
    """Every delivery attempt of one event of the alert log (``evt_...``), a row each, in
    the order they were made; a delivery not yet tried is a row without an attempt. An
    event the tenant does not have is a ``KeyError``."""
    tenant = tenant_for(store, token, tenant_name)
    wanted = next((e for e in store.events(tenant.id, limit=limit) if e.name == event), None)
    if wanted is None:
        raise KeyError(event)
    rows: list[dict[str, Any]] = []
    for d in wanted.deliveries:
        base = {"delivery": d.name, "endpoint": d.endpoint_id, "delivery state": d.state}
        if not d.attempts:
            rows.append({**base, "attempt": None, "at_ns": -1})
        for n, a in enumerate(d.attempts, 1):
            rows.append(
                {
                    **base,
                    "attempt": n,
                    "at_ns": a.at_ns,
                    "status": a.status,
                    "error": a.error or None,
                    "took ms": a.took_ms,
                }
            )
    columns = ["delivery", "endpoint", "delivery state", "attempt", "at", "status", "error"]
    columns.append("took ms")
    frame = pd.DataFrame(rows, columns=[*columns, "at_ns"])
    frame["at"] = _local_times(list(frame["at_ns"]), tenant.tz)
    frame["attempt"] = frame["attempt"].astype("Int64")
    frame["status"] = frame["status"].astype("Int64")
    frame["took ms"] = frame["took ms"].astype("Int64")
    return frame[columns]


# --- answering, through the server's API ------------------------------------------------------

ACTIONS = ("acknowledge", "resolve")
#: seconds the server has to answer
API_TIMEOUT_S = 10


class ApiRefused(Exception):
    """The server refused (its ``detail``), or could not be reached."""


class AnswerRefused(ApiRefused):
    """The server refused an answer to an incident (its ``detail``), or could not be
    reached."""


def _post(api: str, path: str, secret: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """POST ``body`` as JSON to ``api`` + ``path`` as the signed-in viewer; the answer's JSON,
    or an ``ApiRefused`` with the server's ``detail`` (or why it could not be reached)."""
    request = urllib.request.Request(
        f"{api.rstrip('/')}{path}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=API_TIMEOUT_S) as answer:
            answered: dict[str, Any] = json.loads(answer.read())
            return answered
    except urllib.error.HTTPError as error:
        with error:
            try:
                detail = json.loads(error.read()).get("detail")
            except (ValueError, AttributeError):
                detail = None
        raise ApiRefused(detail or f"the server answered {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise ApiRefused(f"cannot reach the server at {api}: {reason}") from None


def answer_incident(
    store: Store,
    token: Token,
    secret: str,
    api: str,
    tenant_name: str,
    incident_id: int,
    action: str,
    note: str,
) -> dict[str, Any]:
    """Staff ``acknowledge`` or ``resolve`` an incident with a note, through the server's API
    at ``api`` (the dashboard's store is read-only, and the server's writer owns every
    write) as the signed-in viewer (``secret``). Returns the answered incident as the API
    answers it; ``AnswerRefused`` with the server's ``detail`` (or why it could not be
    reached) if not. Only staff answer: a client's token is refused before anything is
    sent."""
    tenant = tenant_for(store, token, tenant_name)
    if token.scope != "staff":
        raise NotAllowed("only staff answer incidents")
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}")
    path = f"/v1/tenants/{tenant.name}/incidents/{int(incident_id)}/{action}"
    try:
        return _post(api, path, secret, {"note": note})
    except ApiRefused as exc:
        raise AnswerRefused(str(exc)) from None


class CloseRefused(ApiRefused):
    """The server would not close the month (its ``detail``: not ended in every zone yet,
    the checkpoint not past it), or could not be reached."""


@dataclass(frozen=True)
class Closed:
    """What the server answered a close: the numbers it issued, or that it was closed."""

    month: str
    numbers: list[str]
    already_closed: bool


def close_month(token: Token, secret: str, api: str, month: str, prefix: str = "") -> Closed:
    """Staff close local month ``month`` (``YYYY-MM``) through the server's API at ``api``:
    ``POST /v1/months/{month}/close`` (``{"prefix"}`` when given), as the signed-in viewer.
    The server's writer issues the invoices, in one transaction; ``CloseRefused`` with its
    ``detail`` when it cannot be closed yet, or when the server cannot be reached. Only
    staff close: a client's token is refused before anything is sent."""
    if token.scope != "staff":
        raise NotAllowed("only staff close a month")
    year, number = zones.parse_month(month)
    label = _label(year, number)
    body = {"prefix": prefix} if prefix else {}
    try:
        answered = _post(api, f"/v1/months/{label}/close", secret, body)
    except ApiRefused as exc:
        raise CloseRefused(str(exc)) from None
    numbers = [str(n) for n in answered.get("numbers") or []]
    return Closed(label, numbers, bool(answered.get("already_closed")))


# --- billing: invoices (staff and clients) ---------------------------------------------------


def _label(year: int, month: int) -> str:
    return f"{year:04d}-{month:02d}"


def _viewer_invoices(store: Store, token: Token) -> list[dict[str, Any]]:
    """Every issued invoice the viewer may read: all for staff, its tenant's for a client."""
    if token.scope == "staff":
        found: list[dict[str, Any]] = []
        for month in sorted(store.closed_months()):
            found += store.month_invoices(*zones.parse_month(month))
        return found
    if token.scope == "read" and token.tenant_id is not None:
        store.refresh_tenants()
        if token.tenant_id in store.tenants:
            return store.invoices(token.tenant_id)
    return []


def billing_months(store: Store, token: Token, now_ns: int, count: int = 12) -> list[str]:
    """The months the Billing page offers, newest first: for staff, every closed month and
    the last ``count`` months that have ended (UTC calendar; a month still running in some
    zone is refused by the close, which says so); for a client, the months of its invoices."""
    if token.scope != "staff":
        return sorted({r["month"] for r in _viewer_invoices(store, token)}, reverse=True)
    ended = attainment.months_back(now_ns, "UTC", count + 1)[:-1]  # not the running month
    return sorted(set(store.closed_months()) | {_label(*m) for m in ended}, reverse=True)


#: The columns of :attr:`MonthInvoices.table`, in the order the page shows them.
INVOICE_COLUMNS = [
    "number",
    "tenant",
    "name",
    "month",
    "issued",
    "currency",
    "subtotal",
    "tax",
    "total",
    "devices",
    "frames",
    "attainment",
    "credit %",
    "tier",
]


@dataclass(frozen=True)
class MonthInvoices:
    """One month's invoices as the viewer may see them, and their totals per currency.
    ``closed_ns`` is when the month was closed (None: not closed yet); ``records`` are the
    stored invoice records themselves, in issue order."""

    month: str
    closed_ns: int | None
    records: list[dict[str, Any]]
    table: pd.DataFrame
    totals: pd.DataFrame

    @property
    def closed(self) -> bool:
        return self.closed_ns is not None


def month_invoices(store: Store, token: Token, month: str) -> MonthInvoices:
    """The invoices of local month ``month`` (``YYYY-MM``): every tenant's for staff, a
    client's own for a read token (a client never learns how many others were issued). Money
    as :func:`money_text` shows it, issue times in each invoice's tenant zone."""
    year, number = zones.parse_month(month)
    label = _label(year, number)
    if token.scope == "staff":
        records = store.month_invoices(year, number)
    else:
        records = [r for r in _viewer_invoices(store, token) if r["month"] == label]
    closed = store.closed_months().get(label)
    table = pd.DataFrame(
        {
            "number": [r["number"] for r in records],
            "tenant": [r["tenant_name"] for r in records],
            "name": [r.get("display_name") or r["tenant_name"] for r in records],
            "month": [r["month"] for r in records],
            "issued": [zones.iso_local(r["issued_ns"], r.get("zone", "UTC")) for r in records],
            "currency": [r["currency"] for r in records],
            **{
                key: [money_text(r[key], r["currency"]) for r in records]
                for key in ("subtotal", "tax", "total")
            },
            "devices": pd.array([r["billable_devices"] for r in records], dtype="int64"),
            "frames": pd.array([r["frames"] for r in records], dtype="int64"),
            "attainment": [_percent(r["attainment"]) for r in records],
            "credit %": [r["credit_percent"] for r in records],
            "tier": [r["last_tier"] for r in records],
        },
        columns=INVOICE_COLUMNS,
    )
    sums: dict[str, list[int]] = {}
    for r in records:
        row = sums.setdefault(r["currency"], [0, 0, 0, 0])
        row[0] += 1
        row[1] += r["subtotal"]
        row[2] += r["tax"]
        row[3] += r["total"]
    totals = pd.DataFrame(
        [
            {
                "currency": c,
                "invoices": n,
                "subtotal": money_text(sub, c),
                "tax": money_text(tax, c),
                "total": money_text(total, c),
            }
            for c, (n, sub, tax, total) in sorted(sums.items())
        ],
        columns=["currency", "invoices", "subtotal", "tax", "total"],
    )
    return MonthInvoices(
        label, None if closed is None else closed["closed_ns"], records, table, totals
    )


def invoice_record(store: Store, token: Token, number: str) -> dict[str, Any]:
    """The issued invoice ``number`` as stored, if the viewer may read its tenant; else
    ``NotAllowed``, the same for an invoice that does not exist (a client cannot probe
    others' numbers)."""
    try:
        record = store.invoice(number)
    except KeyError:
        record = None
    if record is not None and token.may_read(record["tenant"]):
        return record
    if record is None and token.scope == "staff":
        raise NotAllowed(f"no invoice {number!r}")
    raise NotAllowed(f"this sign-in may not read invoice {number!r}")


INVOICE_LINE_COLUMNS = ["kind", "description", "quantity", "unit price", "factor", "amount"]


def invoice_lines(store: Store, token: Token, number: str) -> pd.DataFrame:
    """One invoice's lines in the contract's order: kind, description, quantity, unit
    price, factor (the decimal shown; the exact fraction beside it, ``factor exact``) and
    amount, money in the invoice's currency."""
    record = invoice_record(store, token, number)
    currency = record["currency"]
    lines = record["lines"]
    return pd.DataFrame(
        {
            "kind": [li["kind"] for li in lines],
            "description": [li["description"] for li in lines],
            "quantity": pd.array([li["quantity"] for li in lines], dtype="int64"),
            "unit price": [money_text(li["unit_price"], currency) for li in lines],
            "factor": [li["factor"] for li in lines],
            "amount": [money_text(li["amount"], currency) for li in lines],
            "factor exact": [li["factor_exact"] for li in lines],
        },
        columns=[*INVOICE_LINE_COLUMNS, "factor exact"],
    )


# --- billing: revenue figures (staff only) ---------------------------------------------------


def _staff_only(token: Token) -> None:
    """Revenue figures are the integrator's own: a client's token is refused, whatever it
    asks for."""
    if token.scope != "staff":
        raise NotAllowed("this sign-in may not read revenue figures")


@dataclass(frozen=True)
class RevenueSettings:
    """The ``[costs]`` and ``[revenue]`` tables of the config ``uptally dashboard`` was
    given: the cost model and the valuation multiple, each None when not configured;
    ``problems`` says what in them could not be read (and so is treated as not configured)."""

    costs: CostModel | None = None
    arr_multiple: Decimal | None = None
    problems: tuple[str, ...] = ()


def revenue_settings(doc: Mapping[str, Any]) -> RevenueSettings:
    """The revenue settings of a parsed TOML config: ``[costs]`` (``parse_costs``) and
    ``[revenue] arr_multiple`` (a decimal string or integer above 0; a TOML float is refused
    like every rate)."""
    problems: list[str] = []
    costs = None
    if "costs" in doc:
        try:
            costs = parse_costs(doc["costs"])
        except (TypeError, ValueError) as exc:
            problems.append(f"[costs]: {exc}")
    multiple = None
    section = doc.get("revenue")
    if section is not None:
        try:
            settings = table("revenue", section)
            unknown = sorted(set(settings) - {"arr_multiple"})
            if unknown:
                raise ValueError(f"unknown settings: {', '.join(f'revenue.{k}' for k in unknown)}")
            if "arr_multiple" in settings:
                multiple = decimal_of("revenue.arr_multiple", settings["arr_multiple"])
                if multiple <= 0:
                    raise ValueError(f"revenue.arr_multiple must be above 0, not {multiple}")
        except (TypeError, ValueError) as exc:
            multiple = None
            problems.append(f"[revenue]: {exc}")
    return RevenueSettings(costs, multiple, tuple(problems))


def load_revenue_settings(path: str | None) -> RevenueSettings:
    """:func:`revenue_settings` of the TOML file at ``path`` (None: nothing configured)."""
    if not path:
        return RevenueSettings()
    import tomllib

    with open(path, "rb") as file:
        return revenue_settings(tomllib.load(file))


def portfolio(store: Store, token: Token) -> list[TenantMonths]:
    """Every tenant's month-end MRR kept with its closed months."""
    _staff_only(token)
    store.refresh_tenants()
    return [store.kept_mrr(tid) for tid in sorted(store.tenants)]


def _closed(store: Store) -> list[tuple[int, int]]:
    return [zones.parse_month(m) for m in sorted(store.closed_months())]


MOVEMENT_KINDS = ("new", "reactivation", "expansion", "contraction", "churn")
#: The columns of :func:`mrr_history`.
MRR_COLUMNS = [
    "month",
    "currency",
    "start",
    *MOVEMENT_KINDS,
    "end",
    "reconciles",
    "arr",
    "tenants at start",
    "churned",
    "logo churn",
]


def mrr_history(store: Store, token: Token) -> pd.DataFrame:
    """MRR per closed month and currency from the month-end MRR kept with each close, with
    the month's five movements (integer minor units; churn and contraction positive sizes),
    whether they reconcile (start + new + reactivation + expansion − contraction − churn =
    end, exactly), ARR and logo churn (shown, one decimal rounded down, ``n/a`` with no
    tenant at the start). A month before the first close counts MRR 0."""
    held = portfolio(store, token)
    rows = []
    for year, month in _closed(store):
        for currency, m in movements(held, year, month).items():
            rows.append(
                {
                    "month": _label(year, month),
                    "currency": currency,
                    "start": m.start,
                    **{kind: getattr(m, kind) for kind in MOVEMENT_KINDS},
                    "end": m.end,
                    "reconciles": m.reconciles,
                    "arr": arr(m.end),
                    "tenants at start": m.tenants_at_start,
                    "churned": m.churned,
                    "logo churn": _ratio(m.logo_churn),
                }
            )
    frame = pd.DataFrame(rows, columns=MRR_COLUMNS)
    for column in ("start", *MOVEMENT_KINDS, "end", "arr", "tenants at start", "churned"):
        frame[column] = frame[column].astype("int64")
    return frame


def _ratio(ratio: Fraction | None) -> str:
    shown = percent_shown(ratio)
    return "n/a" if shown is None else f"{shown} %"


def mrr_shown(history: pd.DataFrame) -> pd.DataFrame:
    """:func:`mrr_history` with its money as text (``USD 1,234.56``), for a table."""
    shown = history.copy()
    for column in ("start", *MOVEMENT_KINDS, "end", "arr"):
        shown[column] = [
            money_text(int(v), c) for v, c in zip(history[column], history["currency"], strict=True)
        ]
    return shown


RETENTION_COLUMNS = ["month", "currency", "cohort", "nrr", "grr", "logo churn"]


def retention_history(store: Store, token: Token, months: int = 12) -> pd.DataFrame:
    """Net and gross revenue retention over ``months`` months to each closed month's end,
    and that month's logo churn, per currency: shown with one decimal rounded down, ``n/a``
    when nobody had MRR at the start (``cohort`` 0). ``nrr %``, ``grr %`` and ``logo churn
    %`` are the same ratios as floats, for a chart's line only."""
    held = portfolio(store, token)
    rows = []
    for year, month in _closed(store):
        churn = logo_churn(held, year, month)
        for currency, r in retention(held, year, month, months).items():
            rows.append(
                {
                    "month": _label(year, month),
                    "currency": currency,
                    "cohort": r.cohort,
                    "nrr": _ratio(r.net),
                    "grr": _ratio(r.gross),
                    "logo churn": _ratio(churn.get(currency)),
                    "nrr %": _float_percent(r.net),
                    "grr %": _float_percent(r.gross),
                    "logo churn %": _float_percent(churn.get(currency)),
                }
            )
    columns = [*RETENTION_COLUMNS, "nrr %", "grr %", "logo churn %"]
    return pd.DataFrame(rows, columns=columns)


def _float_percent(ratio: Fraction | None) -> float | None:
    return None if ratio is None else float(ratio * 100)


MARGIN_COLUMNS = [
    "tenant",
    "currency",
    "devices",
    "frames",
    "revenue",
    "cost",
    "margin",
    "margin %",
]


@dataclass(frozen=True)
class MonthMargins:
    """Cost and margin per invoiced tenant of a month (revenue: an invoice's subtotal,
    lines 1-5, tax is not revenue), and what could not be costed."""

    month: str
    costs: CostModel
    table: pd.DataFrame
    #: tenants invoiced in another currency than the cost model's: not costed
    other_currency: list[str]


def month_margins(store: Store, token: Token, month: str, costs: CostModel) -> MonthMargins:
    """Each tenant invoiced for ``month``: its billable devices and frames as invoiced, the
    revenue (subtotal), the cost of one tenant-month at the cost model and the margin, money
    as text; ``margin %`` = margin ÷ revenue, one decimal rounded down. A tenant invoiced in
    another currency than the costs' is listed in ``other_currency`` instead: nothing here
    converts currencies."""
    _staff_only(token)
    invoices = month_invoices(store, token, month)
    rows, other = [], []
    for r in invoices.records:
        if r["currency"] != costs.currency:
            other.append(r["tenant_name"])
            continue
        cost = costs.cost(r["billable_devices"], r["frames"])
        revenue = r["subtotal"]
        gain = margin(revenue, cost)
        rows.append(
            {
                "tenant": r["tenant_name"],
                "currency": r["currency"],
                "devices": r["billable_devices"],
                "frames": r["frames"],
                "revenue": money_text(revenue, r["currency"]),
                "cost": money_text(cost, r["currency"]),
                "margin": money_text(gain, r["currency"]),
                "margin %": _ratio(Fraction(gain, revenue) if revenue else None),
                "revenue_minor": revenue,
                "cost_minor": cost,
                "margin_minor": gain,
            }
        )
    columns = [*MARGIN_COLUMNS, "revenue_minor", "cost_minor", "margin_minor"]
    return MonthMargins(invoices.month, costs, pd.DataFrame(rows, columns=columns), other)


WHAT_IF_COLUMNS = ["devices", "frames", "revenue", "mrr", "cost", "margin", "margin %"]


def what_if_table(
    token: Token,
    catalog: Catalog,
    tier_name: str,
    device_counts: Sequence[int],
    heartbeat_s: int,
    costs: CostModel,
    days: int = 30,
    term: Term = "monthly",
) -> pd.DataFrame:
    """:func:`core.billing.revenue.what_if_range` for the tier called ``tier_name``: a row
    per device count, money as text (and in minor units, ``*_minor``, and major units for
    the chart's axis, ``margin (major)``)."""
    _staff_only(token)
    if tier_name not in catalog.tiers:
        raise ValueError(f"no tier {tier_name!r}")
    tier = catalog.tiers[tier_name]
    found = what_if_range(tier, device_counts, heartbeat_s, costs, days, term)
    c = tier.currency
    return pd.DataFrame(
        {
            "devices": [w.devices for w in found],
            "frames": [w.frames for w in found],
            "revenue": [money_text(w.revenue, c) for w in found],
            "mrr": [money_text(w.mrr, c) for w in found],
            "cost": [money_text(w.cost, c) for w in found],
            "margin": [money_text(w.margin, c) for w in found],
            "margin %": [_ratio(w.margin_ratio) for w in found],
            "revenue_minor": [w.revenue for w in found],
            "cost_minor": [w.cost for w in found],
            "margin_minor": [w.margin for w in found],
            "margin (major)": [major_units(w.margin, c) for w in found],
        }
    )


VALUATION_COLUMNS = ["currency", "month", "mrr", "arr", "multiple", "valuation"]


def valuations(store: Store, token: Token, multiple: Decimal | None) -> pd.DataFrame:
    """Per currency, at the last closed month's end: MRR, ARR (12 × MRR) and the valuation
    (ARR × ``multiple``, rounded half-up), money as text; ``valuation`` is None when no
    multiple is configured (``[revenue] arr_multiple``)."""
    held = portfolio(store, token)
    closed = _closed(store)
    rows = []
    if closed:
        year, month = closed[-1]
        for currency, mrr in sorted(mrr_total(held, year, month).items()):
            yearly = arr(mrr)
            rows.append(
                {
                    "currency": currency,
                    "month": _label(year, month),
                    "mrr": money_text(mrr, currency),
                    "arr": money_text(yearly, currency),
                    "multiple": None if multiple is None else str(multiple),
                    "valuation": None
                    if multiple is None
                    else money_text(valuation(yearly, multiple), currency),
                }
            )
    return pd.DataFrame(rows, columns=VALUATION_COLUMNS)
