"""The LMDB store: durable commits, dedupe, atomic groups, replay, map growth, set semantics."""

from __future__ import annotations

import random
import subprocess
import sys
import threading

import lmdb
import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import ingest
from core.dayblock import encode_bitmaps
from core.store import Store, StoreError, Tenant
from core.store.slab import TENANT_KEY
from core.tiers import Tier
from server.testing import REPO
from tests.support.store_export import export, uptime_part

NOW_S = 1_795_348_800  # 2026-11-22 12:00:00 UTC
NOW = NOW_S * 10**9


@pytest.fixture
def store(engine, tmp_path):
    s = Store(tmp_path / "db", engine=engine)
    yield s
    s.close()


def body(frames: list, seq: int | None = None, gateway: str = "gw") -> bytes:
    batch: dict[str, object] = {"gateway": gateway, "frames": frames}
    if seq is not None:
        batch["seq"] = seq
    return msgpack.packb(batch)


def test_ingest_checkpoint_reopen(engine, tmp_path) -> None:
    path = tmp_path / "db"
    with Store(path, engine=engine) as s:
        t = s.add_tenant("acme")
        r = s.ingest(t.id, body([["a", NOW_S - 600, 0, 80, -70, "1.0"], ["b", NOW_S - 600]]), NOW)
        assert (r.accepted, r.duplicate) == (2, False)
        s.checkpoint(NOW)
        before = export(s, t.id)
    with Store(path, engine=engine) as s:
        assert s.device_ids(t.id) == ["a", "b"]
        assert s.rollups[t.id].device_ids() == ["a", "b"]
        assert export(s, t.id) == before
        r = s.ingest(t.id, body([["c", NOW_S - 300], ["a", NOW_S - 300]]), NOW)
        s.checkpoint(NOW)
        assert s.device_ids(t.id) == ["a", "b", "c"]


def test_log_is_replayed_after_a_crash(engine, tmp_path) -> None:
    """A committed batch not yet checkpointed survives a restart (the log is replayed)."""
    frames = [["a", NOW_S - 600 + 60 * i, i % 7 == 0] for i in range(10)]
    frames = [[d, t, int(s)] for d, t, s in frames]
    with Store(tmp_path / "control", engine=engine) as control:
        t = control.add_tenant("acme")
        control.ingest(t.id, body(frames, seq=1), NOW)
        control.checkpoint(NOW)
        expected = export(control, t.id)
    crashed = Store(tmp_path / "db", engine=engine)
    t = crashed.add_tenant("acme")
    crashed.ingest(t.id, body(frames, seq=1), NOW)
    assert crashed.log_records == 1
    crashed.env.close()  # no checkpoint: as if the process died here
    with Store(tmp_path / "db", engine=engine) as s:
        assert s.rollups[t.id].pending_days > 0
        # the dedupe key was committed with the log record: a resend is a duplicate
        assert s.ingest(t.id, body(frames, seq=1), NOW).duplicate
        s.checkpoint(NOW)
        assert s.log_records == 0
        assert export(s, t.id) == expected


def test_dedupe_by_gateway_and_seq(store) -> None:
    t = store.add_tenant("acme")
    frames = [["a", NOW_S - 60], ["", NOW_S]]
    first = store.ingest(t.id, body(frames, seq=7), NOW)
    again = store.ingest(t.id, body(frames, seq=7), NOW + 10**9)
    assert (first.accepted, first.rejected, first.duplicate) == (1, 1, False)
    assert (again.accepted, again.rejected, again.duplicate) == (1, 1, True)
    assert again.errors == first.errors
    other_gw = store.ingest(t.id, body(frames, seq=7, gateway="gw2"), NOW)
    assert not other_gw.duplicate
    no_seq = [store.ingest(t.id, body(frames), NOW) for _ in range(2)]
    assert not any(r.duplicate for r in no_seq)
    store.checkpoint(NOW)
    stats = next(store.day_blocks(t.id, 0, 2**32 - 1))[2]
    assert int(stats["frames"][0]) == 4  # seq 7 (once), gw2 seq 7, and two without seq


def test_dedupe_window_expires(engine, tmp_path) -> None:
    with Store(tmp_path / "db", engine=engine, dedupe_window_s=3600) as s:
        t = s.add_tenant("acme")
        assert not s.ingest(t.id, body([["a", NOW_S - 60]], seq=1), NOW).duplicate
        later = NOW + 3601 * 10**9
        s.checkpoint(later)  # forgets dedupe keys older than the window
        assert not s.ingest(t.id, body([["a", NOW_S - 60]], seq=1), later).duplicate


