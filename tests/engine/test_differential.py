"""The Cython engine against its Python twin, directly: same bytes in, same everything out.

RollupPy is the specification. Every test here builds both engines, feeds them the same input
(valid, malformed, hostile) and requires the same exception class and message, or the same
Batch to the last array element, the same interned ids afterwards, and the same drain().
The extension is compiled with boundscheck/wraparound off, so these tests are also what shows
that the C walker never reads outside the body.
"""

from __future__ import annotations

import struct
import sys
import threading
import time
from typing import Any

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from core.batch import Batch
from core.errors import BatchError
from core.rollup import NO_EXTENSIONS, RollupC, RollupPy
from tests.support.strategies import (
    BATTERY,
    DAY_S,
    DECODE_KW,
    DEVICE_POOL,
    JUNK,
    NOW,
    NOW_S,
    RSSI,
    SECONDS,
    STATUS,
    TS,
    batch_body,
    compact_frame,
    container_forms,
    enc_str,
    map_frame,
    str_forms,
)

# With UPTALLY_NO_EXTENSIONS there is no C engine by design and conftest does not collect this
# module; in every other run the C engine must exist.
assert not NO_EXTENSIONS


def make_c(*args: Any, **kwargs: Any) -> Any:
    if RollupC is None:
        pytest.fail("the Cython engine core._rollup did not load; run `make build`")
    return RollupC(*args, **kwargs)


def pair(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
    return RollupPy(*args, **kwargs), make_c(*args, **kwargs)


def test_c_engine_present() -> None:
    assert RollupC is not None, "core._rollup did not build or import"
    assert RollupC.engine == "c"
    import core._rollup

    assert core._rollup.ENGINE == "c"


# --- comparing -------------------------------------------------------------------------------

COLUMNS = ("reasons", "warnings_mask", "dev", "ts", "status", "battery", "rssi", "fw")


def batch_view(b: Batch) -> tuple[Any, ...]:
    arrays = tuple((getattr(b, c).dtype.str, getattr(b, c).tolist()) for c in COLUMNS)
    return (b.gateway, b.seq, b.sent_at_ns, arrays, b.errors, b.new_ids)


def outcome(rollup: Any, body: bytes, now: int = NOW, **kw: Any) -> tuple[Any, ...]:
    try:
        batch = rollup.decode(body, now, **kw)
    except BatchError as e:
        return ("refused", type(e), str(e))
    # as decoded (new devices numbered in the batch), then admitted (interned, capped)
    return ("ok", batch_view(batch), batch_view(rollup.admit(batch)))


def same_decode(py: Any, c: Any, body: bytes, now: int = NOW, **kw: Any) -> tuple[Any, ...]:
    a = outcome(py, body, now, **kw)
    b = outcome(c, body, now, **kw)
    assert a == b
    assert py.device_ids() == c.device_ids()
    assert py.firmware_ids() == c.firmware_ids()
    assert py.n_devices == c.n_devices and py.n_firmware == c.n_firmware
    return a


def same_drain(py: Any, c: Any) -> None:
    assert py.pending_days == c.pending_days
    a, b = py.drain(), c.drain()
    assert [d.day for d in a] == [d.day for d in b]
    for x, y in zip(a, b, strict=True):
        for name in ("dev", "cov", "fault"):
            u, v = getattr(x, name), getattr(y, name)
            assert u.dtype == v.dtype and u.shape == v.shape, name
            assert np.array_equal(u, v), (x.day, name)
        assert x.stats.dtype == y.stats.dtype
        for field in x.stats.dtype.names:
            assert x.stats[field].tolist() == y.stats[field].tolist(), (x.day, field)
    assert py.pending_days == c.pending_days == 0


# --- (1) random batches ----------------------------------------------------------------------


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    bodies=st.lists(batch_body(), min_size=1, max_size=3),
    kw=DECODE_KW,
    cap=st.sampled_from([0, 0, 4]),
)
def test_random_batches(bodies: list[bytes], kw: dict[str, Any], cap: int) -> None:
    py, c = pair(device_cap=cap)
    for body in bodies:
        same_decode(py, c, body, **kw)


