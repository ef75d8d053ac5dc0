"""Month attainment, credit and projection (docs/service.md, "SLA attainment of a month" and
"Decided edges"), hand-computed over hour slots so every figure can be counted on fingers.

Tenants here have ``slot_s = 3600``: a frame at ``h:00`` covers slot ``h`` (heartbeat 60 s),
so a device is up in exactly the hours it sent a frame. March 2026 in UTC is 31 × 24 = 744
slots. The standard tier's target is 99.5 % with bands 99.5 → 10, 99.0 → 25, 95.0 → 50.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import msgpack
import pytest

from core.sla import attainment
from core.sla.attainment import month_sla, shown
from core.sla.windows import Window
from core.store import Store

H = 3600
S = 10**9
MAR = 1_772_323_200  # 2026-03-01T00:00Z
APR = MAR + 31 * 24 * H  # 2026-04-01T00:00Z
AFTER = (APR + 2 * 24 * H) * S  # a "now" once March has ended everywhere
FAR = (APR + 400 * 24 * H) * S  # the checkpoints' cut: every fed frame is in the day blocks


def hour(day: int, h: int) -> int:
    """Unix seconds of March ``day`` (1-based), ``h``:00 UTC."""
    return MAR + ((day - 1) * 24 + h) * H


def feed(store: Store, tenant: int, fleet: dict[str, object], first: int, last: int) -> None:
    """Hourly frames for each device from hour ``first`` to ``last`` (Unix s, exclusive), but
    not in the hours ``skip(t)`` says; ``fleet`` maps device -> (gateway, skip)."""
    for day_start in range(first, last, 24 * H):
        by_gateway: dict[str, list] = {}
        for device, (gateway, skip) in fleet.items():
            for t in range(day_start, min(day_start + 24 * H, last), H):
                if not skip(t):
                    by_gateway.setdefault(gateway, []).append([device, t])
        now = (min(day_start + 24 * H, last) + 60) * S
        for gateway, frames in by_gateway.items():
            body = msgpack.packb({"gateway": gateway, "frames": frames})
            assert store.ingest(tenant, body, now).rejected == 0
    store.checkpoint(FAR)


def never(t: int) -> bool:
    return False


def down_on_5th(t: int) -> bool:
    """Down from March 5 10:00 to 20:00 UTC: 10 slots."""
    return hour(5, 10) <= t < hour(5, 20)


@pytest.fixture
def store(engine, tmp_path):
    s = Store(tmp_path / "db", engine=engine)
    yield s
    s.close()


def march(store: Store, tz: str = "UTC", **fleet: object):
    tenant = store.add_tenant("acme", slot_s=H, tz=tz)
    feed(store, tenant.id, fleet, MAR - 24 * H, APR + 24 * H)
    return tenant


def test_attainment_is_up_over_up_and_down_shown_rounded_down(store) -> None:
    tenant = march(store, a=("gw-1", down_on_5th))
    sla = month_sla(store, tenant, 2026, 3, AFTER)
    assert (sla.up, sla.down, sla.excluded) == (734, 10, 0)
    # 734 / 744 = 98.6559...%: shown 98.655, under 99.0 and 99.5 -> the 25 % band wins
    assert sla.attainment == Fraction(73400, 744)
    assert shown(sla.attainment) == "98.655"
    assert not sla.met
    assert sla.band == (Decimal("99.0"), Decimal("25"))
    assert sla.credit_percent == Decimal("25")
    assert sla.complete and sla.projection == sla.attainment


def test_a_tenant_window_excludes_every_slot_it_touches(store) -> None:
    tenant = march(store, a=("gw-1", down_on_5th), b=("gw-1", never))
    # 10:30 to 12:00 touches slots 10 and 11 of both devices; 20:00-21:00 only slot 20
    for start, end in (("10:30", "12:00"), ("20:00", "21:00")):
        store.add_window(
            tenant.id,
            Window.from_spec(
                {
                    "scope": "tenant",
                    "start": f"2026-03-05T{start}:00Z",
                    "end": f"2026-03-05T{end}:00Z",
                }
            ),
        )
    sla = month_sla(store, tenant, 2026, 3, AFTER)
    # a: 8 down, 6 excluded... per device: a excluded 3 (10, 11, 20), down 8; b excluded 3
    assert (sla.up, sla.down, sla.excluded) == (744 * 2 - 6 - 8, 8, 6)
    assert sla.attainment == Fraction(100 * 1474, 1482)


def test_a_window_ending_at_a_slot_start_does_not_touch_it(store) -> None:
    tenant = march(store, a=("gw-1", down_on_5th))
    store.add_window(
        tenant.id,
        Window.from_spec(
            {"scope": "tenant", "start": "2026-03-05T09:00:00Z", "end": "2026-03-05T10:00:00Z"}
        ),
    )
    sla = month_sla(store, tenant, 2026, 3, AFTER)
    assert (sla.up, sla.down, sla.excluded) == (733, 10, 1)  # slot 9 only, which was up


def test_device_and_site_windows_apply_to_their_devices_only(store) -> None:
    tenant = march(store, a=("gw-1", down_on_5th), b=("gw-2", down_on_5th))
    five = {"start": "2026-03-05T10:00:00Z", "end": "2026-03-05T15:00:00Z"}
    store.add_window(tenant.id, Window.from_spec({"scope": "device", "device": "a", **five}))
    store.add_window(tenant.id, Window.from_spec({"scope": "site", "site": "gw-2", **five}))
    store.add_window(tenant.id, Window.from_spec({"scope": "site", "site": "elsewhere", **five}))
    sla = month_sla(store, tenant, 2026, 3, AFTER)
    # each device: 5 of its 10 down slots excluded
    assert (sla.up, sla.down, sla.excluded) == (2 * 734, 10, 10)
    assert {f.site: (f.up, f.down, f.excluded) for f in sla.sites} == {
        "gw-1": (734, 5, 5),
        "gw-2": (734, 5, 5),
    }


def test_a_site_window_follows_the_site_a_device_had_at_the_slot(store) -> None:
    tenant = march(
        store, a=("gw-1", down_on_5th), b=("gw-2", lambda t: hour(20, 0) <= t < hour(20, 4))
    )
    # b moves to gw-1 on March 15 00:00; gw-1 has windows on the 5th (before b came) and 20th
    store.set_site(tenant.id, "b", "gw-1", hour(15, 0) * S)
    for day in ("05", "20"):
        store.add_window(
            tenant.id,
            Window.from_spec(
                {
                    "scope": "site",
                    "site": "gw-1",
                    "start": f"2026-03-{day}T00:00:00Z",
                    "end": f"2026-03-{day}T02:00:00Z",
                }
            ),
        )
    sla = month_sla(store, tenant, 2026, 3, AFTER)
    # a: window slots 5th 0,1 and 20th 0,1 excluded (4), 10 down; b: only the 20th's (2), of
    # its 4 down slots 2 are excluded; at gw-1 b has 17 days (408 slots): 404 up
    assert (sla.down, sla.excluded) == (10 + 2, 4 + 2)
    sites = {f.site: (f.up, f.down, f.excluded, f.devices) for f in sla.sites}
    # b counts for gw-2 for March 1-14 (336 slots, all up) and for gw-1 after
    assert sites["gw-2"] == (336, 0, 0, 1)
    assert sites["gw-1"] == (730 + 404, 10 + 2, 4 + 2, 2)
    one = month_sla(store, tenant, 2026, 3, AFTER, site="gw-1")
    assert (one.up, one.down, one.excluded) == (730 + 404, 12, 6)


def test_lifecycle_maintenance_and_retirement_in_the_middle_of_a_month(store) -> None:
    tenant = march(store, a=("gw-1", down_on_5th), b=("gw-1", lambda t: t >= hour(16, 0)))
    store.set_lifecycle(tenant.id, "a", "maintenance", hour(5, 10) * S, by="ops", why="swap")
    store.set_lifecycle(tenant.id, "a", "active", hour(5, 20) * S, by="ops", why="done")
    # b goes silent on the 16th and is retired on the 18th at 00:00: counted to then, down
    store.set_lifecycle(tenant.id, "b", "retired", hour(18, 0) * S, by="ops", why="broken")
    sla = month_sla(store, tenant, 2026, 3, AFTER)
    # a: 734 up, 10 excluded; b: 15 days up (360), 2 days down (48), the rest excluded
    assert (sla.up, sla.down) == (734 + 360, 48)
    assert sla.excluded == 10 + (744 - 408)
    with pytest.raises(ValueError, match="retirement is final"):
        store.set_lifecycle(tenant.id, "b", "active", hour(20, 0) * S)


def test_a_device_silent_all_month_counts_down_until_retired(store) -> None:
    tenant = store.add_tenant("acme", slot_s=H)
    feed(store, tenant.id, {"quiet": ("gw", never)}, MAR - 2 * H, MAR)  # seen in February
    feed(store, tenant.id, {"a": ("gw", never)}, MAR, APR)
    sla = month_sla(store, tenant, 2026, 3, AFTER)
    assert (sla.up, sla.down) == (744, 744)
    assert sla.credit_percent == Decimal("50")  # 50 % is under 95.0


def test_no_counted_slot_means_no_attainment_met_and_no_credit(store) -> None:
    tenant = store.add_tenant("acme", slot_s=H)
    sla = month_sla(store, tenant, 2026, 3, AFTER)
    assert sla.attainment is None and shown(None) is None
    assert sla.met and sla.credit_percent == 0 and sla.band is None
    assert sla.to_json()["attainment"] is None


def test_replacement_retires_the_old_device_and_gives_the_new_one_its_site(store) -> None:
    tenant = march(
        store, old=("gw-1", lambda t: t >= hour(10, 0)), new=("gw-9", lambda t: t < hour(10, 0))
    )
    store.replace_device(tenant.id, "old", "new", hour(10, 0) * S, by="ops")
    sla = month_sla(store, tenant, 2026, 3, AFTER)
    # old: 9 days up, then retired; new: 22 days up from its first frame; all at gw-1
    assert (sla.up, sla.down) == (9 * 24 + 22 * 24, 0)
    assert [f.site for f in sla.sites] == ["gw-1"]
    assert store.device_lifecycle(tenant.id, "old")[-1].link == "new"


@pytest.mark.parametrize(
    ("tz", "year", "month", "slots"),
    [
        ("UTC", 2026, 3, 744),
        ("Europe/Berlin", 2026, 3, 743),  # 2026-03-29 has 23 hours
        ("America/Los_Angeles", 2026, 3, 743),  # 2026-03-08 has 23 hours
        ("Pacific/Auckland", 2026, 4, 721),  # 2026-04-05 has 25 hours (NZDT ends)
    ],
)
def test_the_month_is_the_tenant_calendar_month(store, tz, year, month, slots) -> None:
    tenant = store.add_tenant("acme", slot_s=H, tz=tz)
    feed(store, tenant.id, {"a": ("gw", never)}, MAR - 3 * 24 * H, APR + 32 * 24 * H)
    sla = month_sla(store, tenant, year, month, AFTER + 40 * 24 * H * S)
    assert (sla.up, sla.down, sla.excluded) == (slots, 0, 0)
    assert len(sla.days) in (30, 31)
    assert sum(up for _, up, _ in sla.days) == slots


def test_auckland_and_los_angeles_months_start_at_local_midnight(store) -> None:
    akl = store.add_tenant("akl", slot_s=H, tz="Pacific/Auckland")
    la = store.add_tenant("la", slot_s=H, tz="America/Los_Angeles")
    # one down hour at each side of each boundary, in UTC:
    # Auckland April = 2026-03-31T11:00Z .. 2026-04-30T12:00Z; LA March = 03-01T08:00Z ..
    # 04-01T07:00Z
    edges = {hour(31, 10), hour(31, 11), APR + 29 * 24 * H + 11 * H, APR + 29 * 24 * H + 12 * H}
    feed(store, akl.id, {"a": ("gw", lambda t: t in edges)}, MAR - 24 * H, APR + 31 * 24 * H)
    la_edges = {MAR + 7 * H, MAR + 8 * H, APR + 6 * H, APR + 7 * H}
    feed(store, la.id, {"a": ("gw", lambda t: t in la_edges)}, MAR - 24 * H, APR + 24 * H)
    now = AFTER + 40 * 24 * H * S
    a = month_sla(store, akl, 2026, 4, now)
    assert (a.up, a.down) == (721 - 2, 2)  # 11:00Z on 03-31 and 11:00Z on 04-30 are in
    b = month_sla(store, la, 2026, 3, now)
    assert (b.up, b.down) == (743 - 2, 2)  # 08:00Z on 03-01 and 06:00Z on 04-01 are in


def test_the_projection_assumes_the_last_168_hours_go_on(store) -> None:
    # March 20 00:00 is now: 19 days have ended (456 slots); 12 down hours lie in the last 7
    # days (on the 15th), 288 slots remain
    tenant = march(store, a=("gw", lambda t: hour(15, 0) <= t < hour(15, 12)))
    now = hour(20, 0) * S
    sla = month_sla(store, tenant, 2026, 3, now)
    assert not sla.complete
    assert (sla.up, sla.down, sla.excluded) == (444, 12, 0)  # slots to come are not excluded
    # p = 156 / 168 up; projection = (444 + 288 p) / (456 + 288)
    assert sla.projection == Fraction(100 * (444 * 168 + 288 * 156), 744 * 168)
    assert shown(sla.projection) == "95.622"
    assert sla.projected_credit_percent == Decimal("25")  # at least 95.0, under 99.0


def test_the_projection_leaves_out_known_windows(store) -> None:
    tenant = march(store, a=("gw", lambda t: hour(15, 0) <= t < hour(15, 12)))
    # a window over the last 48 remaining hours (March 30-31) and one over the 15th's outage
    for start, end in (("2026-03-30", "2026-04-01"), ("2026-03-15", "2026-03-16")):
        store.add_window(
            tenant.id,
            Window.from_spec(
                {"scope": "tenant", "start": f"{start}T00:00:00Z", "end": f"{end}T00:00:00Z"}
            ),
        )
    sla = month_sla(store, tenant, 2026, 3, hour(20, 0) * S)
    # ended: 456 - 24 excluded = 432 up; last 168 h: 144 counted, all up -> p = 1;
    # remaining 288 - 48 = 240, all up
    assert (sla.up, sla.down) == (432, 0)
    assert sla.projection == 100


def test_months_back_walk_the_tenant_calendar() -> None:
    now = (MAR + 3 * H) * S  # March 1 03:00Z is still February in Los Angeles
    assert attainment.months_back(now, "America/Los_Angeles", 3) == [
        (2025, 12),
        (2026, 1),
        (2026, 2),
    ]


@pytest.mark.parametrize(
    ("month", "slots", "excluded"),
    [
        # March: 743 hours. 02:30 CET is 01:30Z, touching slots 01Z and 02Z on days 1-28; on
        # the 29th 02:30 does not exist and means 03:00 CEST = 01:00Z, one slot; on the 30th
        # and 31st 02:30 CEST is 00:30Z, two slots: 28 * 2 + 1 + 2 * 2
        (3, 743, 61),
        # October: 745 hours. Every day touches two slots, the 25th (02:30 twice) at its
        # first pass, CEST: 31 * 2
        (10, 745, 62),
    ],
)
def test_a_recurring_window_in_berlin_across_the_dst_changes(store, month, slots, excluded):
    tenant = store.add_tenant("acme", slot_s=H, tz="Europe/Berlin")
    start = MAR - 3 * 24 * H if month == 3 else MAR + 210 * 24 * H  # late September
    feed(store, tenant.id, {"a": ("gw", never)}, start, start + 36 * 24 * H)
    store.add_window(
        tenant.id,
        Window.from_spec(
            {
                "scope": "tenant",
                "weekdays": "Mon-Sun",
                "at": "02:30",
                "duration_min": 60,
                "zone": "Europe/Berlin",
            }
        ),
    )
    sla = month_sla(store, tenant, 2026, month, FAR)
    assert (sla.up + sla.excluded, sla.down, sla.excluded) == (slots, 0, excluded)
