"""Every rule of the wire format (docs/wire-format.md) as a test, over both engines."""

from __future__ import annotations

import math

import msgpack
import numpy as np
import pytest

from core.batch import BATTERY_NONE, FW_NONE, RSSI_NONE
from core.errors import MalformedBatch, TooManyFrames, UnsupportedVersion
from tests.support import mp

NOW_S = 1_795_348_800  # 2026-11-22 12:00:00 UTC
NOW = NOW_S * 10**9
T = NOW_S - 3600  # a good frame time: an hour ago


def decode(engine, body: bytes, **kw):
    return engine().decode(body, NOW, **kw)


def packb(obj) -> bytes:
    return msgpack.packb(obj)


def reasons(b) -> list[str]:
    return [e["reason"] for e in b.errors]


# --- batch shape ---------------------------------------------------------------------------


def test_minimal_batch_and_defaults(engine) -> None:
    b = decode(engine, packb({"gateway": "gw", "frames": [["dev", T]]}))
    assert (b.gateway, b.seq, b.sent_at_ns) == ("gw", None, None)
    assert b.accepted == 1 and b.rejected == 0 and b.warnings == 0 and b.errors == []
    assert b.ts.tolist() == [T * 10**9]
    assert b.status.tolist() == [0]
    assert b.battery.tolist() == [BATTERY_NONE] and b.rssi.tolist() == [RSSI_NONE]
    assert b.fw.tolist() == [FW_NONE]


def test_header_fields(engine) -> None:
    body = packb({"v": 1, "gateway": "gw", "seq": 2**64 - 1, "sent_at": T + 5, "frames": []})
    b = decode(engine, body)
    assert b.seq == 2**64 - 1 and b.sent_at_ns == (T + 5) * 10**9 and b.n_frames == 0


def test_unknown_batch_keys_ignored(engine) -> None:
    body = packb({"gateway": "gw", "frames": [], "site": {"a": [1, 2, {"b": None}]}, 7: "x"})
    assert decode(engine, body).n_frames == 0


@pytest.mark.parametrize(
    "body, error, detail",
    [
        (b"\x93\x01\x02", MalformedBatch, "batch is not a msgpack map"),
        (b"", MalformedBatch, "not valid msgpack: data ends inside a value"),
        (b"\xc1", MalformedBatch, "not valid msgpack: reserved byte 0xc1"),
        (packb({"gateway": "gw", "frames": []}) + b"\x00", MalformedBatch, "bytes after"),
        (packb({"gateway": "gw", "frames": [["d", T]]})[:-1], MalformedBatch, "data ends"),
        (packb({"frames": []}), MalformedBatch, "gateway missing"),
        (packb({"gateway": "", "frames": []}), MalformedBatch, "gateway must be"),
        (packb({"gateway": "g" * 65, "frames": []}), MalformedBatch, "gateway must be"),
        (packb({"gateway": b"gw", "frames": []}), MalformedBatch, "gateway must be"),
        (packb({"gateway": "gw"}), MalformedBatch, "frames missing"),
        (packb({"gateway": "gw", "frames": {"a": 1}}), MalformedBatch, "frames must be an array"),
        (packb({"gateway": "gw", "frames": None}), MalformedBatch, "frames missing"),
        (packb({"gateway": "gw", "frames": [], "seq": -1}), MalformedBatch, "seq must be"),
        (packb({"gateway": "gw", "frames": [], "seq": "1"}), MalformedBatch, "seq must be"),
        (packb({"v": 2, "gateway": "gw", "frames": []}), UnsupportedVersion, "v=1"),
        (packb({"v": "1", "gateway": "gw", "frames": []}), UnsupportedVersion, "v=1"),
        (packb({"v": 1.5, "gateway": "gw", "frames": []}), UnsupportedVersion, "v=1"),
        (packb({"v": True, "gateway": "gw", "frames": []}), UnsupportedVersion, "v=1"),
        (packb({"gateway": "gw", "frames": [], "seq": 1.5}), MalformedBatch, "seq must be"),
        (packb({"gateway": "gw", "frames": [], "seq": 2.0**64}), MalformedBatch, "seq must be"),
        (packb({"gateway": "gw", "frames": [], "seq": math.nan}), MalformedBatch, "seq must be"),
    ],
)
def test_batch_refused_whole(engine, body: bytes, error: type, detail: str) -> None:
    r = engine()
    with pytest.raises(error) as info:
        r.decode(body, NOW)
    assert detail in info.value.detail
    assert info.value.status == (413 if error is TooManyFrames else 400)
    assert r.n_devices == 0  # nothing of a refused batch is kept


