"""Hypothesis strategies shared by the suites: msgpack by hand and hostile wire batches;
support hours and tenant zones.

Every width of every msgpack form, not only the ones ``packb`` would pick, so that the engines
are fed what a foreign gateway could send. Used by the differential tests (and anything else
that needs valid or hostile batch bodies).
"""

from __future__ import annotations

import struct
from typing import Any

from hypothesis import strategies as st

from core.tiers import MIN_PER_DAY, SupportHours

NOW_S = 1_700_000_000
NOW = NOW_S * 10**9
DAY_S = 86_400

# --- msgpack by hand: every width, not only the ones packb would pick ------------------------


def int_forms(v: int) -> list[bytes]:
    forms = []
    if 0 <= v <= 0x7F:
        forms.append(bytes([v]))
    if -32 <= v < 0:
        forms.append(struct.pack("b", v))
    for code, fmt, lo, hi in (
        (0xCC, ">B", 0, 2**8 - 1),
        (0xCD, ">H", 0, 2**16 - 1),
        (0xCE, ">I", 0, 2**32 - 1),
        (0xCF, ">Q", 0, 2**64 - 1),
        (0xD0, ">b", -(2**7), 2**7 - 1),
        (0xD1, ">h", -(2**15), 2**15 - 1),
        (0xD2, ">i", -(2**31), 2**31 - 1),
        (0xD3, ">q", -(2**63), 2**63 - 1),
    ):
        if lo <= v <= hi:
            forms.append(bytes([code]) + struct.pack(fmt, v))
    return forms


def sized(data: bytes, fix: int | None, fix_max: int, codes: tuple[int, int, int]) -> list[bytes]:
    n = len(data)
    forms = []
    if fix is not None and n <= fix_max:
        forms.append(bytes([fix | n]) + data)
    if n < 2**8:
        forms.append(bytes([codes[0], n]) + data)
    if n < 2**16:
        forms.append(bytes([codes[1]]) + struct.pack(">H", n) + data)
    forms.append(bytes([codes[2]]) + struct.pack(">I", n) + data)
    return forms


def str_forms(data: bytes) -> list[bytes]:
    return sized(data, 0xA0, 31, (0xD9, 0xDA, 0xDB))


def bin_forms(data: bytes) -> list[bytes]:
    return sized(data, None, 0, (0xC4, 0xC5, 0xC6))


def container_forms(n: int, body: bytes, is_map: bool) -> list[bytes]:
    fix, c16, c32 = (0x80, 0xDE, 0xDF) if is_map else (0x90, 0xDC, 0xDD)
    forms = []
    if n <= 15:
        forms.append(bytes([fix | n]) + body)
    if n < 2**16:
        forms.append(bytes([c16]) + struct.pack(">H", n) + body)
    forms.append(bytes([c32]) + struct.pack(">I", n) + body)
    return forms


def ext_forms(ext_type: int, data: bytes) -> list[bytes]:
    n = len(data)
    t = struct.pack("b", ext_type)
    forms = []
    fixed = {1: 0xD4, 2: 0xD5, 4: 0xD6, 8: 0xD7, 16: 0xD8}
    if n in fixed:
        forms.append(bytes([fixed[n]]) + t + data)
    if n < 2**8:
        forms.append(b"\xc7" + bytes([n]) + t + data)
    if n < 2**16:
        forms.append(b"\xc8" + struct.pack(">H", n) + t + data)
    forms.append(b"\xc9" + struct.pack(">I", n) + t + data)
    return forms