def test_duplicates_inside_one_group(store) -> None:
    t = store.add_tenant("acme")
    b1 = ingest.decode(store.rollups[t.id], body([["a", NOW_S - 60]], seq=3), NOW)
    b2 = ingest.decode(store.rollups[t.id], body([["a", NOW_S - 60]], seq=3), NOW)
    results = store.commit([(t.id, b1), (t.id, b2)], NOW)
    assert [r.duplicate for r in results] == [False, True]
    assert store.log_records == 1


def test_failed_group_stores_and_applies_nothing(store, monkeypatch) -> None:
    t = store.add_tenant("acme")
    good = ingest.decode(store.rollups[t.id], body([["a", NOW_S - 60]], seq=1), NOW)
    bad = ingest.decode(store.rollups[t.id], body([["b", NOW_S - 60]], seq=2), NOW)
    persist_ids = store.device_table.persist_ids

    def explode(txn, tenant_id, admitted=None):
        persist_ids(txn, tenant_id, admitted)  # the group's writes are done: now the disk fails
        raise OSError("disk on fire")

    monkeypatch.setattr(store.device_table, "persist_ids", explode)
    with pytest.raises(OSError):
        store.commit([(t.id, good), (t.id, bad)], NOW)
    monkeypatch.undo()
    assert store.log_records == 0
    assert store.rollups[t.id].pending_days == 0
    assert store.device_ids(t.id) == [] and store.rollups[t.id].device_ids() == []
    # nothing was remembered either: the same batch goes through afterwards, and the failed
    # group's other device never comes to exist
    results = store.commit([(t.id, good)], NOW)
    assert not results[0].duplicate
    assert store.device_ids(t.id) == ["a"] and store.rollups[t.id].device_ids() == ["a"]


def test_map_grows_without_losing_a_group(engine, tmp_path) -> None:
    with Store(tmp_path / "db", engine=engine, map_size=256 << 10) as s:
        t = s.add_tenant("acme")
        total = 0
        for seq in range(40):
            frames = [[f"dev-{i:05d}", NOW_S - 3000 + seq * 60] for i in range(500)]
            total += s.ingest(t.id, body(frames, seq=seq), NOW).accepted
            if seq % 10 == 9:
                s.checkpoint(NOW)
        s.checkpoint(NOW)
        assert s.env.info()["map_size"] > 256 << 10
        frames_stored = sum(
            int(stats["frames"].sum()) for _, _, stats in s.day_blocks(t.id, 0, 2**32 - 1)
        )
        assert frames_stored == total == 20_000


def test_tenants_are_isolated(store) -> None:
    a = store.add_tenant("a")
    b = store.add_tenant("b")
    store.ingest(a.id, body([["shared-name", NOW_S - 60]]), NOW)
    store.ingest(b.id, body([["shared-name", NOW_S - 60, 4]]), NOW)
    store.checkpoint(NOW)
    ea, eb = export(store, a.id), export(store, b.id)
    assert ea != eb
    assert list(ea["devices"]) == list(eb["devices"]) == ["shared-name"]
    with pytest.raises(ValueError):
        store.add_tenant("a")


def test_day_block_sizes() -> None:
    """A fully-up day with no fault costs 1 byte of bitmap value per device; a day with a few
    gaps at most 2 x 180 bytes at 60 s slots."""
    n, slots = 1000, 1440
    full = np.packbits(np.ones(slots, bool), bitorder="little")
    cov = np.tile(full, (n, 1))
    fault = np.zeros_like(cov)
    empty_block = len(encode_bitmaps(cov[:0], fault[:0], slots))
    assert (len(encode_bitmaps(cov, fault, slots)) - empty_block) / n <= 8
    rng = np.random.default_rng(1)
    bits = np.ones((n, slots), bool)
    for row in bits:
        for start in rng.integers(0, slots - 30, size=4):
            row[start : start + rng.integers(1, 30)] = False
    gappy = np.packbits(bits, axis=1, bitorder="little")
    faults = np.zeros((n, slots), bool)
    faults[:, 700] = True
    size = len(encode_bitmaps(gappy, np.packbits(faults, axis=1, bitorder="little"), slots))
    assert (size - empty_block) / n <= 2 * 180


# --- set semantics ---------------------------------------------------------------------------