def test_refused_batch_interns_nothing_even_after_good_frames(engine) -> None:
    r = engine()
    body = mp.map_([(mp.str_("frames"), mp.array([mp.array([mp.str_("new"), mp.int_(T)])]))])
    with pytest.raises(MalformedBatch):
        r.decode(body, NOW)
    assert r.n_devices == 0 and r.device_ids() == []


def test_max_frames(engine) -> None:
    body = packb({"gateway": "gw", "frames": [["d", T]] * 11})
    with pytest.raises(TooManyFrames) as info:
        decode(engine, body, max_frames=10)
    assert info.value.status == 413 and info.value.code == "too_many_frames"
    assert decode(engine, body, max_frames=11).accepted == 11


def test_gateway_gzip_style_names_any_utf8(engine) -> None:
    assert decode(engine, packb({"gateway": "Gare du Nord ☃", "frames": []})).gateway == (
        "Gare du Nord ☃"
    )


# --- frame forms -----------------------------------------------------------------------------


def test_compact_and_map_frames_mixed(engine) -> None:
    frames = [
        ["a", T, 0, 50, -70],
        {"d": "b", "t": T, "s": 0, "b": 60, "r": -60, "fw": "1.0"},
        {"device": "c", "ts": T, "status": 0, "battery": 70, "rssi": -50, "firmware": "2.0"},
        ["d", T],  # trailing elements left out
        ["e", T, None, None, None],  # nil means absent
        ["f", T, 0, 10, -10, "extra", [1, 2]],  # extra trailing elements ignored
    ]
    r = engine()
    b = r.decode(packb({"gateway": "gw", "frames": frames}), NOW)
    assert b.accepted == 6 and b.errors == []
    assert b.new_ids == ["a", "b", "c", "d", "e", "f"] and r.device_ids() == []
    assert b.battery.tolist() == [500, 600, 700, BATTERY_NONE, BATTERY_NONE, 100]
    assert b.rssi.tolist() == [-700, -600, -500, RSSI_NONE, RSSI_NONE, -100]
    assert r.firmware_ids() == ["1.0", "2.0"]
    assert b.fw.tolist() == [0, 1, 2, 0, 0, 0]


def test_short_key_wins_over_long(engine) -> None:
    frame = {"device": "long", "d": "short", "t": T, "ts": T - 100, "s": 3, "status": 0}
    r = engine()
    b = r.decode(packb({"gateway": "gw", "frames": [frame]}), NOW)
    assert b.new_ids == ["short"] and b.ts.tolist() == [T * 10**9]
    assert b.status.tolist() == [3]


def test_unknown_frame_keys_and_non_string_keys_ignored(engine) -> None:
    body = mp.batch(
        [
            mp.map_(
                [
                    (mp.str_("d"), mp.str_("x")),
                    (mp.int_(1, "fixint"), mp.str_("ignored")),
                    (mp.array([mp.str_("d")]), mp.str_("ignored")),
                    (mp.str_("colour"), mp.map_([(mp.str_("a"), mp.array([mp.NIL]))])),
                    (mp.str_("t"), mp.int_(T, "uint32")),
                ]
            )
        ]
    )
    r = engine()
    b = r.decode(body, NOW)
    assert b.accepted == 1 and b.new_ids == ["x"]


def test_device_ids(engine) -> None:
    frames = [
        [0, T],
        [12345, T],
        [2**64 - 1, T],
        ["x" * 128, T],
        ["", T],
        ["x" * 129, T],
        [-1, T],
        [b"bin-is-not-a-string", T],
        [1.5, T],
        [None, T],
        [True, T],
        [["nested"], T],
        {"t": T},
    ]
    r = engine()
    b = r.decode(packb({"gateway": "gw", "frames": frames}), NOW)
    assert b.new_ids == ["0", "12345", str(2**64 - 1), "x" * 128]
    assert reasons(b) == [
        "device id is empty",
        "device id is longer than 128 bytes",
        "device must be a UTF-8 string or a non-negative integer",
        "device must be a UTF-8 string or a non-negative integer",
        "device must be a UTF-8 string or a non-negative integer",
        "device missing",
        "device must be a UTF-8 string or a non-negative integer",
        "device must be a UTF-8 string or a non-negative integer",
        "device missing",
    ]
    assert [e["index"] for e in b.errors] == list(range(4, 13))