def one_of_forms(forms_of: Any, values: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    return values.flatmap(lambda v: st.sampled_from(forms_of(v)))


def enc_int(values: st.SearchStrategy[int]) -> st.SearchStrategy[bytes]:
    return one_of_forms(int_forms, values)


def enc_float(values: st.SearchStrategy[float]) -> st.SearchStrategy[bytes]:
    def forms(x: float) -> list[bytes]:
        out = [b"\xcb" + struct.pack(">d", x)]
        try:
            out.append(b"\xca" + struct.pack(">f", x))
        except OverflowError:
            pass
        return out

    return one_of_forms(forms, values)


def enc_str(values: st.SearchStrategy[str]) -> st.SearchStrategy[bytes]:
    return one_of_forms(lambda s: str_forms(s.encode("utf-8", "surrogatepass")), values)


NIL = st.just(b"\xc0")
BOOLS = st.sampled_from([b"\xc2", b"\xc3"])
ANY_INT = enc_int(
    st.one_of(
        st.integers(-(2**63), 2**64 - 1),
        st.integers(-40, 300),
        st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, -(2**63), 2**32, 2**31]),
    )
)
ANY_FLOAT = enc_float(st.floats(allow_nan=True, allow_infinity=True))
# str payloads that are not UTF-8: overlongs, surrogates, > U+10FFFF, truncated sequences
BAD_UTF8 = st.sampled_from(
    [
        b"\xc0\xaf",
        b"\xe0\x80\xaf",
        b"\xed\xa0\x80",
        b"\xf4\x90\x80\x80",
        b"\xf8\x88\x80\x80\x80",
        b"ab\xe2\x82",
        b"\xff",
        b"\x80",
        b"dev-\xc3",
        b"12345678\xf0\x9f\x98",
    ]
) | st.binary(max_size=12)
ANY_STR = enc_str(st.text(max_size=40)) | one_of_forms(str_forms, BAD_UTF8)
ANY_BIN = one_of_forms(bin_forms, st.binary(max_size=20))
ANY_EXT = st.tuples(st.integers(-128, 127), st.binary(max_size=20)).flatmap(
    lambda te: st.sampled_from(ext_forms(*te))
)
SCALAR = st.one_of(NIL, BOOLS, ANY_INT, ANY_FLOAT, ANY_STR, ANY_BIN, ANY_EXT)


def _array(items: list[bytes]) -> st.SearchStrategy[bytes]:
    return st.sampled_from(container_forms(len(items), b"".join(items), False))


def _map(items: list[tuple[bytes, bytes]]) -> st.SearchStrategy[bytes]:
    return st.sampled_from(container_forms(len(items), b"".join(k + v for k, v in items), True))


JUNK = st.recursive(
    SCALAR,
    lambda inner: (
        st.lists(inner, max_size=4).flatmap(_array)
        | st.lists(st.tuples(inner, inner), max_size=3).flatmap(_map)
    ),
    max_leaves=12,
)


# timestamps: seconds, milliseconds, floats and the three Timestamp ext forms
def ts_ext4(sec: int) -> bytes:
    return b"\xd6\xff" + struct.pack(">I", sec)


def ts_ext8(sec: int, nsec: int) -> bytes:
    return b"\xd7\xff" + struct.pack(">Q", (nsec << 34) | sec)


def ts_ext12(sec: int, nsec: int) -> bytes:
    return b"\xc7\x0c\xff" + struct.pack(">Iq", nsec, sec)


