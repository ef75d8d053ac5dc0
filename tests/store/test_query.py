"""Uptime semantics (docs/wire-format.md, "Uptime semantics") through the store and queries."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest

from core import query
from core.query import Exclusions
from core.store import Store
from core.tiers import Tier

DAY = 20_779  # 2026-11-22
D0 = DAY * 86_400  # its midnight, Unix seconds
NOW_S = D0 + 12 * 3600
NOW = NOW_S * 10**9
S = 10**9


@pytest.fixture
def store(engine, tmp_path):
    s = Store(tmp_path / "db", engine=engine)
    s.add_tenant("acme")
    yield s
    s.close()


def put(store: Store, frames: list, tenant: int = 1, now: int = NOW) -> None:
    r = store.ingest(tenant, msgpack.packb({"gateway": "gw", "frames": frames}), now)
    assert r.rejected == 0, r.errors
    store.checkpoint(now)


def counts(store: Store, start_s: int, end_s: int, tenant: int = 1, now: int = NOW, **kw):
    u = query.uptime(store, tenant, start_s * S, end_s * S, now, **kw)
    return list(zip(u.up.tolist(), u.down.tolist(), u.excluded.tolist(), strict=True))


def test_frame_covers_half_open_heartbeat(store) -> None:
    base = D0 + 3600
    put(store, [["aligned", base], ["offset", base + 30]])
    # aligned: [base, base+60) is exactly one slot; offset: [base+30, base+90) touches two.
    # Activation is the first frame, so earlier slots are excluded.
    assert counts(store, base, base + 600) == [(1, 9, 0), (2, 8, 0)]


def test_fault_slot_is_down_even_if_covered(store) -> None:
    base = D0 + 3600
    put(store, [["a", base], ["a", base + 60], ["a", base + 90, 7], ["a", base + 120]])
    assert counts(store, base, base + 180) == [(2, 1, 0)]


def test_excluded_before_activation_and_not_yet_ended(store) -> None:
    start = NOW_S - 600
    put(store, [["a", NOW_S - 300 + 1]])
    # slots before the first frame are excluded; the frame covers [t, t+60) = 2 slots;
    # the slot holding NOW has not ended and anything after NOW neither
    assert counts(store, start, NOW_S + 600) == [(2, 3, 15)]


def test_backfill_moves_activation_earlier(store) -> None:
    put(store, [["a", NOW_S - 600]])
    assert counts(store, NOW_S - 3600, NOW_S) == [(1, 9, 50)]
    put(store, [["a", NOW_S - 3600]])
    assert counts(store, NOW_S - 3600, NOW_S) == [(2, 58, 0)]


def test_registered_activation_and_retirement(store) -> None:
    store.register_device(1, "a", activated_ns=(NOW_S - 3600) * S, retired_ns=(NOW_S - 600) * S)
    put(store, [["a", NOW_S - 1800]])
    assert counts(store, NOW_S - 7200, NOW_S) == [(1, 49, 70)]


def test_heartbeat_per_device_and_slot_width_per_tenant(engine, tmp_path) -> None:
    with Store(tmp_path / "db", engine=engine) as s:
        t = s.add_tenant("five-minute", slot_s=300)
        s.register_device(t.id, "slow", heartbeat_s=900)
        s.register_device(t.id, "fast")
        base = NOW_S - 3600
        put(s, [["slow", base], ["fast", base]], tenant=t.id)
        # 300 s slots: slow covers [base, base+900) = 3 slots, fast [base, base+60) = 1 slot
        assert counts(s, base, NOW_S, tenant=t.id) == [(3, 9, 0), (1, 11, 0)]


def test_coverage_crosses_midnight(store) -> None:
    put(store, [["a", D0 - 30]])  # 23:59:30 the day before
    u = query.series(store, 1, (D0 - 60) * S, (D0 + 120) * S, NOW, granularity="day")
    assert u.start_ns.tolist() == [(D0 - 86400) * S, D0 * S]
    assert u.up.tolist() == [1, 1] and u.down.tolist() == [0, 1]


def test_maintenance_windows_are_excluded(store) -> None:
    base = NOW_S - 3600
    put(store, [["a", base + 60 * i] for i in range(30)] + [["b", base]])
    windows = Exclusions(tenant=[((base + 600) * S, (base + 1200) * S)])
    assert counts(store, base, NOW_S, exclusions=windows) == [(20, 30, 10), (1, 49, 10)]
    per_device = Exclusions(devices={1: [((base + 60) * S, (base + 3600) * S)]})
    assert counts(store, base, NOW_S, exclusions=per_device) == [(30, 30, 0), (1, 0, 59)]


def test_fleet_uptime_sums_slots(store) -> None:
    base = NOW_S - 3600
    put(
        store, [["a", base + 60 * i] for i in range(60)] + [["b", base + 60 * i] for i in range(15)]
    )
    u = query.uptime(store, 1, base * S, NOW, NOW)
    assert u.up.tolist() == [60, 15] and u.down.tolist() == [0, 45]
    assert u.percent.tolist() == [100.0, 25.0]
    assert u.fleet_percent == pytest.approx(100 * 75 / 120)


def test_order_and_batching_do_not_change_queries(engine, tmp_path) -> None:
    rng = np.random.default_rng(7)
    frames = [
        [f"d{int(i)}", int(t), int(rng.random() < 0.05) * 3]
        for i, t in zip(
            rng.integers(0, 20, 3000), rng.integers(NOW_S - 5 * 86400, NOW_S, 3000), strict=True
        )
    ]
    results = []
    for order in (frames, frames[::-1]):
        with Store(tmp_path / f"db{len(results)}", engine=engine) as s:
            s.add_tenant("acme")
            for i in range(0, len(order), 700):
                put(s, order[i : i + 700])
            ids = s.device_ids(1)
            u = query.uptime(s, 1, (NOW_S - 6 * 86400) * S, NOW, NOW)
            res = dict(
                zip(
                    ids,
                    zip(u.up.tolist(), u.down.tolist(), u.excluded.tolist(), strict=True),
                    strict=False,
                )
            )
            out = sorted(
                (ids[o.device], o.start_ns, o.end_ns)
                for o in query.outages(s, 1, (NOW_S - 6 * 86400) * S, NOW, NOW)
            )
            results.append((res, out))
    assert results[0] == results[1]
    assert sum(up for up, _, _ in results[0][0].values()) > 0


def test_outages_respect_min_outage_and_stitch_across_midnight(store) -> None:
    base = D0 - 3600
    times = [base + 60 * i for i in range(120)]
    gap4 = set(range(10, 14))  # 4 slots: counted down, not an incident
    gap5 = set(range(30, 35))  # 5 slots: an incident
    cross = set(range(55, 65))  # 10 slots across midnight
    frames = [["a", t] for i, t in enumerate(times) if i not in gap4 | gap5 | cross]
    put(store, frames)
    found = query.outages(store, 1, base * S, (base + 7200) * S, NOW)
    assert [(o.start_ns // S - base, o.end_ns // S - base, o.ongoing) for o in found] == [
        (30 * 60, 35 * 60, False),
        (55 * 60, 65 * 60, False),
    ]
    u = query.uptime(store, 1, base * S, (base + 7200) * S, NOW)
    assert u.down.tolist() == [4 + 5 + 10]


def test_ongoing_outage(store) -> None:
    put(store, [["a", NOW_S - 3600]])
    (outage,) = query.outages(store, 1, (NOW_S - 3600) * S, NOW, NOW)
    assert outage.ongoing and outage.end_ns == NOW
    assert outage.duration_s == 3540


def test_hourly_series(store) -> None:
    base = D0 + 3600
    put(store, [["a", base + 60 * i] for i in range(90)])
    s = query.series(store, 1, base * S, (base + 3 * 3600) * S, NOW, granularity="hour")
    assert s.start_ns.tolist() == [base * S, (base + 3600) * S, (base + 7200) * S]
    assert s.up.tolist() == [60, 30, 0] and s.down.tolist() == [0, 30, 60]
    with pytest.raises(ValueError):
        query.series(store, 1, base * S, NOW, NOW, granularity="week")


def test_current_status(store) -> None:
    put(
        store,
        [
            {"d": "online", "t": NOW_S - 30, "b": 55.5, "r": -80, "fw": "2.1"},
            ["offline", NOW_S - 600, 0, 20],
            ["fault", NOW_S - 10, 9],
            ["fault", NOW_S - 20, 0],
        ],
    )
    store.register_device(1, "never")
    status = query.current_status(store, 1, NOW)
    assert status.ids == ["online", "offline", "fault", "never"]
    assert status.state == ["online", "offline", "fault", "inactive"]
    assert status.last_seen_ns.tolist() == [
        (NOW_S - 30) * S,
        (NOW_S - 600) * S,
        (NOW_S - 10) * S,
        -1,
    ]
    assert status.battery[0] == 55.5 and status.battery[1] == 20.0
    assert np.isnan(status.battery[2]) and status.rssi[0] == -80.0
    assert status.firmware == ["2.1", "", "", ""]


def test_slots_after_the_last_checkpoint_are_not_yet_known_rather_than_down(
    engine, tmp_path
) -> None:
    """Queries read the day blocks, which hold what the last checkpoint folded in; frames
    committed since are in the log and the live state only. A registered device reporting
    in real time must not look down for the slots since the last checkpoint (1 s slots here;
    the clock is passed, a second a frame)."""
    tiers = {"fast": Tier(heartbeat_s=1)}
    with Store(tmp_path / "db", engine=engine, tiers=tiers) as s:
        t = s.add_tenant("fast", plan="fast", slot_s=1).id
        start = NOW_S + 1
        s.register_device(t, "reg", activated_ns=start * S)
        s.checkpoint(start * S)
        for k in range(3):  # a frame a second, each as its second begins
            body = msgpack.packb({"gateway": "gw", "frames": [["reg", start + k]]})
            s.ingest(t, body, (start + k) * S)
        now = (start + 3) * S
        u = query.uptime(s, t, start * S, (start + 3) * S, now)
        assert u.down.tolist() == [0] and u.excluded.tolist() == [3]  # not known yet
        assert query.outages(s, t, start * S, (start + 3) * S, now, min_outage=1) == []
        s.checkpoint(now)
        u = query.uptime(s, t, start * S, (start + 3) * S, now + S // 10)
        assert (u.up.tolist(), u.down.tolist()) == ([3], [0])


def test_an_empty_period_holds_no_slot(store) -> None:
    base = D0 + 3600
    put(store, [["a", base], ["a", base + 30, 2]])
    p = (base + 30) * S
    u = query.uptime(store, 1, p, p, NOW)
    assert (u.up.tolist(), u.down.tolist(), u.excluded.tolist()) == ([0], [0], [0])
    assert len(query.series(store, 1, p, p, NOW).start_ns) == 0
    windows = Exclusions(tenant=[(p, p)])  # an empty window excludes nothing
    assert counts(store, base, base + 120, exclusions=windows) == [(0, 2, 0)]


def test_a_heartbeat_change_gives_the_same_uptime_with_or_without_a_restart(engine, tmp_path):
    base = D0 + 3600
    answers = []
    for restart in (False, True):
        path = tmp_path / f"db{restart}"
        s = Store(path, engine=engine)
        t = s.add_tenant("acme").id
        s.ingest(t, msgpack.packb({"gateway": "gw", "frames": [["a", base]]}), NOW)
        s.register_device(t, "a", heartbeat_s=600)  # after the frame: it keeps 60 s
        if restart:  # the log replayed with the heartbeats of the moment
            s.close()
            s = Store(path, engine=engine)
        s.checkpoint(NOW)
        answers.append(counts(s, base, base + 1200, tenant=t))
        s.close()
    assert answers[0] == answers[1] == [(1, 19, 0)]


def test_hour_buckets_need_a_slot_width_that_divides_an_hour(engine, tmp_path) -> None:
    with Store(tmp_path / "db", engine=engine) as s:
        t = s.add_tenant("odd", slot_s=675).id
        with pytest.raises(ValueError, match="divides an hour"):
            query.series(s, t, D0 * S, (D0 + 86_400) * S, NOW, granularity="hour")


def test_no_outage_is_an_empty_list(store) -> None:
    base = D0 + 3600
    put(store, [["a", base + 60 * k] for k in range(10)])
    assert query.outages(store, 1, base * S, (base + 600) * S, NOW, min_outage=1) == []
    assert query.outages(store, 1, (base - 7200) * S, (base - 3600) * S, NOW) == []


def test_an_outage_crossing_the_period_edge_is_measured_whole(store) -> None:
    """min_outage applies to the device's run, not to the part inside the period: a 19-slot
    outage is listed (clipped to the period) even if the period holds 2 or 4 of its slots."""
    base = D0 + 3600
    gap = set(range(20, 39))  # 19 slots
    short = set(range(50, 54))  # 4 slots: never an incident
    put(store, [["a", base + 60 * i] for i in range(80) if i not in gap | short])

    def found(first: int, last: int) -> list[tuple[int, int]]:
        got = query.outages(store, 1, (base + 60 * first) * S, (base + 60 * last) * S, NOW)
        return [((o.start_ns // S - base) // 60, (o.end_ns // S - base) // 60) for o in got]

    assert found(0, 80) == [(20, 39)]
    assert found(35, 60) == [(35, 39)]
    assert found(0, 22) == [(20, 22)]
    assert found(52, 70) == []
    assert found(40, 50) == []


def test_packed_counts_match_the_slots_bit_by_bit(store) -> None:
    """Busy devices are counted in their packed bits; over odd buckets, windows of the tenant,
    of a group and of a device, and devices in scope for part of a day only, the counts are
    those of the slots one by one (``_Day.scope_bits`` and ``up_bits``)."""
    rng = np.random.default_rng(7)
    start = D0 - 86_400
    frames = []
    for dev in range(24):
        minutes = np.flatnonzero(rng.random(36 * 60) < [0.97, 0.6, 0.0, 1.0][dev % 4])
        frames += [[f"d{dev:02d}", start + 60 * int(m), int(rng.random() < 0.02)] for m in minutes]
    for i in range(0, len(frames), 5_000):
        put(store, frames[i : i + 5_000])
    store.register_device(1, "d05", activated_ns=(start + 5_000) * S)
    store.register_device(1, "d06", retired_ns=(D0 + 7_777) * S)
    windows = Exclusions(
        tenant=[((D0 - 4_000) * S, (D0 + 1_234) * S)],
        devices={3: [((start + 100) * S, (start + 40_000) * S)]},
        groups=[(np.arange(8, 16), [((start + 50_000) * S, (start + 60_030) * S)])],
    )
    edges = [(start + 7 * 60 + 13) * S, (start + 30_000) * S, D0 * S, (D0 + 3_600) * S, NOW]
    table = query.uptime(store, 1, edges[0], NOW, NOW, exclusions=windows, buckets_ns=edges)
    scope = query._scope(store, 1, edges[0], NOW, NOW, None)
    cuts = -(-np.array(edges) // (60 * S))
    up = np.zeros((len(scope.devices), len(cuts) - 1), np.int64)
    in_scope = np.zeros_like(up)
    for day in query._days(store, scope, windows):
        slot = np.arange(day.n_slots)
        bits_scope = (slot >= day.lo[:, None]) & (slot < day.hi[:, None])
        bits_up = bits_scope & day.trivial_up[:, None]
        bits_scope[day.busy] = day.scope_bits()
        bits_up[day.busy] = day.up_bits() & day.scope_bits()
        at = day.day * day.n_slots + slot
        for b in range(len(cuts) - 1):
            piece = (at >= cuts[b]) & (at < cuts[b + 1])
            up[:, b] += bits_up[:, piece].sum(axis=1)
            in_scope[:, b] += bits_scope[:, piece].sum(axis=1)
    assert table.up.tolist() == up.sum(axis=1).tolist()
    assert (table.up + table.down).tolist() == in_scope.sum(axis=1).tolist()
    assert table.series.up.tolist() == up.sum(axis=0).tolist()
    assert table.series.down.tolist() == (in_scope - up).sum(axis=0).tolist()
    assert 0 < table.up.sum() < in_scope.sum()  # some down, some up