DEVICES = [f"site-{i // 3:03d}/dev-{i:05d}" for i in range(6)]
frame_strategy = st.tuples(
    st.sampled_from(DEVICES),
    st.integers(NOW_S - 3 * 86400, NOW_S - 1),  # several UTC days back
    st.sampled_from([0, 0, 0, 0, 3]),
    st.one_of(st.none(), st.integers(0, 100)),
    st.one_of(st.none(), st.integers(-120, -30)),
    st.one_of(st.none(), st.sampled_from(["1.0", "1.1", "2.0"])),
)


def _frames(items) -> list:
    return [
        [d, t, s, b, r, None] if fw is None else {"d": d, "t": t, "s": s, "b": b, "r": r, "fw": fw}
        for d, t, s, b, r, fw in items
    ]


def _ingest_all(
    store: Store, tenant_id: int, deliveries: list[tuple[list, int]], checkpoints: set[int]
) -> None:
    for i, (frames, seq) in enumerate(deliveries):
        store.ingest(tenant_id, body(frames, seq=seq), NOW)
        if i in checkpoints:
            store.checkpoint(NOW)
    store.checkpoint(NOW)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(items=st.lists(frame_strategy, min_size=1, max_size=60), seed=st.integers(0, 2**32 - 1))
def test_stored_state_depends_only_on_the_set_of_frames(engine, tmp_path_factory, items, seed):
    """Permuting, splitting into batches, resending batches (same seq), checkpointing at any
    point and delivering old frames late leave the stored state byte-identical; duplicating
    frames into new batches changes only the delivery counters, by exactly the duplicates."""
    rng = random.Random(seed)
    frames = _frames(items)
    with Store(tmp_path_factory.mktemp("ref"), engine=engine) as ref:
        t = ref.add_tenant("acme")
        _ingest_all(ref, t.id, [(frames, 1)], set())
        expected = export(ref, t.id)

    shuffled = frames[:]
    rng.shuffle(shuffled)
    shuffled.sort(key=lambda f: rng.random() < 0.3)  # some late (older frames after newer)
    n = len(shuffled)
    cuts = sorted(set(rng.sample(range(1, n + 1), min(n, rng.randint(1, 6)))) | {n})
    batches = [shuffled[a:b] for a, b in zip([0] + cuts, cuts, strict=False)]
    assert sum(map(len, batches)) == n
    deliveries = [(batch, seq) for seq, batch in enumerate(batches, 1)]
    deliveries += [rng.choice(deliveries) for _ in range(rng.randint(0, 3))]  # resends
    checkpoints = set(rng.sample(range(len(deliveries)), rng.randint(0, len(deliveries))))
    with Store(tmp_path_factory.mktemp("var"), engine=engine) as var:
        t = var.add_tenant("acme")
        _ingest_all(var, t.id, deliveries, checkpoints)
        assert export(var, t.id) == expected

    dup = rng.sample(frames, rng.randint(1, len(frames)))
    with Store(tmp_path_factory.mktemp("dup"), engine=engine) as dupstore:
        t = dupstore.add_tenant("acme")
        _ingest_all(dupstore, t.id, [(frames, 1), (dup, 2)], {0})
        got = export(dupstore, t.id)
        assert uptime_part(got) == uptime_part(expected)
        extra = sum(
            int(stats["frames"].sum()) for _, _, stats in dupstore.day_blocks(t.id, 0, 2**32 - 1)
        )
        assert extra == len(frames) + len(dup)


def test_failed_checkpoint_loses_and_doubles_nothing(engine, tmp_path, monkeypatch) -> None:
    frames = [[f"d{i % 7}", NOW_S - 3600 + 37 * i, int(i % 11 == 0)] for i in range(200)]
    with Store(tmp_path / "control", engine=engine) as control:
        t = control.add_tenant("acme")
        control.ingest(t.id, body(frames[:100], seq=1), NOW)
        control.ingest(t.id, body(frames[100:], seq=2), NOW)
        control.checkpoint(NOW)
        expected = export(control, t.id)
    with Store(tmp_path / "db", engine=engine) as s:
        t = s.add_tenant("acme")
        s.ingest(t.id, body(frames[:100], seq=1), NOW)
        drained = s.drain_checkpoint(NOW)
        prepared = s.prepare_checkpoint(drained)
        s.ingest(t.id, body(frames[100:], seq=2), NOW)  # committed while the checkpoint ran

        def boom(txn, now_ns):
            raise OSError("disk went away")

        monkeypatch.setattr(s.log_table, "expire_dedupe", boom)
        with pytest.raises(OSError):
            s.write_checkpoint(prepared, NOW)
        monkeypatch.undo()
        assert s.log_records == 2
        s.checkpoint(NOW)
        assert s.log_records == 0
        assert export(s, t.id) == expected


