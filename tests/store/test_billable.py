"""Billable devices of a local month: an accepted frame in it, not retired before it began,
exact when the month begins and ends inside a UTC day (Europe/Berlin, +01:00 in March)."""

from __future__ import annotations

import msgpack

from core import query, zones
from core.store import Store
from core.times import NS_PER_S

MARCH = zones.month_bounds(2026, 3, "Europe/Berlin")  # 02-28 23:00Z to 03-31 22:00Z


def test_billable_devices_of_a_berlin_month(tmp_path, engine) -> None:
    start_s, end_s = MARCH[0] // NS_PER_S, MARCH[1] // NS_PER_S
    frames = {
        "late-feb": start_s - 1,  # 23:59:59 local on 02-28: February's
        "early-mar": start_s,  # 00:00 local on 03-01, still 02-28 in UTC: March's
        "last-mar": end_s - 1,  # 23:59:59 local on 03-31 (22:00Z - 1 s): March's
        "early-apr": end_s,  # 00:00 local on 04-01: April's
        "retired": start_s + 3600,
        "retired-mid": start_s + 3600,
    }
    with Store(tmp_path / "db", engine=engine) as store:
        tenant = store.add_tenant("acme", tz="Europe/Berlin")
        for device, t in frames.items():
            body = msgpack.packb({"gateway": "gw", "frames": [[device, t]]})
            assert store.ingest(tenant.id, body, (t + 1) * NS_PER_S).accepted == 1
        store.set_lifecycle(tenant.id, "retired", "retired", (start_s - 86_400) * NS_PER_S)
        store.set_lifecycle(tenant.id, "retired-mid", "retired", (start_s + 7200) * NS_PER_S)
        store.checkpoint((end_s + 3600) * NS_PER_S)
        ids = store.device_ids(tenant.id)
        billable = [ids[d] for d in query.billable_devices(store, tenant.id, *MARCH)]
    assert billable == ["early-mar", "last-mar", "retired-mid"]
