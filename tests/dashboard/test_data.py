"""The dashboard's data functions over a read-only store, on both engines: who sees what,
and that the figures are the queries' own."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from core import query, zones
from core.sla import attainment
from core.store import Store, StoreError
from core.tiers import Catalog
from core.times import NS_PER_S
from dashboard import data
from tests.support.tenants import FLEETS, GAPS, HOURS, revoke, seed, write_elsewhere


@pytest.fixture
def seeded(tmp_path, engine):
    return seed(tmp_path / "db", engine)


@pytest.fixture
def reader(seeded, engine):
    with Store(seeded.data, readonly=True, engine=engine) as store:
        yield store


def period(seeded) -> tuple[int, int, int]:
    now = seeded.now_s * NS_PER_S
    return now - HOURS * 3600 * NS_PER_S, now, now


def test_a_read_token_sees_its_own_tenant_only(seeded, reader) -> None:
    token = data.sign_in(reader, seeded.read["acme"])
    assert [t.name for t in data.visible_tenants(reader, token)] == ["acme"]
    start, end, now = period(seeded)
    assert list(data.fleet(reader, token, now)["tenant"]) == ["acme"]
    assert list(data.devices(reader, token, "acme", start, end, now)["device"]) == FLEETS["acme"]
    for read in (data.devices, data.uptime_series, data.outages):
        with pytest.raises(data.NotAllowed) as other:
            read(reader, token, "globex", start, end, now)
        with pytest.raises(data.NotAllowed) as unknown:
            read(reader, token, "initech", start, end, now)
        # a client cannot tell another tenant from one that does not exist
        assert str(other.value) == "this sign-in may not read tenant 'globex'"
        assert str(unknown.value) == "this sign-in may not read tenant 'initech'"


def test_staff_see_every_tenant_and_hear_of_unknown_ones(seeded, reader) -> None:
    token = data.sign_in(reader, seeded.staff)
    assert [t.name for t in data.visible_tenants(reader, token)] == ["acme", "globex"]
    start, end, now = period(seeded)
    table = data.fleet(reader, token, now)
    assert list(table["tenant"]) == ["acme", "globex"]
    assert list(table["devices"]) == [len(FLEETS["acme"]), len(FLEETS["globex"])]
    assert list(data.devices(reader, token, "globex", start, end, now)["device"]) == [
        "globex-cam-1"
    ]
    with pytest.raises(data.NotAllowed, match="no tenant 'initech'"):
        data.tenant_for(reader, token, "initech")


@pytest.mark.parametrize("which", ["ingest", "unknown", "empty", "not ascii"])
def test_only_live_read_and_staff_tokens_sign_in(seeded, reader, which) -> None:
    secret = {
        "ingest": seeded.ingest["acme"],
        "unknown": "upt_" + "x" * 43,
        "empty": "  ",
        "not ascii": seeded.read["acme"][:-1] + "é",
    }[which]
    with pytest.raises(data.SignInRefused):
        data.sign_in(reader, secret)


def test_a_revoked_token_fails_at_once_in_an_open_dashboard(seeded, reader) -> None:
    assert data.sign_in(reader, seeded.read["acme"]).scope == "read"
    revoke(seeded.data, seeded.read_ids["acme"])  # by another handle, as the CLI does
    with pytest.raises(data.SignInRefused, match="revoked"):
        data.sign_in(reader, seeded.read["acme"])
    assert data.sign_in(reader, seeded.read["globex"]).tenant_id is not None


def test_figures_are_the_queries_own(seeded, reader) -> None:
    token = data.sign_in(reader, seeded.staff)
    start, end, now = period(seeded)
    for name, fleet in FLEETS.items():
        tenant = reader.tenant(name)
        table = query.uptime(reader, tenant.id, start, end, now)
        devices = data.devices(reader, token, name, start, end, now)
        np.testing.assert_array_equal(devices["uptime %"], table.percent)
        assert data.fleet_percent(devices) == pytest.approx(table.fleet_percent, rel=1e-12)
        gap_device, _, gap_minutes = GAPS[name]
        # frames come mid-slot and cover a heartbeat (60 s) past them: the last frame before
        # the gap keeps the gap's first slot up
        down_slots = gap_minutes - 1
        down = dict(zip(devices["device"], devices["down min"], strict=True))
        assert down == {d: down_slots if d == gap_device else 0 for d in fleet}
        assert set(devices["status"]) == {"online"}
        outages = data.outages(reader, token, name, start, end, now)
        assert list(outages["device"]) == [gap_device]
        assert list(outages["minutes"]) == [down_slots]
        series = data.uptime_series(reader, token, name, start, end, now)
        found = query.series(reader, tenant.id, start, end, now, granularity="hour")
        assert list(series["start"].astype("int64")) == list(found.start_ns)
        np.testing.assert_array_equal(series["uptime %"], found.percent)
        assert (series["uptime %"].dropna() < 100).sum() >= 1  # the gap shows


def test_the_dashboard_store_cannot_write(seeded) -> None:
    store = data.open_store(str(seeded.data))
    try:
        assert store.readonly
        with pytest.raises(StoreError, match="read-only"):
            store.add_tenant("intruder")
    finally:
        store.close()


def test_no_store_is_refused_and_none_is_made(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="no store in"):
        data.open_store(str(tmp_path / "typo"))
    assert not (tmp_path / "typo").exists()


def test_tenants_and_devices_stored_later_appear(seeded, reader) -> None:
    token = data.sign_in(reader, seeded.staff)
    start, end, now = period(seeded)
    t = seeded.now_s - 30  # within its heartbeat (60 s) of now: online
    write_elsewhere(
        seeded.data,
        f"""