def test_checkpoint_keeps_log_records_committed_after_its_drain(engine, tmp_path) -> None:
    with Store(tmp_path / "db", engine=engine) as s:
        t = s.add_tenant("acme")
        s.ingest(t.id, body([["a", NOW_S - 120]], seq=1), NOW)
        drained = s.drain_checkpoint(NOW)
        s.ingest(t.id, body([["b", NOW_S - 60]], seq=2), NOW)
        s.write_checkpoint(s.prepare_checkpoint(drained), NOW)
        assert s.log_records == 1  # the second batch is not in the blocks yet: kept
        s.env.close()
    with Store(tmp_path / "db", engine=engine) as s:  # restart: replays it
        s.checkpoint(NOW)
        assert sorted(export(s, 1)["devices"]) == ["a", "b"]
        assert sum(int(st["frames"].sum()) for _, _, st in s.day_blocks(1, 0, 2**32 - 1)) == 2


def test_devstate_rows_of_some_devices(store) -> None:
    """Reading the rows of a few devices gives exactly those rows of the whole table,
    devices not yet checkpointed included (their defaults), with numpy's index rules."""
    t = store.add_tenant("acme")
    frames = [[f"d{i}", NOW_S - 600 + i, i % 2, 50 + i, -60 - i] for i in range(6)]
    store.ingest(t.id, body(frames), NOW)
    store.checkpoint(NOW)
    store.ingest(t.id, body([["late", NOW_S - 60]], seq=2), NOW)  # in the log, not checkpointed
    whole = store.devstate(t.id)
    assert len(whole) == 7 and whole["last_ms"][0] >= 0 and whole["last_ms"][6] < 0
    for idx in ([0], [5, 1, 1], [6, 0], [-1, -7], [], list(range(7))):
        part = store.devstate(t.id, idx)
        assert part.dtype == whole.dtype and part.tobytes() == whole[idx].tobytes(), idx
        part["last_ms"] = 0  # the caller's own copy
    assert store.devstate(t.id).tobytes() == whole.tobytes()
    for bad in ([7], [-8]):
        with pytest.raises(IndexError):
            store.devstate(t.id, bad)


def test_dedupe_of_any_seq_order_across_restarts(engine, tmp_path) -> None:
    """Gateways mostly send rising seqs, and the writer knows each gateway's highest one: a
    resend of an older seq, before or after a restart, is still a duplicate; an older seq
    never sent is new."""
    frames = [["a", NOW_S - 60]]
    with Store(tmp_path / "db", engine=engine) as s:
        t = s.add_tenant("acme")
        assert [s.ingest(t.id, body(frames, seq=q), NOW).duplicate for q in (5, 3, 5, 3)] == [
            False,
            False,
            True,
            True,
        ]
        s.env.close()  # no checkpoint
    with Store(tmp_path / "db", engine=engine) as s:
        sent = [(q, s.ingest(t.id, body(frames, seq=q), NOW).duplicate) for q in (3, 5, 4, 6, 4)]
        assert sent == [(3, True), (5, True), (4, False), (6, False), (4, True)]
        other = s.ingest(t.id, body(frames, seq=5, gateway="gw2"), NOW)
        assert not other.duplicate
        s.checkpoint(NOW)
        s.env.close()
    with Store(tmp_path / "db", engine=engine) as s:
        assert all(s.ingest(t.id, body(frames, seq=q), NOW).duplicate for q in (3, 4, 5, 6))
        s.checkpoint(NOW)
        stats = next(s.day_blocks(t.id, 0, 2**32 - 1))[2]
        assert int(stats["frames"][0]) == 5  # seqs 3, 4, 5, 6 of gw and seq 5 of gw2


def test_a_resend_of_the_greatest_seq_is_a_duplicate_after_a_restart(engine, tmp_path) -> None:
    """``seq`` is any uint64: the writer finds a gateway's highest stored seq after a restart
    even when it is 2**64 - 1, so a resend of it is still a duplicate."""
    frames = [["a", NOW_S - 60]]
    with Store(tmp_path / "db", engine=engine) as s:
        t = s.add_tenant("acme")
        for seq in (5, 2**64 - 1):
            assert not s.ingest(t.id, body(frames, seq=seq), NOW).duplicate
        assert not s.ingest(t.id, body(frames, seq=2**64 - 1, gateway="gw2"), NOW).duplicate
    with Store(tmp_path / "db", engine=engine) as s:  # restart: the highest seqs are read again
        assert s.ingest(t.id, body(frames, seq=2**64 - 1), NOW).duplicate
        assert s.ingest(t.id, body(frames, seq=2**64 - 1, gateway="gw2"), NOW).duplicate
        s.checkpoint(NOW)
        stats = next(s.day_blocks(t.id, 0, 2**32 - 1))[2]
        assert int(stats["frames"][0]) == 3