SECONDS = st.integers(NOW_S - 8 * DAY_S, NOW_S + 600)
TS = st.one_of(
    enc_int(SECONDS),
    enc_int(SECONDS.map(lambda s: s * 1000 + 123)),
    enc_int(st.integers(-5, 2**64 - 1)),
    enc_int(st.sampled_from([99_999_999_999, 100_000_000_000, 9_223_372_035, 9_223_372_036])),
    enc_int(st.sampled_from([9_223_372_036_853, 9_223_372_036_854, 2**63 - 1])),
    enc_float(SECONDS.map(float) | st.floats(NOW_S - 8 * DAY_S, NOW_S + 600)),
    enc_float(st.floats(1.6e12, 1.8e12) | st.floats(allow_nan=True, allow_infinity=True)),
    enc_float(st.sampled_from([9_223_372_035.5, 9_223_372_036.0, 9.3e12, 1e11, 1e11 - 0.5])),
    SECONDS.map(lambda s: ts_ext4(s & 0xFFFFFFFF)),
    st.tuples(SECONDS | st.integers(0, 2**34 - 1), st.integers(0, 2**30 - 1)).map(
        lambda a: ts_ext8(*a)
    ),
    st.tuples(
        SECONDS | st.integers(-(2**63), 2**63 - 1), st.integers(0, 2**32 - 1) | st.just(0)
    ).map(lambda a: ts_ext12(*a)),
    SCALAR,
)
DEVICE_POOL = [f"site-{i % 3:03d}/dev-{i:05d}" for i in range(8)] + ["é-dev", "x" * 128]
DEVICE = st.one_of(
    enc_str(st.sampled_from(DEVICE_POOL)),
    enc_str(st.text(max_size=3)),
    enc_str(st.just("y" * 129)),
    enc_int(st.integers(0, 30) | st.integers(-3, 2**64 - 1)),
    one_of_forms(bin_forms, st.sampled_from([d.encode() for d in DEVICE_POOL[:3]])),
    SCALAR,
)
STATUS = st.one_of(enc_int(st.integers(-2, 258)), st.just(b"\x00"), SCALAR)
BATTERY = st.one_of(
    enc_int(st.integers(-2, 102)),
    enc_float(st.floats(-1, 101) | st.sampled_from([0.05, 0.15, 0.25, 99.95, 100.0, -0.0])),
    SCALAR,
)
RSSI = st.one_of(
    enc_int(st.integers(-202, 2)),
    enc_float(st.floats(-201, 1) | st.sampled_from([-0.05, -0.25, -199.95, -200.0, -0.0])),
    SCALAR,
)
FIRMWARE = st.one_of(
    enc_str(st.sampled_from(["1.0.0", "1.0.1", "2.0", "é", "z" * 32])),
    enc_str(st.just("z" * 33) | st.just("")),
    SCALAR,
)
FIELDS = [DEVICE, TS, STATUS, BATTERY, RSSI, FIRMWARE]
FRAME_KEYS = {
    0: ["d", "device"],
    1: ["t", "ts"],
    2: ["s", "status"],
    3: ["b", "battery"],
    4: ["r", "rssi"],
    5: ["fw", "firmware"],
}


GOOD_FIELDS = [
    enc_str(st.sampled_from(DEVICE_POOL)) | enc_int(st.integers(0, 30)),
    st.one_of(
        enc_int(SECONDS),
        enc_int(SECONDS.map(lambda s: s * 1000 + 7)),
        enc_float(st.floats(NOW_S - 7 * DAY_S, NOW_S + 300)),
        SECONDS.map(lambda s: ts_ext4(s)),
        st.tuples(SECONDS, st.integers(0, 999_999_999)).map(lambda a: ts_ext8(*a)),
        st.tuples(SECONDS, st.integers(0, 999_999_999)).map(lambda a: ts_ext12(*a)),
    ),
    enc_int(st.integers(0, 255)),
    enc_int(st.integers(0, 100)) | enc_float(st.floats(0, 100)),
    enc_int(st.integers(-200, 0)) | enc_float(st.floats(-200, 0)),
    enc_str(st.sampled_from(["1.0.0", "1.0.1", "2.0"])),
]


def field(draw: st.DrawFn, i: int) -> bytes:
    return mostly(draw, GOOD_FIELDS[i], NIL | FIELDS[i])


def mostly(draw: st.DrawFn, good: st.SearchStrategy[bytes], bad: st.SearchStrategy[bytes]) -> bytes:
    """A good value most of the time: hostile parts must not hide everything behind them."""
    return draw(good) if draw(st.integers(0, 7)) else draw(bad)


@st.composite
def compact_frame(draw: st.DrawFn) -> bytes:
    n = draw(st.sampled_from([2, 5, 5, 5])) if draw(st.integers(0, 5)) else draw(st.integers(0, 7))
    items = [field(draw, i) if i < 5 else draw(JUNK) for i in range(n)]
    return draw(_array(items))