@settings(max_examples=300, deadline=None)
@given(frames=st.lists(st.one_of(compact_frame(), map_frame()), min_size=1, max_size=20))
def test_random_frames_in_valid_batch(frames: list[bytes]) -> None:
    py, c = pair()
    body = (
        b"\x82\xa7gateway\xa2gw\xa6frames"
        + container_forms(len(frames), b"".join(frames), False)[-1]
    )
    result = same_decode(py, c, body)
    assert result[0] == "ok"


def _uint(code: int, width: int, v: int) -> bytes:
    return bytes([code]) + v.to_bytes(width, "big")


# compact frames in (and just beside) the shapes of the engine's fast path: each field is of a
# fast shape three times in four, so that whole frames of it are common
WINDOW_S = st.integers(NOW_S - 7 * DAY_S + 1, NOW_S + 300)


def _fast(shapes: st.SearchStrategy[bytes], other: st.SearchStrategy[bytes]) -> Any:
    return st.integers(0, 3).flatmap(lambda k: shapes if k else other)


FAST_FIELDS = [
    _fast(
        enc_str(st.sampled_from(DEVICE_POOL[:8] + ["a", "b" * 31, "c" * 32, "d" * 128])),
        enc_str(st.text(st.characters(max_codepoint=0x7F), max_size=130))
        | enc_str(st.text(max_size=10)),
    ),
    _fast(
        st.one_of(
            WINDOW_S.map(lambda v: _uint(0xCE, 4, v)),
            WINDOW_S.map(lambda v: _uint(0xCF, 8, v)),
            WINDOW_S.map(lambda v: _uint(0xCF, 8, v * 1000 + 999)),
        ),
        st.one_of(
            st.sampled_from(
                [99_999_999_999, 100_000_000_000, 9_223_372_036_853, 9_223_372_036_854, 2**64 - 1]
            ).map(lambda v: _uint(0xCF, 8, v)),
            SECONDS.map(lambda v: _uint(0xCE, 4, v)),
            TS,
        ),
    ),
    _fast(st.integers(0, 0x7F).map(lambda b: bytes([b])), STATUS),
    _fast(st.integers(0, 100).map(lambda b: bytes([b])) | st.just(b"\xc0"), BATTERY),
    _fast(
        st.integers(0xE0, 0xFF).map(lambda b: bytes([b]))
        | st.integers(0x80, 0xFF).map(lambda b: b"\xd0" + bytes([b]))
        | st.sampled_from([b"\x00", b"\xc0"]),
        st.integers(0, 0x7F).map(lambda b: b"\xd0" + bytes([b])) | RSSI,
    ),
]


@st.composite
def fast_frame(draw: st.DrawFn) -> bytes:
    n = draw(st.integers(2, 5)) if draw(st.integers(0, 7)) else draw(st.integers(0, 7))
    items = [draw(FAST_FIELDS[i]) if i < 5 else draw(JUNK) for i in range(n)]
    return bytes([0x90 + n]) + b"".join(items)


@st.composite
def fast_map_frame(draw: st.DrawFn) -> bytes:
    """Mostly distinct one-letter keys in any order; now and then a long, unknown or repeated
    key, or a value of another shape."""
    order = draw(st.permutations(range(5)))
    keep = draw(st.integers(1, 5)) if draw(st.integers(0, 7)) else draw(st.integers(0, 5))
    pairs = [(b"\xa1" + b"dtsbr"[i : i + 1], draw(FAST_FIELDS[i])) for i in order[:keep]]
    if not draw(st.integers(0, 4)):
        i = draw(st.integers(0, 7))
        key = [b"\xa1d", b"\xa1t", b"\xa1s", b"\xa1b", b"\xa1r", b"\xa1x", b"\xa2fw", b"\xa2ts"][i]
        value = draw(FAST_FIELDS[i] if i < 5 else JUNK)
        pairs.insert(draw(st.integers(0, len(pairs))), (key, value))
    return bytes([0x80 + len(pairs)]) + b"".join(k + v for k, v in pairs)