def test_invalid_utf8_device_is_rejected(engine) -> None:
    frames = [
        mp.array([mp.str_(b"\xff\xfe"), mp.int_(T)]),
        mp.array([mp.str_(b"\xed\xa0\x80"), mp.int_(T)]),
        mp.array([mp.str_("é"), mp.int_(T)]),
    ]
    r = engine()
    b = r.decode(mp.batch(frames), NOW)
    assert b.rejected == 2 and b.new_ids == ["é"]


def test_frame_of_wrong_kind_is_rejected(engine) -> None:
    b = decode(engine, packb({"gateway": "gw", "frames": ["dev", 5, None, ["ok", T]]}))
    assert b.accepted == 1
    assert reasons(b) == ["frame is neither an array nor a map"] * 3


# --- widths ----------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["uint32", "uint64", "int32", "int64"])
def test_every_int_width_for_ts(engine, form: str) -> None:
    body = mp.batch([mp.array([mp.str_("d"), mp.int_(T, form)])])
    assert decode(engine, body).ts.tolist() == [T * 10**9]


@pytest.mark.parametrize("form", list(mp.INT_FORMS))
def test_every_int_width_for_small_fields(engine, form: str) -> None:
    status = mp.int_(7, form)
    battery = mp.int_(42, form)
    rssi = mp.int_(-5, form) if form in ("fixint", "int8", "int16", "int32", "int64") else mp.NIL
    frame = mp.array([mp.int_(3, form), mp.int_(T, "int64"), status, battery, rssi])
    r = engine()
    b = r.decode(mp.batch([frame]), NOW)
    assert b.new_ids == ["3"]
    assert b.status.tolist() == [7] and b.battery.tolist() == [420]
    assert b.rssi.tolist() == [-50 if rssi != mp.NIL else RSSI_NONE]


@pytest.mark.parametrize("enc, cast", [(mp.float32, np.float32), (mp.float64, float)])
def test_float_widths(engine, enc, cast) -> None:
    frame = mp.array([mp.str_("d"), enc(T + 0.5), mp.NIL, enc(87.5), enc(-71.25)])
    b = decode(engine, mp.batch([frame]))
    sent = float(cast(T + 0.5))  # what the gateway's encoder actually put on the wire
    whole = math.floor(sent)
    assert b.ts.tolist() == [whole * 10**9 + math.floor((sent - whole) * 1e9)]
    assert b.battery.tolist() == [875] and b.rssi.tolist() == [-712]  # half to even


@pytest.mark.parametrize("form", ["fix", "str8", "str16", "str32"])
def test_every_str_width(engine, form: str) -> None:
    frame = mp.map_(
        [
            (mp.str_("d", form), mp.str_("dev-1", form)),
            (mp.str_("t", form), mp.int_(T)),
            (mp.str_("fw", form), mp.str_("v1", form)),
        ]
    )
    r = engine()
    b = r.decode(mp.batch([frame]), NOW)
    assert b.new_ids == ["dev-1"] and r.firmware_ids() == ["v1"] and b.accepted == 1


@pytest.mark.parametrize("form", ["fix", "16", "32"])
def test_every_container_width(engine, form: str) -> None:
    frames = [
        mp.array([mp.str_("a"), mp.int_(T)], form),
        mp.map_([(mp.str_("d"), mp.str_("b")), (mp.str_("t"), mp.int_(T))], form),
    ]
    body = mp.map_(
        [(mp.str_("gateway"), mp.str_("g")), (mp.str_("frames"), mp.array(frames, form))], form
    )
    assert decode(engine, body).accepted == 2


# --- timestamps ------------------------------------------------------------------------------


def test_timestamp_forms(engine) -> None:
    frames = [
        mp.array([mp.str_("int"), mp.int_(T)]),
        mp.array([mp.str_("float"), mp.float64(T + 0.25)]),
        mp.array([mp.str_("ms"), mp.int_(T * 1000 + 7)]),
        mp.array([mp.str_("ms-float"), mp.float64(T * 1000 + 7.5)]),
        mp.array([mp.str_("ext32"), mp.timestamp(T, size=4)]),
        mp.array([mp.str_("ext64"), mp.timestamp(T, 123_456_789, size=8)]),
        mp.array([mp.str_("ext96"), mp.timestamp(T, 999_999_999, size=12)]),
    ]
    b = decode(engine, mp.batch(frames))
    s = T * 10**9
    assert b.ts.tolist() == [
        s,
        s + 250_000_000,
        s + 7_000_000,
        s + 7_500_000,
        s,
        s + 123_456_789,
        s + 999_999_999,
    ]


