"""Smoke test of the end-to-end benchmark: a tiny run against live servers, checking the
bookkeeping (every answer 200, the store holds exactly the acknowledged frames), not speed."""

from __future__ import annotations

import json
import time

import msgpack
import pytest

from bench.e2e import E2EConfig, report, run
from bench.load import LoadSpec, encode_phase
from core.rollup import RollupC, RollupPy


def test_bodies_are_msgpack_of_fresh_batches() -> None:
    spec = LoadSpec(
        url="", token="", batch_size=100, batches=12, senders=3, devices=500, seq_base=7
    )
    now_s = int(time.time())
    per_sender = encode_phase(spec, now_s)
    assert [len(bodies) for bodies in per_sender] == [4, 4, 4]
    seen: set[tuple[str, int]] = set()
    frames: set[tuple[str, int]] = set()
    engine = RollupPy()
    for s, bodies in enumerate(per_sender):
        for body in bodies:
            batch = msgpack.unpackb(body)
            assert msgpack.packb(batch) == body  # byte for byte what msgpack makes
            assert batch["gateway"] == f"bench-gw-{s:02d}"
            seen.add((batch["gateway"], batch["seq"]))
            assert len({f[0] for f in batch["frames"]}) == 100  # different devices
            for device, ts, status, battery, rssi in batch["frames"]:
                assert now_s - 3_540 <= ts <= now_s - 60
                assert 0 <= status <= 3 and 5 <= battery <= 100 and -120 <= rssi <= -40
                frames.add((device, ts))
            assert engine.decode(body, now_s * 10**9).accepted == 100
    assert len(seen) == 12  # a new seq on every body
    assert len(frames) == 1_200  # no frame sent twice


@pytest.mark.slow
def test_tiny_run_acknowledges_and_stores_every_frame() -> None:
    cfg = E2EConfig(
        devices=2_000,
        senders=2,
        batch_sizes=(100,),
        duration_s={"floor": 30.0, "cython": 30.0, "python": 30.0},
        max_frames={"floor": 2_000, "cython": 2_000, "python": 2_000},  # 20 batches of 100
        quick=True,
    )
    doc = run(cfg, log=lambda line: None)
    json.dumps(doc)
    assert doc["check"]["agree"], doc["check"]["problems"]
    engines = {row["engine"]: row for row in doc["results"]}
    assert ("skipped" in engines["cython"]) == (RollupC is None)
    for row in engines.values():
        if "skipped" in row:
            continue
        (phase,) = row["phases"]
        assert phase["acked"] == phase["sent"] == 20 and phase["frames_acked"] == 2_000
        assert phase["non_200"] == {} and phase["errors"] == {}
        assert row["check"]["pass"]
        # the floor server stores nothing; it counts frames from the array header
        assert row["check"]["stored_frames"] == (None if row["engine"] == "floor" else 4_000)
    (floor,) = doc["floor"]
    assert floor["batch_size"] == 100 and floor["floor_frames_per_s"] > 0
    assert (floor["cython_share"] is None) == (RollupC is None)
    text = report(doc)
    assert "stored" in text and "HTTP floor" in text