@settings(max_examples=500, deadline=None)
@given(
    frames=st.lists(fast_frame() | fast_map_frame() | compact_frame(), min_size=1, max_size=20),
    kw=DECODE_KW,
)
@example(  # a uint64 count of seconds past what int64 nanoseconds hold
    frames=[b"\x92\xb2site-000/dev-00000\xcf\x00\x00\x00\x17Hv\xe7\xff"],
    kw={"max_future_skew_s": 10**12},
)
@example(  # a repeated key: the last wins, and a nil one takes the field away
    frames=[b"\x84\xa1d\xa1a\xa1t\xce\x65\x53\xf1\x00\xa1b\x32\xa1b\xc0"], kw={}
)
def test_frames_away_from_the_end(frames: list[bytes], kw: dict[str, Any]) -> None:
    """Frames with 200 bytes of body after the last: every frame is in reach of the engine's
    fast path for the usual compact and map frames, which must judge exactly as the general
    walk does (or leave the frame to it)."""
    py, c = pair()
    body = (
        b"\x83\xa7gateway\xa2gw\xa6frames"
        + container_forms(len(frames), b"".join(frames), False)[-1]
        + b"\xa3pad\xd9\xc8"
        + b"p" * 200
    )
    same_decode(py, c, body, **kw)


@settings(max_examples=200, deadline=None)
@given(
    frames=st.lists(
        st.fixed_dictionaries(
            {
                "d": st.sampled_from(DEVICE_POOL) | st.integers(0, 2**64 - 1),
                "t": st.integers(NOW_S - 7 * DAY_S, NOW_S + 300)
                | st.floats(NOW_S - 7 * DAY_S, NOW_S + 300),
            },
            optional={
                "s": st.integers(0, 255),
                "b": st.integers(0, 100) | st.floats(0, 100),
                "r": st.integers(-200, 0) | st.floats(-200, 0),
                "fw": st.sampled_from(["1.0", "1.1", "2.0-rc1"]),
                "device": st.text(max_size=5),
            },
        ),
        max_size=30,
    ),
    single=st.booleans(),
)
def test_packb_batches(frames: list[dict[str, Any]], single: bool) -> None:
    """Bodies as a real gateway's msgpack library writes them, floats in both widths."""
    py, c = pair()
    compact = [[f["d"], f["t"], f.get("s", 0), f.get("b"), f.get("r")] for f in frames]
    body = msgpack.packb(
        {"v": 1, "gateway": "gw", "seq": 1, "sent_at": NOW_S, "frames": frames + compact},
        use_single_float=single,
    )
    assert same_decode(py, c, body)[0] == "ok"


# --- (2) mutations of valid batches ----------------------------------------------------------

VALID_BODIES = [
    msgpack.packb(
        {
            "v": 1,
            "gateway": "gw-1",
            "seq": 7,
            "sent_at": msgpack.Timestamp(NOW_S, 5),
            "frames": [
                ["site-001/dev-00001", NOW_S - 60, 0, 87.5, -70],
                {"d": "site-001/dev-00002", "ts": (NOW_S - 30) * 1000, "fw": "1.2.3", "b": 50},
                [17, NOW_S - 10.25, 3, None, -80.5],
                {"device": "site-002/dev-00001", "t": msgpack.Timestamp(NOW_S - 5, 999)},
            ],
        }
    ),
    msgpack.packb(
        {"gateway": "g", "frames": [["a", NOW_S, 0, 1, -1, "x"]] * 3, "junk": [[{}], {"k": [1]}]}
    ),
]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(VALID_BODIES) | batch_body()))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        if not data and op != "insert":
            continue
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            data[at] = draw(st.sampled_from([0x00, 0x7F, 0xC1, 0xDD, 0xDF, 0xFF, 0xC9, 0xDB]))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=5))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 5))]
        else:
            del data[at:]
    return bytes(data)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=mutated())