def test_a_group_is_one_log_record_and_replays_whole(engine, tmp_path) -> None:
    """A group of batches of several tenants is one log record; replayed after a crash, it
    gives what the same batches give checkpointed."""

    def batches(s: Store) -> list:
        a, b = s.add_tenant("a").id, s.add_tenant("b").id
        return [
            (
                a,
                ingest.decode(
                    s.rollups[a], body([["x", NOW_S - 120], ["y", NOW_S - 60, 1]], seq=1), NOW
                ),
            ),
            (b, ingest.decode(s.rollups[b], body([["x", NOW_S - 300]], seq=1), NOW)),
            (
                a,
                ingest.decode(
                    s.rollups[a], body([["x", NOW_S - 60, 0, 50, -60, "2.1"]], seq=2), NOW
                ),
            ),
            (a, ingest.decode(s.rollups[a], body([["", NOW_S]], seq=3), NOW)),  # nothing accepted
        ]

    with Store(tmp_path / "control", engine=engine) as control:
        for tenant_id, batch in batches(control):
            control.commit([(tenant_id, batch)], NOW)
        control.checkpoint(NOW)
        expected = [export(control, t) for t in (1, 2)]
    crashed = Store(tmp_path / "db", engine=engine)
    results = crashed.commit(batches(crashed), NOW)
    assert [r.accepted for r in results] == [2, 1, 1, 0]
    assert crashed.log_records == 1
    crashed.env.close()
    with Store(tmp_path / "db", engine=engine) as s:
        s.checkpoint(NOW)
        assert [export(s, t) for t in (1, 2)] == expected
        assert s.log_records == 0
        follow = s.ingest(1, body([["z", NOW_S - 60]], seq=4), NOW)
        assert (follow.accepted, s.log_records) == (1, 1)


def test_a_tenant_picked_up_while_a_checkpoint_drains_loses_nothing(engine, tmp_path) -> None:
    """The server's event loop picks up tenants added by the CLI (``refresh_tenants``) while
    its writer thread drains the rollups for a checkpoint: what was drained is not lost."""
    with Store(tmp_path / "db", engine=engine) as s:
        t = s.add_tenant("acme")
        s.ingest(t.id, body([["a", NOW_S - 120]], seq=1), NOW)
        rollup = s.rollups[t.id]

        def cli_adds_a_tenant_and_a_request_for_it_arrives() -> None:
            record = Tenant(2, "newcomer").to_record()
            s.slab.write(lambda txn: txn.put(TENANT_KEY.pack(2), record, db=s.slab.db[b"tenants"]))
            s.refresh_tenants()

        class Draining:
            """The rollup, with the event loop thread running while it is drained."""

            def __getattr__(self, name: str) -> object:
                return getattr(rollup, name)

            def drain(self) -> list:
                deltas = rollup.drain()
                other = threading.Thread(target=cli_adds_a_tenant_and_a_request_for_it_arrives)
                other.start()
                other.join()
                return deltas

        s.rollups[t.id] = Draining()  # type: ignore[assignment]
        try:
            s.checkpoint(NOW)
        except RuntimeError:  # the writer logs a failed checkpoint and goes on
            pass
        s.rollups[t.id] = rollup
        assert s.tenant("newcomer").id == 2
        s.ingest(t.id, body([["a", NOW_S - 60]], seq=2), NOW)
        s.checkpoint(NOW)
        frames = sum(int(st["frames"].sum()) for _, _, st in s.day_blocks(t.id, 0, 2**32 - 1))
        assert frames == 2  # both acknowledged batches