def test_ms_threshold(engine) -> None:
    # 99,999,999,999 is seconds (year 5138: too far ahead); 100,000,000,000 is milliseconds
    b = decode(
        engine, packb({"gateway": "g", "frames": [["a", 99_999_999_999], ["b", 100_000_000_000]]})
    )
    assert reasons(b) == ["ts too far in the future", "ts older than the backfill window"]


@pytest.mark.parametrize(
    "ts, reason",
    [
        (mp.int_(-1), "ts is negative, NaN or infinite"),
        (mp.float64(-0.5), "ts is negative, NaN or infinite"),
        (mp.float64(math.nan), "ts is negative, NaN or infinite"),
        (mp.float32(math.inf), "ts is negative, NaN or infinite"),
        (mp.float64(-math.inf), "ts is negative, NaN or infinite"),
        (mp.timestamp(-5, size=12), "ts is negative, NaN or infinite"),
        (mp.timestamp(T, 1_000_000_000, size=12), "ts is negative, NaN or infinite"),
        (mp.str_("2026-11-22"), "ts must be an int, a float or a msgpack Timestamp"),
        (b"\xd6\x05" + b"\x00" * 4, "ts must be an int, a float or a msgpack Timestamp"),
        (b"\xd5\xff\x00\x00", "ts must be an int, a float or a msgpack Timestamp"),
        (mp.NIL, "ts missing"),
        (mp.int_(2**63, "uint64"), "ts too far in the future"),
        (mp.float64(1e300), "ts too far in the future"),
        (mp.int_(NOW_S + 301), "ts too far in the future"),
        (mp.int_(NOW_S - 7 * 86400 - 1), "ts older than the backfill window"),
    ],
)
def test_bad_timestamps_reject_the_frame(engine, ts: bytes, reason: str) -> None:
    b = decode(
        engine, mp.batch([mp.array([mp.str_("d"), ts]), mp.array([mp.str_("ok"), mp.int_(T)])])
    )
    assert b.accepted == 1 and reasons(b) == [reason]


def test_time_window_edges(engine) -> None:
    body = packb({"gateway": "g", "frames": [["a", NOW_S + 300], ["b", NOW_S - 7 * 86400]]})
    assert decode(engine, body).accepted == 2


def test_closed_month_rejects(engine) -> None:
    body = packb({"gateway": "g", "frames": [["a", T], ["b", T - 60]]})
    b = decode(engine, body, closed_before_ns=T * 10**9)
    assert b.accepted == 1 and reasons(b) == ["ts falls in a month whose invoices are issued"]


def test_invalid_sent_at_is_ignored(engine) -> None:
    b = decode(engine, packb({"gateway": "g", "frames": [], "sent_at": "yesterday"}))
    assert b.sent_at_ns is None


# --- optional fields and warnings ------------------------------------------------------------


def test_optional_fields_dropped_with_warnings(engine) -> None:
    frames = [
        ["a", T, 256],  # status out of range
        ["b", T, -1],
        ["c", T, 1.5],  # status must be a whole number
        ["d", T, 0, 100.5, -200.5],  # battery and rssi out of range
        ["e", T, 0, "full", 3],
        ["f", T, 0, math.nan, math.nan],
        {"d": "g", "t": T, "fw": ""},
        {"d": "h", "t": T, "fw": "x" * 33},
        {"d": "i", "t": T, "fw": 12},
        ["j", T, 255, 0, -200],  # edges are fine
        ["k", T, 0, True, None],
    ]
    r = engine()
    b = r.decode(packb({"gateway": "g", "frames": frames}), NOW)
    assert b.accepted == 11 and b.rejected == 0
    assert b.warnings == 13
    assert [e["index"] for e in b.errors] == [0, 1, 2, 3, 3, 4, 4, 5, 5, 6, 7, 8, 10]
    assert b.errors[3]["reason"] == "battery dropped: not a number 0..100"
    assert b.errors[4]["reason"] == "rssi dropped: not a number -200..0"
    assert b.status.tolist() == [0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 0]
    assert b.battery[9] == 0 and b.rssi[9] == -2000


def test_errors_list_is_capped_at_20_in_frame_order(engine) -> None:
    frames = [["", T]] * 15 + [["ok", T, 999]] * 10
    b = decode(engine, packb({"gateway": "g", "frames": frames}))
    assert b.rejected == 15 and b.warnings == 10 and len(b.errors) == 20
    assert [e["index"] for e in b.errors] == list(range(20))