def test_mutated_batches(body: bytes) -> None:
    py, c = pair()
    same_decode(py, c, body)


# --- (3) apply + drain on random fleets ------------------------------------------------------

MIDNIGHT = NOW_S - NOW_S % DAY_S  # a UTC midnight, in seconds


@st.composite
def fleet_run(draw: st.DrawFn) -> tuple[Any, ...]:
    slot_s = draw(st.sampled_from([1, 60, 60, 300, 3600, 86_400]))
    heartbeat = draw(st.sampled_from([1, 60, 90, 600, 7200, 2 * DAY_S + 5]))
    n_dev = draw(st.integers(1, 6))
    heartbeats = draw(
        st.lists(
            st.sampled_from([None, 30, 60, 61, 3600, DAY_S + 1]), min_size=n_dev, max_size=n_dev
        )
    )
    # timestamps cluster around midnights so that days and coverage cross them
    offset = st.one_of(
        st.integers(-3 * DAY_S, DAY_S),
        st.integers(-120, 120),
        st.integers(-120, 120).map(lambda s: s - DAY_S),
        st.sampled_from([-1, 0, 1, -60, 60, -DAY_S]),
    )
    frame = st.tuples(
        st.integers(0, n_dev - 1),
        offset,
        st.integers(0, 999),  # ms
        st.sampled_from([0, 0, 0, 1, 7, 255]),
        st.sampled_from([None, 0, 50, 50.05, 100, 99.9]),
        st.sampled_from([None, -200, -70, -70.04, 0]),
        st.sampled_from([None, "1.0", "1.1", "0.9", "1.10"]),
        st.booleans(),  # compact or map form
    )
    rounds = draw(st.lists(st.lists(frame, max_size=25), min_size=1, max_size=4))
    drains = draw(st.lists(st.booleans(), min_size=len(rounds), max_size=len(rounds)))
    return slot_s, heartbeat, heartbeats, rounds, drains


def fleet_body(frames: list[tuple[Any, ...]]) -> bytes:
    out = []
    for dev, offset, ms, status, battery, rssi, fw, compact in frames:
        device = f"site-{dev % 2:03d}/dev-{dev:05d}"
        ts = (MIDNIGHT + offset) * 1000 + ms
        if compact and fw is None:
            out.append([device, ts, status, battery, rssi])
        else:
            f = {"d": device, "t": ts, "s": status, "b": battery, "r": rssi}
            if fw is not None:
                f["fw"] = fw
            out.append(f)
    return msgpack.packb({"v": 1, "gateway": "gw", "frames": out})


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(run=fleet_run())
def test_apply_drain_random_fleets(run: tuple[Any, ...]) -> None:
    slot_s, heartbeat, heartbeats, rounds, drains = run
    py, c = pair(slot_s=slot_s, heartbeat_s=heartbeat)
    for i, hb in enumerate(heartbeats):
        name = f"site-{i % 2:03d}/dev-{i:05d}"
        assert py.add_device(name) == c.add_device(name) == i
        if hb is not None:
            py.set_heartbeat(i, hb)
            c.set_heartbeat(i, hb)
    for frames, drain in zip(rounds, drains, strict=True):
        body = fleet_body(frames)
        kw = {"max_backfill_s": 10 * DAY_S}
        now = (MIDNIGHT + 2 * DAY_S) * 10**9
        a, b = py.decode(body, now, **kw), c.decode(body, now, **kw)
        assert batch_view(a) == batch_view(b)
        py.apply(a)
        c.apply(b)
        assert py.pending_days == c.pending_days
        if drain:
            same_drain(py, c)
    same_drain(py, c)
    assert (py.fw_rank() == c.fw_rank()).all()