def test_a_drain_that_fails_midway_loses_nothing(engine, tmp_path) -> None:
    """If one tenant's drain fails (out of memory), the tenants drained before it get their
    state back: a later checkpoint stores every acknowledged frame once."""
    with Store(tmp_path / "db", engine=engine) as s:
        a, b = s.add_tenant("acme"), s.add_tenant("bolt")
        s.ingest(a.id, body([["a", NOW_S - 120]], seq=1), NOW)
        s.ingest(b.id, body([["b", NOW_S - 120]], seq=1), NOW)
        rollup = s.rollups[b.id]

        class Failing:
            def __getattr__(self, name: str) -> object:
                return getattr(rollup, name)

            def drain(self) -> list:
                raise MemoryError

        s.rollups[b.id] = Failing()  # type: ignore[assignment]
        with pytest.raises(MemoryError):
            s.checkpoint(NOW)
        s.rollups[b.id] = rollup
        s.ingest(a.id, body([["a", NOW_S - 60]], seq=2), NOW)
        s.checkpoint(NOW)
        for tenant, expected in ((a, 2), (b, 1)):
            blocks = s.day_blocks(tenant.id, 0, 2**32 - 1)
            assert sum(int(stats["frames"].sum()) for _, _, stats in blocks) == expected


def test_checkpoint_keeps_devices_registered_while_it_was_prepared(engine, tmp_path) -> None:
    """The checkpoint folds the drained days into ``devstate`` in the background; a device
    registered or changed before it is written keeps its settings, and the days still land."""
    with Store(tmp_path / "db", engine=engine) as s:
        t = s.add_tenant("acme")
        s.ingest(t.id, body([["a", NOW_S - 120]], seq=1), NOW)
        prepared = s.prepare_checkpoint(s.drain_checkpoint(NOW))
        s.register_device(t.id, "a", retired_ns=NOW)
        s.register_device(t.id, "b", heartbeat_s=300)
        s.write_checkpoint(prepared, NOW)
        state = s.devstate(t.id)
        assert len(state) == 2
        assert int(state["retired_ms"][0]) == NOW // 10**6
        assert int(state["last_ms"][0]) == (NOW_S - 120) * 1000
        assert int(state["heartbeat_s"][1]) == 300
        # unchanged in between: the prepared rows are written as they are
        s.ingest(t.id, body([["b", NOW_S - 60]], seq=2), NOW)
        s.checkpoint(NOW)
        state = s.devstate(t.id)
        assert int(state["retired_ms"][0]) == NOW // 10**6
        assert int(state["last_ms"][1]) == (NOW_S - 60) * 1000


def test_a_failed_registration_keeps_the_heartbeat(engine, tmp_path, monkeypatch) -> None:
    """A heartbeat whose registration was not committed is not used either: frames applied
    now and frames replayed after a restart are covered alike, with the stored one."""
    with Store(tmp_path / "db", engine=engine) as s:
        t = s.add_tenant("acme")
        s.ingest(t.id, body([["a", NOW_S - 600]], seq=1), NOW)

        def disk_full(txn, tenant_id, admitted=None):
            raise lmdb.DiskError("mdb_txn_commit: No space left on device")

        monkeypatch.setattr(s.device_table, "persist_ids", disk_full)
        with pytest.raises(StoreError):
            s.register_device(t.id, "a", heartbeat_s=600)
        monkeypatch.undo()
        assert s.devstate(t.id)["heartbeat_s"][0] == 0  # not stored: the tenant's 60 s
        assert s.rollups[t.id].heartbeat_s(0) == 60
        s.ingest(t.id, body([["a", NOW_S - 300]], seq=2), NOW)
        s.checkpoint(NOW)
        _, block, _ = next(s.day_blocks(t.id, 0, 2**32 - 1))
        cov, _ = block.rows(np.array([0]))
        assert int(np.bitwise_count(cov).sum()) == 2  # a slot a frame, as after a restart


WRITER = """
import sys, msgpack
from core.store import Store
with Store(sys.argv[1]) as s:
    frames = [{"d": "b", "t": int(sys.argv[2]), "fw": "2.0"}]
    s.ingest(1, msgpack.packb({"gateway": "gw", "seq": 2, "frames": frames}), int(sys.argv[3]))
    s.checkpoint(int(sys.argv[3]))
"""


def test_a_reader_in_another_process_sees_devices_of_later_checkpoints(engine, tmp_path) -> None:
    """A read-only store (the dashboard) follows the writer's checkpoints: devices and
    firmware the writer stored after the reader opened show in its answers too."""
    path = tmp_path / "db"
    with Store(path, engine=engine) as s:
        t = s.add_tenant("acme")
        s.ingest(t.id, body([{"d": "a", "t": NOW_S - 120, "fw": "1.0"}], seq=1), NOW)
        s.checkpoint(NOW)
    with Store(path, readonly=True, engine=engine) as reader:
        assert reader.device_ids(t.id) == ["a"]
        args = [str(path), str(NOW_S - 60), str(NOW)]
        subprocess.run([sys.executable, "-c", WRITER, *args], cwd=REPO, check=True)
        assert reader.device_ids(t.id) == ["a", "b"]
        state = reader.devstate(t.id)
        assert len(state) == 2 and int(state["last_ms"][1]) == (NOW_S - 60) * 1000
        assert reader.firmware_names(t.id)[int(state["fw_last"][1])] == "2.0"