import msgpack
def body(device): return msgpack.packb({{"gateway": "g", "seq": 1, "frames": [[device, {t}, 0]]}})
assert store.ingest(store.add_tenant("initech").id, body("initech-pump-1")).accepted == 1
assert store.ingest(store.tenant("acme").id, body("acme-new")).accepted == 1
store.checkpoint()
""",
    )
    assert [t.name for t in data.visible_tenants(reader, token)] == ["acme", "globex", "initech"]
    pumps = data.devices(reader, token, "initech", start, end, now)
    assert list(pumps["device"]) == ["initech-pump-1"]
    assert list(pumps["status"]) == ["online"]
    acme = data.devices(reader, token, "acme", start, end, now)
    assert list(acme["device"]) == [*FLEETS["acme"], "acme-new"]


def test_the_sla_month_is_the_engines_own_in_the_tenants_zone(seeded, reader) -> None:
    write_elsewhere(
        seeded.data,
        """
from core.sla.windows import Window
acme = store.tenant("acme").id
store.set_tenant(acme, tz="Pacific/Auckland")
store.add_window(acme, Window.from_spec({"scope": "tenant", "weekdays": "Mon-Sun",
    "at": "03:00", "duration_min": 30, "zone": "Pacific/Auckland", "reason": "backups"}))
store.add_window(acme, Window.from_spec({"scope": "device", "device": "acme-door-1",
    "start": "2026-01-10T09:00+13:00", "end": "2026-01-10T10:00+13:00"}))
""",
    )
    _, _, now = period(seeded)
    client = data.sign_in(reader, seeded.read["acme"])
    acme = data.tenant_for(reader, client, "acme")
    assert acme.tz == "Pacific/Auckland"
    months = data.months(reader, client, "acme", now, count=3)
    year, month = zones.month_of(now, "Pacific/Auckland")
    assert months[0] == f"{year:04d}-{month:02d}" and months == sorted(months, reverse=True)
    shown = data.sla_month(reader, client, "acme", months[0], now, Catalog())
    oracle = attainment.month_sla(reader, acme, year, month, now)
    assert (shown.figures.up, shown.figures.down, shown.figures.excluded) == (
        oracle.up,
        oracle.down,
        oracle.excluded,
    )
    assert shown.attainment == f"{attainment.shown(oracle.attainment)} %"
    # a row per local day of the month, dated in Auckland, in calendar weeks from Monday
    first, _ = zones.month_bounds(year, month, "Pacific/Auckland")
    assert shown.days["date"].iloc[0] == f"{year:04d}-{month:02d}-01"
    assert len(shown.days) == len(zones.local_days(first, shown.figures.end_ns, acme.tz))
    assert shown.days["week"].iloc[0] == 0 and shown.days["week"].is_monotonic_increasing
    assert list(shown.sites["site"]) == ["acme-gw"]  # the site of the gateway that reported
    assert list(shown.windows["when"]) == [
        "Mon-Sun 03:00 for 30 min (Pacific/Auckland)",
        "2026-01-10 09:00 → 10:00 (Pacific/Auckland)",  # a one-off, in the tenant's zone
    ]
    assert list(shown.windows["target"]) == ["acme", "acme-door-1"]
    assert not shown.above_upstream  # the shipped catalog states no vendor guarantee
    flagged = data.sla_month(
        reader, client, "acme", months[0], now, Catalog(upstream=Decimal("99"))
    )
    assert flagged.above_upstream and flagged.upstream == Decimal("99")
    with pytest.raises(data.NotAllowed, match="may not read tenant 'globex'"):
        data.sla_month(reader, client, "globex", months[0], now, Catalog())
    with pytest.raises(data.NotAllowed):
        data.months(reader, client, "globex", now)


def test_an_sla_month_without_counted_slots_shows_n_a(seeded, reader) -> None:
    staff = data.sign_in(reader, seeded.staff)
    _, _, now = period(seeded)
    empty = data.sla_month(reader, staff, "acme", "2020-02", now, Catalog())
    assert empty.attainment == "n/a" and empty.figures.met
    assert empty.figures.credit_percent == 0 and empty.band == "none"
    assert len(empty.days) == 29 and empty.days["uptime %"].isna().all()


def test_dates_on_the_uptime_page_are_the_tenants_local_days(seeded, reader) -> None:
    write_elsewhere(seeded.data, 'store.set_tenant(store.tenant("acme").id, tz="Asia/Kathmandu")')
    staff = data.sign_in(reader, seeded.staff)
    _, end, now = period(seeded)
    start = end - 30 * 86_400 * NS_PER_S
    days = data.uptime_series(reader, staff, "acme", start, end, now)
    # Kathmandu is +05:45: its days start at 18:15 UTC, shown as local midnights
    assert len(days) == 31
    assert set(days["start"].dt.strftime("%H:%M")) == {"00:00"}
    last = zones.local_date(end - 1, "Asia/Kathmandu")
    assert days["start"].iloc[-1].date() == last
    # the hours of a short period are the local hours, at :00 local
    hours = data.uptime_series(reader, staff, "acme", end - 6 * 3600 * NS_PER_S, end, now)
    assert set(hours["start"].dt.strftime("%M")) == {"00"} and len(hours) in (6, 7)
    np.testing.assert_array_equal(
        hours["uptime %"],
        query.series(
            reader,
            reader.tenant("acme").id,
            end - 6 * 3600 * NS_PER_S,
            end,
            now,
            buckets_ns=zones.local_buckets(
                "Asia/Kathmandu", "hour", end - 6 * 3600 * NS_PER_S, end
            ),
        ).percent,
    )