@settings(max_examples=60, deadline=None)
@given(
    frames=st.lists(
        st.tuples(
            st.integers(0, 3),
            st.one_of(
                st.integers(-(2**40), 2**62),
                # whole seconds, and a nanosecond either side of them and of midnight
                st.tuples(st.integers(0, 2**33), st.sampled_from([0, 0, 1, -1])).map(
                    lambda x: max(0, x[0] * 10**9 + x[1])
                ),
                st.tuples(st.integers(0, 106_000), st.sampled_from([0, 1, -1])).map(
                    lambda x: max(0, x[0] * DAY_S * 10**9 + x[1])
                ),
                st.just(2**63 - 1),
            ),
            st.integers(0, 255),
            st.integers(-1, 1000),
            st.integers(-2000, 1),
            st.integers(0, 3),
        ),
        max_size=40,
    ),
    heartbeats=st.lists(
        st.sampled_from([1, 60, 299, 300, 86_400, 2**32 - 1]), min_size=4, max_size=4
    ),
)
def test_apply_hand_made_batches(frames: list[tuple[int, ...]], heartbeats: list[int]) -> None:
    """apply() also takes batches built by hand (log replay): times anywhere in int64."""
    py, c = pair(slot_s=300)
    for i, hb in enumerate(heartbeats):
        for r in (py, c):
            r.add_device(f"d{i}")
            r.set_heartbeat(i, hb)
    for fw in ("a", "b", "c"):
        py.add_firmware(fw)
        c.add_firmware(fw)
    cols = list(zip(*frames, strict=True)) if frames else [()] * 6
    dtypes = (np.uint32, np.int64, np.uint8, np.int16, np.int16, np.uint16)
    arrays = [np.array(col, dt) for col, dt in zip(cols, dtypes, strict=True)]
    batch = Batch(
        "g", None, None, np.zeros(len(frames), np.uint8), np.zeros(len(frames), np.uint8), *arrays
    )
    py.apply(batch)
    c.apply(batch)
    same_drain(py, c)


def hand_batch(dev: list[int], ts: list[int], fw: list[int]) -> Batch:
    n = len(dev)
    zeros = np.zeros(n, np.uint8)
    return Batch(
        "g",
        None,
        None,
        zeros,
        zeros,
        np.array(dev, np.uint32),
        np.array(ts, np.int64),
        zeros,
        np.full(n, 50, np.int16),
        np.full(n, -60, np.int16),
        np.array(fw, np.uint16),
    )


def test_apply_refuses_unknown_ids_whole() -> None:
    """A batch naming a device or firmware id the rollup does not hold changes nothing."""
    t = NOW_S * 10**9
    for r in pair():
        r.add_device("a")
        r.add_firmware("1.0")
        for bad in (hand_batch([0, 1], [t, t], [0, 0]), hand_batch([0, 0], [t, t], [1, 2])):
            with pytest.raises(IndexError, match="does not hold"):
                r.apply(bad)
            assert r.pending_days == 0
        r.apply(hand_batch([0], [t], [1]))
        assert r.pending_days == 1


def test_huge_heartbeat_covers_every_day() -> None:
    """A heartbeat of years: one frame covers every slot to its end, in both engines."""
    py, c = pair(slot_s=60)
    for r in (py, c):
        r.add_device("a")
        r.set_heartbeat(0, 3 * 365 * DAY_S + 123)
        r.apply(hand_batch([0], [(MIDNIGHT + 7_000) * 10**9], [0]))
    assert py.pending_days == 3 * 365 + 1
    same_drain(py, c)


def test_firmware_table_limit() -> None:
    for r in pair():
        for i in range(65_535):
            r.add_firmware(f"v{i}")
        assert r.add_firmware("v7") == 8
        with pytest.raises(ValueError, match="65,535"):
            r.add_firmware("one more")