@st.composite
def map_frame(draw: st.DrawFn) -> bytes:
    pairs = []
    for i in range(6):
        if draw(st.integers(0, 9)) < (8 if i < 2 else 4):
            short, long = FRAME_KEYS[i]
            how = draw(st.integers(0, 5))
            if how <= 1:
                pairs.append((draw(enc_str(st.just(short if how else long))), field(draw, i)))
            elif how == 2:  # both: the short one wins unless it is nil
                pairs.append((draw(enc_str(st.just(long))), field(draw, i)))
                pairs.append((draw(enc_str(st.just(short))), draw(NIL | GOOD_FIELDS[i])))
            elif how == 3:
                pairs.append((draw(enc_str(st.just(short))), draw(NIL | GOOD_FIELDS[i])))
                pairs.append((draw(enc_str(st.just(long))), field(draw, i)))
            elif how == 4:  # duplicate key: the last one wins
                key = draw(enc_str(st.sampled_from([short, long])))
                pairs.append((key, field(draw, i)))
                pairs.append((key, field(draw, i)))
            else:
                pairs.append((draw(enc_str(st.just(long))), draw(NIL | FIELDS[i])))
    for _ in range(draw(st.integers(0, 2))):
        if draw(st.booleans()):
            key = draw(enc_str(st.sampled_from(["x", "dev", "DEVICE", "tss", "", "fw "])))
        else:  # not a str key (bin "d" included): ignored, its value skipped
            key = draw(JUNK | st.just(b"\xc4\x01d"))
        pairs.insert(draw(st.integers(0, len(pairs))), (key, draw(JUNK)))
    if draw(st.integers(0, 4)) == 0:
        pairs = draw(st.permutations(pairs))
    return draw(_map(pairs))


@st.composite
def any_frame(draw: st.DrawFn) -> bytes:
    return mostly(draw, compact_frame() | map_frame(), SCALAR)


GATEWAY = enc_str(st.sampled_from(["gw-1", "é", "g" * 64]))
VERSION = st.sampled_from([b"\x01", b"\xcc\x01", b"\xd3" + b"\0" * 7 + b"\1"])


@st.composite
def batch_body(draw: st.DrawFn) -> bytes:
    pairs = []
    if draw(st.integers(0, 9)):
        pairs.append((b"\xa7gateway", mostly(draw, GATEWAY, SCALAR | enc_str(st.just("g" * 65)))))
    if draw(st.booleans()):
        pairs.append((b"\xa1v", mostly(draw, VERSION, SCALAR)))
    if draw(st.booleans()):
        pairs.append((b"\xa3seq", mostly(draw, enc_int(st.integers(0, 2**64 - 1)), SCALAR)))
    if draw(st.booleans()):
        pairs.append((b"\xa7sent_at", draw(TS)))
    if draw(st.integers(0, 9)):
        frames = draw(st.lists(any_frame(), max_size=12))
        pairs.append((b"\xa6frames", mostly(draw, _array(frames), JUNK)))
    for _ in range(draw(st.integers(0, 2))):
        pairs.insert(draw(st.integers(0, len(pairs))), (draw(JUNK), draw(JUNK)))
    if pairs and draw(st.integers(0, 5)) == 0:  # a duplicate key: the last one wins
        pairs.append(draw(st.sampled_from(pairs)))
    return draw(_map(pairs))


DECODE_KW = st.fixed_dictionaries(
    {},
    optional={
        "max_frames": st.sampled_from([0, 1, 3, 100_000, -1]),
        "max_future_skew_s": st.sampled_from([0, 300, 10**12]),
        "max_backfill_s": st.sampled_from([0, 86_400, 7 * 86_400, 10**12, -(10**12)]),
        "closed_before_ns": st.sampled_from([0, NOW - 3 * DAY_S * 10**9, NOW + 1, 2**70, -1]),
    },
)