def test_devices_come_only_with_committed_batches_and_the_cap_is_exact(engine, tmp_path) -> None:
    tiers = {"three": Tier(device_cap=3)}
    with Store(tmp_path / "db", engine=engine, tiers=tiers) as s:
        t = s.add_tenant("acme", plan="three")
        first = ingest.decode(s.rollups[t.id], body([["a", NOW_S - 60]], seq=1), NOW)
        ghost = ingest.decode(
            s.rollups[t.id], body([["ghost", NOW_S - 60]], seq=1), NOW
        )  # seq reused
        assert ghost.new_ids == ["ghost"] and s.rollups[t.id].n_devices == 0
        results = s.commit([(t.id, first), (t.id, ghost)], NOW)
        assert [r.duplicate for r in results] == [False, True]
        assert s.device_ids(t.id) == ["a"] and s.rollups[t.id].device_ids() == ["a"]
        # two batches of one group share a new device, and meet the cap between them
        b2 = ingest.decode(
            s.rollups[t.id], body([["b", NOW_S - 60], ["c", NOW_S - 60]], seq=2), NOW
        )
        b3 = ingest.decode(
            s.rollups[t.id], body([["c", NOW_S - 50], ["d", NOW_S - 50], ["a", NOW_S]], seq=3), NOW
        )
        r2, r3 = s.commit([(t.id, b2), (t.id, b3)], NOW)
        assert (r2.accepted, r2.rejected) == (2, 0)
        assert (r3.accepted, r3.rejected) == (2, 1)
        assert r3.errors == [{"index": 1, "reason": "device cap reached"}]
        assert s.device_ids(t.id) == ["a", "b", "c"]
        s.checkpoint(NOW)
        frames = {
            s.device_ids(t.id)[dev]: int(n)
            for _, _, stats in s.day_blocks(t.id, 0, 2**32 - 1)
            for dev, n in enumerate(stats["frames"])
            if n
        }
        assert frames == {"a": 2, "b": 1, "c": 2}
    with Store(tmp_path / "db", engine=engine, tiers=tiers) as s:  # and so after a restart
        assert s.device_ids(t.id) == ["a", "b", "c"]
        assert s.rollups[t.id].device_ids() == ["a", "b", "c"]


def test_a_restart_replays_the_log_of_the_crash_before_it_only(engine, tmp_path) -> None:
    """What a start replays is checkpointed at once (the server does so as it starts), so
    crashes in a row, less than a checkpoint interval apart, do not pile the log up: each
    start replays only what was committed since the one before, and the data reads back the
    same."""
    frames = [["a", NOW_S - 600 + 60 * i, int(i % 5 == 0)] for i in range(10)]
    with Store(tmp_path / "control", engine=engine) as control:
        t = control.add_tenant("acme")
        control.ingest(t.id, body(frames[:5], seq=1), NOW)
        control.ingest(t.id, body(frames[5:], seq=2), NOW)
        control.checkpoint(NOW)
        expected = export(control, t.id)
    crashed = Store(tmp_path / "db", engine=engine)
    t = crashed.add_tenant("acme")
    crashed.ingest(t.id, body(frames[:5], seq=1), NOW)
    crashed.env.close()  # no checkpoint: as if the process died here
    restarted = Store(tmp_path / "db", engine=engine)
    assert restarted.replayed_records == 1
    assert restarted.checkpoint_replayed_log(NOW) > 0
    assert restarted.log_records == 0
    restarted.ingest(t.id, body(frames[5:], seq=2), NOW)
    restarted.env.close()  # and it dies too, before its first checkpoint
    with Store(tmp_path / "db", engine=engine) as s:
        assert s.replayed_records == 1  # only the batch committed since the last start
        s.checkpoint_replayed_log(NOW)
        assert s.log_records == 0
        assert s.checkpoint_replayed_log(NOW) == 0  # nothing more to fold in
        assert s.ingest(t.id, body(frames[:5], seq=1), NOW).duplicate
        assert export(s, t.id) == expected