def test_rssi_counter_flush() -> None:
    """More rssi readings in a device-day than the hot row counts: the row is flushed."""
    n = 140_000
    ts = (MIDNIGHT * 10**9 + np.arange(n, dtype=np.int64) * 500_000_000).astype(np.int64)
    batch = Batch(
        "g",
        None,
        None,
        np.zeros(n, np.uint8),
        np.zeros(n, np.uint8),
        np.zeros(n, np.uint32),
        ts,
        (np.arange(n) % 5 == 0).astype(np.uint8),
        (np.arange(n) % 1001).astype(np.int16),
        (-(np.arange(n) % 2001)).astype(np.int16),
        np.zeros(n, np.uint16),
    )
    py, c = pair()
    py.add_device("a")
    c.add_device("a")
    py.apply(batch)
    c.apply(batch)
    same_drain(py, c)


def test_fw_ties_by_string() -> None:
    """Same-ms firmware ties go to the greater string, not the greater id."""
    py, c = pair()
    frames = [{"d": "a", "t": NOW_S - 10, "fw": fw} for fw in ("2.0", "10.0", "1.9")]
    body = msgpack.packb({"gateway": "g", "frames": frames})
    for r in (py, c):
        r.apply(r.decode(body, NOW))
    same_drain(py, c)


# --- (4) explicit cases ----------------------------------------------------------------------


UTF8_EDGES = [
    b"\xe0\x80\xaf",  # overlong
    b"\xe0\x9f\xbf",
    b"\xc0\xaf",
    b"\xc1\xbf",
    b"\xf0\x80\x80\xaf",
    b"\xf0\x8f\xbf\xbf",
    b"\xed\xa0\x80",  # surrogates
    b"\xed\xbf\xbf",
    b"\xf4\x90\x80\x80",  # above U+10FFFF
    b"\xf5\x80\x80\x80",
    b"\xe2\x82",  # truncated
    b"\xf0\x9f\x98",
    b"\xc3",
    b"\x80",
    b"\xc3\x28",
    b"\xe0\xa0\x80",  # valid: U+0800, U+D7FF, U+E000, U+10FFFF, U+FFFF, U+0080
    b"\xed\x9f\xbf",
    b"\xee\x80\x80",
    b"\xf4\x8f\xbf\xbf",
    b"\xef\xbf\xbf",
    b"\xc2\x80",
    b"\xf0\x90\x80\x80",
]


@pytest.mark.parametrize("seq", UTF8_EDGES)
@pytest.mark.parametrize("pad", [b"", b"abcdefgh", b"abcdefghijklmno"])
def test_utf8_edges(seq: bytes, pad: bytes) -> None:
    """Each edge of strict UTF-8, in a device id, a firmware string and the gateway."""
    py, c = pair()
    text = pad + seq
    s = str_forms(text)[0]
    frames = b"\x92" + b"\x92" + s + b"\xce" + struct.pack(">I", NOW_S)
    frames += b"\x83\xa1d\xa1x\xa1t\xce" + struct.pack(">I", NOW_S) + b"\xa2fw" + str_forms(seq)[0]
    body = b"\x82\xa7gateway\xa1g\xa6frames" + frames
    same_decode(py, c, body)
    same_decode(py, c, b"\x82\xa7gateway" + s + b"\xa6frames\x90")


def test_deep_nesting_in_unknown_key() -> None:
    deep = b"\x91" * 5000 + b"\xc0"
    frames = msgpack.packb([["a", NOW_S]])
    body = b"\x83\xa7gateway\xa1g\xa4junk" + deep + b"\xa6frames" + frames
    py, c = pair()
    result = same_decode(py, c, body)
    assert result[0] == "ok"
    deep_map = b"\x81\xc0" * 5000 + b"\xc0"
    body = b"\x83\xa4junk" + deep_map + b"\xa7gateway\xa1g\xa6frames" + frames
    assert same_decode(py, c, body)[0] == "ok"