def test_rejected_frames_carry_no_warnings(engine) -> None:
    b = decode(engine, packb({"gateway": "g", "frames": [["d", NOW_S + 999, 999]]}))
    assert b.rejected == 1 and b.warnings == 0


def test_device_cap(engine) -> None:
    r = engine(device_cap=2)
    body = packb({"gateway": "g", "frames": [["a", T], ["b", T], ["c", T], ["a", T + 1]]})
    b = r.decode(body, NOW)
    # decoding creates no device: the cap is applied when the batch is admitted
    assert b.accepted == 4 and b.new_ids == ["a", "b", "c"] and r.device_ids() == []
    b = r.admit(b)
    assert b.accepted == 3 and reasons(b) == ["device cap reached"]
    assert b.reasons.tolist() == [0, 0, 12, 0] and b.dev.tolist() == [0, 1, 0]
    assert r.device_ids() == ["a", "b"] and b.new_ids == []
    # a later batch: known devices pass, new ones are over the cap at once
    b = r.admit(r.decode(packb({"gateway": "g", "frames": [["d", T], ["b", T]]}), NOW))
    assert b.reasons.tolist() == [12, 0] and b.dev.tolist() == [1]


def test_reject_counts_by_code(engine) -> None:
    b = decode(engine, packb({"gateway": "g", "frames": [["", T], ["", T], [None, T], ["a"]]}))
    assert b.reject_counts() == {"device_empty": 2, "device_missing": 1, "ts_missing": 1}


def test_deep_nesting_and_huge_headers_do_not_crash(engine) -> None:
    deep = b"\x91" * 5000 + b"\xc0"
    body = mp.map_(
        [
            (mp.str_("gateway"), mp.str_("g")),
            (mp.str_("junk"), deep),
            (mp.str_("frames"), mp.array([deep, mp.array([mp.str_("a"), mp.int_(T)])])),
        ]
    )
    b = decode(engine, body)
    assert b.accepted == 1 and reasons(b) == [
        "device must be a UTF-8 string or a non-negative integer"
    ]
    # an array32 header claiming 10^8 frames in a 30-byte body
    claim = mp.map_([(mp.str_("gateway"), mp.str_("g")), (mp.str_("frames"), b"")])
    claim += b"\xdd" + (10**8).to_bytes(4, "big") + b"\x90"
    with pytest.raises(TooManyFrames):
        decode(engine, claim)
    with pytest.raises(MalformedBatch, match="data ends inside a value"):
        decode(engine, claim, max_frames=10**9)


def test_log_columns_round_trip(engine) -> None:
    from core.batch import Batch

    b = decode(
        engine, packb({"gateway": "g", "frames": [["a", T, 3, 50.5, -80, "x"], ["b", T + 1]]})
    )
    back = Batch.from_columns_bytes(b.columns_bytes())
    for name in ("dev", "ts", "status", "battery", "rssi", "fw"):
        assert np.array_equal(getattr(back, name), getattr(b, name))
        assert getattr(back, name).dtype == getattr(b, name).dtype


def test_whole_floats_count_where_an_int_is_asked(engine) -> None:
    """Every numeric field takes every msgpack width, float32 and float64 included: where the
    format asks for an int (v, seq, status, an int device), a float with a whole value is
    that int (encoders that write every number as a float exist); 3.5 is not."""
    f32 = mp.float32(3.0)
    frames = [
        [17.0, T, 3.0],  # device 17, status 3
        mp.array([mp.str_("a"), mp.int_(T), f32]),
        [-0.0, T, 255.0],  # -0.0 is 0
        ["b", T, 2.5],  # not a whole number: dropped with a warning
        [1e20, T],  # above 2**64 - 1: not a device id
    ]
    body = mp.map_(
        [
            (mp.str_("v"), mp.float32(1.0)),
            (mp.str_("gateway"), mp.str_("gw")),
            (mp.str_("seq"), mp.float64(42.0)),
            (
                mp.str_("frames"),
                mp.array([f if isinstance(f, bytes) else packb(f) for f in frames]),
            ),
        ]
    )
    b = engine().decode(body, NOW)
    assert b.seq == 42
    assert b.new_ids == ["17", "a", "0", "b"]
    assert b.status.tolist() == [3, 3, 255, 0]
    assert b.reasons.tolist() == [0, 0, 0, 0, 3] and b.warnings_mask.tolist() == [0, 0, 0, 1, 0]
