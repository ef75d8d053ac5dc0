"""Two tenants with subscriptions, a quarter of hourly frames and closed months, for the
Billing page's tests: the three months before now's (past in every zone the tenants have,
so they can be closed), with every MRR movement but reactivation among them.

- ``acme`` (Europe/Berlin, tax 19 %): ``standard`` from the 1st of the first month, on
  ``premium`` from the 1st of the second (expansion), back on ``standard`` and annual from
  the 15th of the third (contraction); three devices, ``acme-door-2`` down for ten hours
  of the second month (a 25 % credit).
- ``globex`` (UTC, no tax): ``basic`` from the 10th of the first month with a 5-day trial
  (new), cancelled on the 20th of the third (churn); two devices.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from core.billing.subscriptions import Cancel, Change, Event, Start
from core.rollup import RollupPy
from core.store import Store
from tests.support.hourly import DAY_S, HOUR_S, ingest_hours, label, month_s, previous_month

FLEETS = {
    "acme": ["acme-door-1", "acme-door-2", "acme-hvac-1"],
    "globex": ["globex-cam-1", "globex-cam-2"],
}
ZONES = {"acme": "Europe/Berlin", "globex": "UTC"}
TAX = {"acme": "19", "globex": "0"}


def events(months: list[tuple[int, int]]) -> dict[str, list[Event]]:
    first, second, third = months
    return {
        "acme": [
            Start(date(*first, 1), "standard"),
            Change(date(*second, 1), tier="premium"),
            Change(date(*third, 15), tier="standard", term="annual"),
        ],
        "globex": [
            Start(date(*first, 10), "basic", trial_days=5),
            Cancel(date(*third, 20)),
        ],
    }


@dataclass
class Billing:
    data: Path
    now_ns: int
    #: the three months, oldest first, as ``YYYY-MM``
    months: list[str]
    closed: list[str]
    read: dict[str, str]
    staff: str
    ids: dict[str, int] = field(default_factory=dict)


def seed_billing(
    data: Path, engine: type[RollupPy] | None = None, *, close: int = 3, now_ns: int | None = None
) -> Billing:
    """The story in a new store at ``data``, its first ``close`` months closed."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    months = [previous_month(now_ns, "UTC", back) for back in (3, 2, 1)]
    down = month_s(*months[1], ZONES["acme"])[0] + 3 * DAY_S
    gap = {down + h * HOUR_S for h in range(10)}
    read, ids = {}, {}
    with Store(data, engine=engine) as store:
        for name, fleet in FLEETS.items():
            tz = ZONES[name]
            tenant = store.add_tenant(name, slot_s=3600, tz=tz, tax_rate=TAX[name])
            ids[name] = tenant.id
            for event in events(months)[name]:
                store.add_subscription_event(tenant.id, event, "test", 0)
            start = month_s(*months[0], tz)[0]
            end = month_s(*months[2], tz)[1]

            def frames(ts: int, fleet: list[str] = fleet) -> list[tuple[str, object]]:
                return [
                    (f"{d}-gw", [d, ts + 60])
                    for d in fleet
                    if not (d == "acme-door-2" and ts in gap)
                ]

            ingest_hours(store, tenant.id, start, end, frames)
            read[name] = store.add_token(tenant.id, "read")[0]
        staff = store.add_token(None, "staff")[0]
        store.checkpoint(now_ns)
        closed = []
        for year, month in months[:close]:
            store.close_month(year, month, now_ns)
            closed.append(label(year, month))
    return Billing(data, now_ns, [label(*m) for m in months], closed, read, staff, ids)