def test_huge_array_header_in_small_buffer() -> None:
    claim = b"\xdd" + struct.pack(">I", 10**8)
    py, c = pair()
    for body, kw in (
        (b"\x82\xa7gateway\xa1g\xa4junk" + claim + b"\x01\x02", {}),
        (b"\x82\xa7gateway\xa1g\xa6frames" + claim + b"\x91\xa1a", {"max_frames": 10**9}),
        (
            b"\x81\xa6frames" + b"\xdf" + struct.pack(">I", 2**32 - 1) + b"\x90" * 10,
            {"max_frames": 10**9},
        ),
    ):
        started = time.perf_counter()
        result = same_decode(py, c, body, **kw)
        assert result[0] == "refused" and result[1].__name__ == "MalformedBatch"
        assert "data ends inside a value" in result[2]
        assert time.perf_counter() - started < 5
    # and within the limit, the limit speaks first
    assert same_decode(py, c, b"\x81\xa6frames" + claim)[1].__name__ == "TooManyFrames"


def test_every_prefix_of_a_valid_batch() -> None:
    for body in VALID_BODIES:
        py, c = pair()
        for n in range(len(body) + 1):
            same_decode(py, c, body[:n])


def test_device_cap() -> None:
    py, c = pair(device_cap=3)
    frames = [[f"dev-{i % 5}", NOW_S - i, 0, None, None] for i in range(12)]
    body = msgpack.packb({"gateway": "g", "frames": frames})
    result = same_decode(py, c, body)
    assert result[1][3][0][1].count(12) == 0  # as decoded: the cap applies on admission
    reasons = result[2][3][0][1]
    assert reasons.count(12) == 4 and c.n_devices == 3
    py.device_cap = c.device_cap = 0
    assert same_decode(py, c, body)[2][3][0][1].count(12) == 0
    py.device_cap = c.device_cap = -1  # truthy: everything new is refused, as in RollupPy
    body = msgpack.packb({"gateway": "g", "frames": [["new", NOW_S]]})
    assert same_decode(py, c, body)[2][3][0][1] == [12]


def test_api_parity() -> None:
    py, c = pair(slot_s=300, heartbeat_s=120, device_cap=7)
    for attr in (
        "engine",
        "slot_s",
        "slot_ns",
        "slots_per_day",
        "default_heartbeat_s",
        "device_cap",
    ):
        if attr != "engine":
            assert getattr(py, attr) == getattr(c, attr), attr
    for r in (py, c):
        assert r.add_device("b") == 0 and r.add_device("a") == 1 and r.add_device("b") == 0
        assert r.add_firmware("z") == 1 and r.add_firmware("é") == 2 and r.add_firmware("z") == 1
        r.set_heartbeat(1, 7)
        r.set_heartbeat(-2, 9)
    for start in (0, 1, 2, 5, -1, -5):
        assert py.device_ids(start) == c.device_ids(start)
        assert py.firmware_ids(start) == c.firmware_ids(start)
    assert [py.heartbeat_s(i) for i in (0, 1, -1)] == [c.heartbeat_s(i) for i in (0, 1, -1)]
    assert py.device_index("a") == c.device_index("a") == 1
    assert py.device_index("nope") == c.device_index("nope") == -1
    assert (py.fw_rank() == c.fw_rank()).all() and c.fw_rank().dtype == np.int64
    for call, exc in (
        (lambda r: r.add_device(""), ValueError),
        (lambda r: r.add_device("x" * 129), ValueError),
        (lambda r: r.set_heartbeat(0, 0), ValueError),
        (lambda r: r.set_heartbeat(0, 2**32), ValueError),
        (lambda r: r.add_firmware(""), ValueError),
        (lambda r: r.add_firmware("x" * 33), ValueError),
        (lambda r: r.add_firmware("é" * 17), ValueError),
        (lambda r: type(r)(heartbeat_s=2**32), ValueError),
        (lambda r: r.set_heartbeat(5, 10), IndexError),
        (lambda r: r.heartbeat_s(5), IndexError),
        (lambda r: type(r)(slot_s=7), ValueError),
        (lambda r: type(r)(slot_s=0), ValueError),
        (lambda r: type(r)(heartbeat_s=0), ValueError),
    ):
        messages = []
        for r in (py, c):
            with pytest.raises(exc) as info:
                call(r)
            messages.append(str(info.value))
        if exc is ValueError:
            assert messages[0] == messages[1]
    assert py.drain() == c.drain() == []


