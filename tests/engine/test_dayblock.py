"""The day block codec and merge rules (engine-independent: plain numpy)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import core.dayblock
from core.dayblock import (
    KIND_EMPTY,
    KIND_FULL,
    KIND_RAW,
    KIND_RUNS,
    decode_bitmaps,
    empty_stats,
    encode_bitmaps,
    merge_bitmaps,
    merge_stats,
)


def _rows(data: st.DataObject, n: int, slots: int) -> np.ndarray:
    rows = []
    for _ in range(n):
        style = data.draw(st.sampled_from(["empty", "full", "runs", "noise"]))
        if style == "empty":
            bits = np.zeros(slots, bool)
        elif style == "full":
            bits = np.ones(slots, bool)
        elif style == "runs":
            cuts = sorted(data.draw(st.lists(st.integers(0, slots), max_size=8)))
            bits = np.zeros(slots, bool)
            for i, (a, b) in enumerate(zip([0] + cuts, cuts + [slots], strict=True)):
                bits[a:b] = i % 2 == 1
        else:
            seed = data.draw(st.integers(0, 2**32 - 1))
            bits = np.random.default_rng(seed).random(slots) < 0.5
        rows.append(np.packbits(bits, bitorder="little"))
    return np.array(rows, np.uint8).reshape(n, (slots + 7) // 8)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), slots=st.sampled_from([24, 288, 1440, 8640, 86400]), n=st.integers(0, 12))
def test_bitmap_block_round_trip(data, slots, n) -> None:
    cov, fault = _rows(data, n, slots), _rows(data, n, slots)
    raw = encode_bitmaps(cov, fault, slots)
    assert encode_bitmaps(cov, fault, slots) == raw  # deterministic
    block = decode_bitmaps(raw)
    got_cov, got_fault = block.dense()
    assert np.array_equal(got_cov, cov) and np.array_equal(got_fault, fault)
    picks = np.array(data.draw(st.lists(st.integers(0, n + 3), max_size=10)), np.int64)
    sel_cov, sel_fault = block.rows(picks)
    inside = picks < n
    assert np.array_equal(sel_cov[inside], cov[picks[inside]])
    assert np.array_equal(sel_fault[inside], fault[picks[inside]])
    assert not sel_cov[~inside].any() and not sel_fault[~inside].any()


def test_kinds_pick_the_cheapest_form() -> None:
    slots = 1440
    bits = np.zeros((4, slots), bool)
    bits[1] = True
    bits[2, 100:200] = True
    bits[3] = np.random.default_rng(0).random(slots) < 0.5
    block = decode_bitmaps(
        encode_bitmaps(
            np.packbits(bits, axis=1, bitorder="little"), np.zeros((4, 180), np.uint8), slots
        )
    )
    assert block.cov_kind.tolist() == [KIND_EMPTY, KIND_FULL, KIND_RUNS, KIND_RAW]
    assert block.busy.tolist() == [2, 3]


def test_merge_stats_is_commutative_associative_and_idempotent_on_last_values() -> None:
    rng = np.random.default_rng(3)
    rows = empty_stats(3)
    for row in rows:
        row["frames"] = rng.integers(1, 9)
        row["first_ms"] = rng.integers(0, 1000)
        row["last_ms"] = rng.integers(0, 1000)
        row["last_status"] = rng.integers(0, 3)
        row["batt_ms"], row["batt_last"] = rng.integers(0, 5), rng.integers(0, 1000)
        row["batt_min"] = rng.integers(0, 1000)
        row["fw_ms"], row["fw_last"] = 7, rng.integers(1, 4)
    a, b, c = rows[0:1], rows[1:2], rows[2:3]
    rank = np.array([0, 3, 1, 2])  # firmware ids ranked by their names
    ab_c = merge_stats(merge_stats(a, b, rank), c, rank)
    a_bc = merge_stats(a, merge_stats(b, c, rank), rank)
    assert ab_c.tobytes() == a_bc.tobytes()
    assert merge_stats(a, b, rank).tobytes() == merge_stats(b, a, rank).tobytes()
    twice = merge_stats(a, a, rank)
    for name in ("first_ms", "last_ms", "last_status", "batt_last", "batt_min", "fw_last"):
        assert twice[name] == a[name]
    assert twice["frames"] == 2 * a["frames"]  # deliveries add up
    fw_winner = max((int(r["fw_last"]) for r in rows), key=lambda f: rank[f])
    assert int(ab_c["fw_last"][0]) == fw_winner  # a tie on time goes to the greater name


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    slots=st.sampled_from([24, 1440]),
    n_old=st.integers(0, 40),
    chunk=st.integers(1, 9),
)
def test_chunked_encode_and_merge_give_the_whole_day_bytes(data, slots, n_old, chunk) -> None:
    """Blocks are encoded, and stored days merged with a delta, a chunk of devices at a time
    (so that no numpy call holds the GIL for long); the bytes are those of doing it whole."""
    old_cov, old_fault = _rows(data, n_old, slots), _rows(data, n_old, slots)
    devs = sorted(set(data.draw(st.lists(st.integers(0, 50), max_size=30))))
    dev = np.array(devs, np.uint32)
    cov, fault = _rows(data, len(dev), slots), _rows(data, len(dev), slots)
    stored = encode_bitmaps(old_cov, old_fault, slots) if n_old else None
    # the reference: whole arrays, one step
    n = max(n_old, int(dev.max()) + 1 if len(dev) else 0)
    want_cov = np.zeros((n, (slots + 7) // 8), np.uint8)
    want_fault = np.zeros_like(want_cov)
    want_cov[:n_old], want_fault[:n_old] = old_cov, old_fault
    want_cov[dev.astype(np.int64)] |= cov
    want_fault[dev.astype(np.int64)] |= fault
    whole = encode_bitmaps(want_cov, want_fault, slots)
    saved = core.dayblock.CHUNK_ROWS
    core.dayblock.CHUNK_ROWS = chunk
    try:
        assert encode_bitmaps(want_cov, want_fault, slots) == whole
        merged, n_merged = merge_bitmaps(stored, dev, cov, fault, slots)
    finally:
        core.dayblock.CHUNK_ROWS = saved
    assert (merged, n_merged) == (whole, n)
    back_cov, back_fault = decode_bitmaps(merged).dense()
    assert np.array_equal(back_cov, want_cov) and np.array_equal(back_fault, want_fault)
