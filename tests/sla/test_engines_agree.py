"""Both engines give the same SLA figures: the Python twin is the oracle.

The same traffic (the demo fleet: gaps, faults, sub-second times) goes into a store per
engine, with the same windows, site moves and lifecycle changes; every figure of the month,
its days and sites must be equal. Collected only where the extension exists (conftest.py).
"""

from __future__ import annotations

import pytest

from core.fleet import demo_batches
from core.rollup import RollupC, RollupPy
from core.sla.attainment import month_sla
from core.sla.windows import Window
from core.store import Store

S = 10**9
NOW_S = 1_773_964_800  # 2026-03-20T00:00Z: a month still running


def figures(tmp_path, engine, tz: str) -> list[dict]:
    with Store(tmp_path / engine.__name__ / tz.replace("/", "_"), engine=engine) as store:
        tenant = store.add_tenant("acme", tz=tz)
        for body in demo_batches(30, 26, NOW_S, seed=7):
            store.ingest(tenant.id, body, NOW_S * S)
        store.checkpoint(NOW_S * S)
        ids = store.device_ids(tenant.id)
        store.set_site(tenant.id, ids[3], "Hall B", (NOW_S - 20 * 3600) * S)
        store.set_lifecycle(tenant.id, ids[5], "maintenance", (NOW_S - 10 * 3600) * S)
        store.set_lifecycle(tenant.id, ids[5], "active", (NOW_S - 9 * 3600) * S)
        store.set_lifecycle(tenant.id, ids[7], "retired", (NOW_S - 5 * 3600) * S)
        for spec in (
            {
                "scope": "tenant",
                "weekdays": "Mon-Sun",
                "at": "02:30",
                "duration_min": 45,
                "zone": tz,
            },
            {
                "scope": "site",
                "site": "Hall B",
                "start": "2026-03-19T10:00:00Z",
                "end": "2026-03-19T12:30:00Z",
            },
            {
                "scope": "device",
                "device": ids[9],
                "start": "2026-03-19T01:00:00+01:00",
                "end": "2026-03-19T04:00:00+01:00",
            },
        ):
            store.add_window(tenant.id, Window.from_spec(spec))
        return [
            month_sla(store, tenant, 2026, 3, NOW_S * S, site=site).to_json()
            for site in (None, "Hall B", "site-000")
        ]


@pytest.mark.parametrize("tz", ["UTC", "Asia/Kolkata"])
def test_both_engines_give_the_same_sla_figures(tmp_path, tz) -> None:
    oracle = figures(tmp_path, RollupPy, tz)
    assert oracle[0]["down"] > 0 and oracle[0]["excluded"] > 0  # the traffic has something
    assert figures(tmp_path, RollupC, tz) == oracle
