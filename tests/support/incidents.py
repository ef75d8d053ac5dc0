"""A tenant whose last two hours raised every kind of incident, for the dashboard's tests and
screenshots: fed minute by minute (``tests.watch.support.Fed``), watched after every minute
as the server watches, answered by staff and delivered to a webhook endpoint.

``acme`` (tier ``premium``: response 15 min, resolve 240 min, 24x7; zone Europe/Berlin) has
two gateways; times are minutes from ``t0``, two hours before now:

* ``acme-door-1`` is down 11..24: a device incident, resolved by its close, never
  acknowledged (response missed, resolve met);
* ``acme-gw-2`` sends nothing 60..94: a gateway incident with ``acme-cam-1`` and
  ``acme-cam-2`` attached, acknowledged by staff at 70, resolved by its close;
* ``acme-door-2`` is down from 41: acknowledged by staff at 49, still open;
* ``acme-hvac-1`` is down from 111: open, unanswered (response pending at ``now``).

``globex`` has one device incident of its own, so that a leak is easy to spot.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from core.rollup import RollupPy
from core.store import Store
from core.tiers import DEFAULT_TIERS
from core.webhooks import Attempt
from tests.watch.support import Fed

MINUTES = 120
ACME = {
    "acme-gw-1": ["acme-door-1", "acme-door-2", "acme-hvac-1"],
    "acme-gw-2": ["acme-cam-1", "acme-cam-2"],
}
GLOBEX = {"globex-gw": ["globex-cam-1", "globex-cam-9"]}
ENDPOINT = "http://127.0.0.1:9/uptally"  # refused at once, should a live server try it
STAFF_NAME = "staff:ops"


def acme_alive(device: str, minute: int) -> bool:
    if device == "acme-door-1":
        return not 10 <= minute <= 24
    if device == "acme-door-2":
        return minute < 40
    if device == "acme-hvac-1":
        return minute < 110
    if device.startswith("acme-cam"):
        return not 60 <= minute <= 94
    return True


def globex_alive(device: str, minute: int) -> bool:
    return device != "globex-cam-9" or not 30 <= minute <= 50


@dataclass
class Incidents:
    data: Path
    t0: int  # seconds: minute 0
    now_ns: int  # minute 120, the last pass
    read: dict[str, str]
    staff: str
    #: acme's incident ids: "door-1", "door-2", "hvac-1", "gw-2", "cam-1", "cam-2"
    ids: dict[str, int]

    def ns(self, minute: float) -> int:
        return int((self.t0 + minute * 60) * 1_000_000_000)


def seed_incidents(
    data: Path, engine: type[RollupPy] | None = None, now_s: int | None = None
) -> Incidents:
    """The store of the module's story in ``data``, ending at ``now_s`` (default: now,
    rounded down to the minute)."""
    now = (int(time.time()) if now_s is None else now_s) // 60 * 60
    t0 = now - MINUTES * 60
    read: dict[str, str] = {}
    with Store(data, engine=engine, tiers=DEFAULT_TIERS) as store:
        acme = store.add_tenant("acme", plan="premium", tz="Europe/Berlin")
        globex = store.add_tenant("globex", plan="premium")
        for tenant in (acme, globex):
            read[tenant.name] = store.add_token(tenant.id, "read")[0]
        staff = store.add_token(None, "staff")[0]
        store.add_endpoint(acme.id, ENDPOINT, ["*"], "the integrator's pager")
        fed, other = Fed(store, acme, t0), Fed(store, globex, t0)
        ids: dict[str, int] = {}
        for minute in range(MINUTES):
            fed.minutes(ACME, minute, minute, acme_alive)
            other.minutes(GLOBEX, minute, minute, globex_alive)
            fed.run(minute * 60 + 45)
            other.run(minute * 60 + 45)
            for incident in store.incidents(acme.id):
                ids.setdefault(incident.subject.removeprefix("acme-"), incident.id)
            if minute == 49:
                store.answer_incident(
                    acme.id, ids["door-2"], "acknowledge", STAFF_NAME,
                    "technician on the way", fed.ns(49 * 60),
                )  # fmt: skip
            if minute == 70:
                store.answer_incident(
                    acme.id, ids["gw-2"], "acknowledge", STAFF_NAME,
                    "site uplink down, ISP ticket 4411", fed.ns(70 * 60),
                )  # fmt: skip
        _deliver(store, fed)
        store.checkpoint(fed.ns(MINUTES * 60))
    return Incidents(data, t0, fed.ns(MINUTES * 60), read, staff, ids)


def _deliver(store: Store, fed: Fed) -> None:
    """The endpoint took every event at the first attempt, but for the newest one: two
    attempts answered 503, a third is due."""
    pending = store.pending_deliveries()
    for delivery in pending[:-1]:
        event = next(e for e in store.events(fed.tenant.id) if e.id == delivery.event_id)
        store.record_attempt(
            delivery.id, Attempt(event.created_ns + 10**9, 200, "", 84), "delivered", 0
        )
    if pending:
        last = pending[-1]
        event = next(e for e in store.events(fed.tenant.id) if e.id == last.event_id)
        first = event.created_ns + 10**9
        store.record_attempt(last.id, Attempt(first, 503, "HTTP 503", 1200), "pending", first)
        second = first + 60 * 10**9
        store.record_attempt(last.id, Attempt(second, 503, "HTTP 503", 950), "pending", second)
