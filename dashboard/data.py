"""What the dashboard shows, as plain functions over a read-only store; no Streamlit here.

Whoever signs in is a ``Token``: staff see every tenant, a client's read token only its own
tenant (``Token.may_read``, the rule the read API applies too), and ingest tokens do not sign
in. Every function that reads a tenant takes the token and checks it, so no page can show a
tenant its viewer may not read. A tenant the viewer may not read and a tenant that does not
exist get the same answer, so clients cannot learn which other tenants exist.

Figures are those of the store's last checkpoint, like the read API's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import numpy.typing as npt
import pandas as pd

from core import query, zones
from core.sla import attainment
from core.sla.attainment import MonthSla
from core.store import Store, Tenant, Token, UnknownTenant
from core.tiers import DEFAULT_TIERS, Catalog, Tier
from core.times import NS_PER_S, S_PER_DAY, S_PER_HOUR

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
