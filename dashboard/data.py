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
from core.incidents import OPEN_STATES, Incident
from core.sla import attainment
from core.sla.attainment import MonthSla
from core.store import Store, Tenant, Token, UnknownTenant
from core.tiers import DEFAULT_TIERS, Catalog, Tier
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


class AnswerRefused(Exception):
    """The server refused an answer (its ``detail``), or could not be reached."""


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
    url = f"{api.rstrip('/')}/v1/tenants/{tenant.name}/incidents/{int(incident_id)}/{action}"
    request = urllib.request.Request(
        url,
        data=json.dumps({"note": note}).encode(),
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
        raise AnswerRefused(detail or f"the server answered {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise AnswerRefused(f"cannot reach the server at {api}: {reason}") from None
