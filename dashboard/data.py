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

import numpy as np
import numpy.typing as npt
import pandas as pd

from core import query
from core.store import Store, Tenant, Token, UnknownTenant
from core.tiers import DEFAULT_TIERS, Tier
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
    return pd.DataFrame(
        {
            "device": status.ids,
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
    """Fleet uptime per hour (periods up to a week, where slots divide an hour) or per day."""
    tenant = tenant_for(store, token, tenant_name)
    hourly = end_ns - start_ns <= 7 * S_PER_DAY * NS_PER_S and S_PER_HOUR % tenant.slot_s == 0
    found = query.series(
        store,
        tenant.id,
        start_ns,
        end_ns,
        now_ns,
        granularity="hour" if hourly else "day",
    )
    return pd.DataFrame({"start": _time(found.start_ns), "uptime %": found.percent})


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