# --- support hours and tenant zones (core.support) -------------------------------------------

#: Zones with the DST shapes that matter: an hour each way in Europe and America, the southern
#: hemisphere, Lord Howe's half hour, St John's fall-back just after midnight (2010), none.
TENANT_ZONES = [
    "Europe/Berlin",
    "America/New_York",
    "Pacific/Auckland",
    "Australia/Lord_Howe",
    "America/St_Johns",
    "Asia/Kolkata",
    "UTC",
]


@st.composite
def support_hours(draw: st.DrawFn) -> SupportHours:
    """A valid ``core.tiers.SupportHours``: one run of 1 to 7 weekdays (it may wrap past
    Sunday), hours often on the quarter hour (where DST changes fall), ending up to 24:00."""
    first = draw(st.integers(0, 6))
    days = frozenset((first + i) % 7 for i in range(draw(st.integers(1, 7))))
    grid = st.integers(0, MIN_PER_DAY // 15).map(lambda q: q * 15)
    a, b = draw(st.lists(grid | st.integers(0, MIN_PER_DAY), min_size=2, max_size=2, unique=True))
    return SupportHours(days, min(a, b), max(a, b))


# --- subscriptions and fleets (core.billing) -------------------------------------------------

#: Months the billing properties walk: a year end, a short February and a leap-free year.
BILLING_MONTHS = [(2025, 11), (2025, 12), (2026, 1), (2026, 2), (2026, 3), (2026, 4)]


@st.composite
def subscription_events(draw: st.DrawFn, tier_names: list[str], first: Any, last: Any) -> list[Any]:
    """A valid history of ``core.billing.subscriptions`` events between local dates ``first``
    and ``last``: starts (with a trial now and then), changes of tier and/or term, cancels
    and reactivations, several now and then on one date (applied in the order recorded)."""
    from datetime import timedelta

    from core.billing.subscriptions import TERMS, Cancel, Change, Start

    span = (last - first).days
    day = first + timedelta(days=draw(st.integers(0, span)))
    events: list[Any] = []
    plan: tuple[str, str] | None = None
    for _ in range(draw(st.integers(1, 7))):
        if events:
            # a good share of events on the same date as the one before, or a day apart
            step = draw(st.sampled_from([0, 0, 1, 1, 3, 10, 17, 30, 45]))
            day = day + timedelta(days=step)
            if day > last:
                break
        if plan is None:
            trial = draw(st.sampled_from([0, 0, 0, 1, 14, 30, 45]))
            tier, term = draw(st.sampled_from(tier_names)), draw(st.sampled_from(TERMS))
            events.append(Start(day, tier, term, trial))
            plan = (tier, term)
        elif draw(st.integers(0, 3)) == 0:
            events.append(Cancel(day))
            plan = None
        else:
            tier = draw(st.sampled_from(tier_names))
            term = draw(st.sampled_from(TERMS))
            if (tier, term) == plan:
                continue
            which = draw(st.integers(0, 2))
            if which == 0 and tier != plan[0]:
                events.append(Change(day, tier=tier))
                plan = (tier, plan[1])
            elif which == 1 and term != plan[1]:
                events.append(Change(day, term=term))
                plan = (plan[0], term)
            else:
                events.append(Change(day, tier=tier, term=term))
                plan = (tier, term)
    return events


#: A month's fleet: billable devices (bracket edges often), frames, attainment, tax rate.
BILLABLE_DEVICES = st.sampled_from([0, 1, 99, 100, 101, 500, 1000, 1001]) | st.integers(0, 12_000)
FRAMES = st.sampled_from([0, 999, 1000, 1001, 5_000_000, 5_000_001]) | st.integers(0, 10**10)
ATTAINMENT = st.none() | st.fractions(min_value=90, max_value=100, max_denominator=100_000)
TAX_RATES = st.sampled_from(["0", "7.5", "19", "20", "8.875", "100"])