def test_a_tenant_has_the_cap_and_heartbeat_of_its_tier_by_name(engine, tmp_path) -> None:
    """A tenant stores its tier's name only: what the tier allows comes from the tiers the
    store is opened with; a name they no longer define falls back as the rate does
    (``tier_of``: the standard tier)."""
    path = tmp_path / "db"
    with Store(path, engine=engine, tiers={"small": Tier(device_cap=1, heartbeat_s=120)}) as s:
        t = s.add_tenant("acme", plan="small")
        assert (t.device_cap, t.heartbeat_s, s.rollups[t.id].default_heartbeat_s) == (1, 120, 120)
        s.ingest(t.id, body([["a", NOW_S - 60], ["b", NOW_S - 60]], seq=1), NOW)
        assert s.device_ids(t.id) == ["a"]
        s.checkpoint(NOW)
    with Store(path, engine=engine, tiers={"small": Tier(device_cap=2, heartbeat_s=300)}) as s:
        t = s.tenant("acme")
        assert (t.plan, t.device_cap, t.heartbeat_s) == ("small", 2, 300)
        assert (s.rollups[t.id].device_cap, s.rollups[t.id].default_heartbeat_s) == (2, 300)
        s.ingest(t.id, body([["b", NOW_S - 30], ["c", NOW_S - 30]], seq=2), NOW)
        assert s.device_ids(t.id) == ["a", "b"]
        s.checkpoint(NOW)
    with Store(path, engine=engine, tiers={"standard": Tier(heartbeat_s=90)}) as s:
        t = s.tenant("acme")
        assert (t.plan, t.device_cap, t.heartbeat_s) == ("small", 0, 90)


def test_a_tenant_record_with_copied_tier_settings_still_loads(engine, tmp_path) -> None:
    """Records written before tenants kept only the tier's name carry copies of the cap and
    heartbeat: they load, and the copies are ignored."""
    path = tmp_path / "db"
    with Store(path, engine=engine) as s:
        old = msgpack.packb(
            {
                "name": "legacy",
                "plan": "basic",
                "slot_s": 300,
                "heartbeat_s": 30,
                "device_cap": 9,
                "closed_before_ns": 5,
                "settings": {"zone": "eu"},
            }
        )

        def work(txn) -> None:
            txn.put(TENANT_KEY.pack(1), old, db=s.slab.db[b"tenants"])
            txn.put(b"legacy", TENANT_KEY.pack(1), db=s.slab.db[b"tenant_names"])

        s.slab.write(work)
    with Store(path, engine=engine) as s:
        t = s.tenant("legacy")
        assert (t.id, t.plan, t.slot_s, t.closed_before_ns, t.settings) == (
            1,
            "basic",
            300,
            5,
            {"zone": "eu"},
        )
        assert (t.device_cap, t.heartbeat_s) == (1_000, 60)  # the basic tier's
        assert s.rollups[t.id].device_cap == 1_000


def test_device_index_reads_the_stored_ids(engine, tmp_path) -> None:
    """``device_index`` answers from the stored ids: a device only decoded (not committed)
    has none, and a read-only store follows the writer's new devices without interning them
    in any rollup (it has none)."""
    path = tmp_path / "db"
    with Store(path, engine=engine) as s:
        t = s.add_tenant("acme")
        s.ingest(t.id, body([{"d": "a", "t": NOW_S - 120, "fw": "1.0"}], seq=1), NOW)
        ingest.decode(s.rollups[t.id], body([["ghost", NOW_S - 60]], seq=2), NOW)  # never committed
        assert (s.device_index(t.id, "a"), s.device_index(t.id, "ghost")) == (0, None)
        s.checkpoint(NOW)
    with Store(path, readonly=True, engine=engine) as reader:
        assert reader.rollups == {}
        assert reader.device_index(t.id, "b") is None
        args = [str(path), str(NOW_S - 60), str(NOW)]
        subprocess.run([sys.executable, "-c", WRITER, *args], cwd=REPO, check=True)
        assert (reader.device_index(t.id, "a"), reader.device_index(t.id, "b")) == (0, 1)
        assert reader.firmware_names(t.id) == ["", "1.0", "2.0"]
        assert reader.rollups == {}


def test_a_reader_of_a_store_that_lacks_this_versions_tables_says_what_to_do(tmp_path) -> None:
    from core.store.slab import Slab, StoreError

    old = Slab(tmp_path / "old", (b"meta", b"tenants"), schema=1, map_size=1 << 20, readonly=False)
    old.env.close()
    with pytest.raises(StoreError, match="lacks the tables .*incidents.* run uptally serve"):
        Store(tmp_path / "old", readonly=True)
    Store(tmp_path / "old").close()  # a writer adds them
    Store(tmp_path / "old", readonly=True).close()