def _fleet_batches(n_batches: int, per_batch: int, n_dev: int, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    bodies = []
    for _ in range(n_batches):
        devs = rng.integers(0, n_dev, per_batch)
        frames = [
            [f"site-{d % 50:03d}/dev-{d:05d}", NOW_S - int(rng.integers(0, 3600)), 0, 80, -60]
            for d in devs
        ]
        bodies.append(msgpack.packb({"gateway": "g", "frames": frames}))
    return bodies


def test_concurrent_decode() -> None:
    bodies = _fleet_batches(40, 500, 3000, 1)
    sequential = make_c()
    for body in bodies:
        sequential.admit(sequential.decode(body, NOW))
    shared = make_c()
    failures: list[BaseException] = []
    results: list[tuple[bytes, Batch]] = []
    lock = threading.Lock()

    def work(part: list[bytes]) -> None:
        try:
            for _ in range(3):
                for body in part:
                    batch = shared.admit(shared.decode(body, NOW))
                    with lock:
                        results.append((body, batch))
        except BaseException as e:  # pragma: no cover - reported below
            failures.append(e)

    threads = [threading.Thread(target=work, args=(bodies[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures
    assert sorted(shared.device_ids()) == sorted(sequential.device_ids())
    ids = shared.device_ids()
    for body, batch in results:  # every index handed out names the frame's own device
        frames = msgpack.unpackb(body)["frames"]
        assert [ids[i] for i in batch.dev.tolist()] == [f[0] for f in frames]
    # applies from several threads at once end up as one sequential apply would
    py, c = RollupPy(), make_c()
    batches = [c.admit(c.decode(body, NOW)) for body in bodies]  # indexes as in py
    for body in bodies:
        py.apply(py.decode(body, NOW))
    threads = [
        threading.Thread(target=lambda p: [c.apply(b) for b in p], args=(batches[i::4],))
        for i in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    same_drain(py, c)


def test_decode_releases_the_gil() -> None:
    """While one thread decodes, another runs Python code.

    With a switch interval far longer than the test, the interpreter never takes the GIL from
    a thread that holds it, so the counter can only move during a call that lets go of it. A
    pure-Python loop, which holds it throughout, is the control."""
    body = _fleet_batches(1, 100_000, 50_000, 2)[0]
    rollup = make_c()
    rollup.decode(body, NOW)  # intern everything first
    count = 0
    stop = False

    def counter() -> None:
        nonlocal count
        while not stop:
            count += 1
            time.sleep(0)  # hands the GIL back between increments

    def moves(call: Any) -> bool:
        for _ in range(20):
            before = count
            call()
            if count != before:
                return True
        return False

    old = sys.getswitchinterval()
    thread = threading.Thread(target=counter)
    thread.start()
    try:
        sys.setswitchinterval(10_000.0)
        # a wait for the GIL begun under the old interval may still force a hand-off: let it
        # finish (sleeping lets go of the GIL) before the control is timed
        time.sleep(0.05)
        control = moves(lambda: sum(range(200_000)))
        during_decode = moves(lambda: rollup.decode(body, NOW))
    finally:
        sys.setswitchinterval(old)
        stop = True
        thread.join()
    assert not control, "the control moved the counter: this test cannot tell"
    assert during_decode, "the counter thread never ran during decode(): the GIL was held"
