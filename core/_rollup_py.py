"""Pure-Python rollup engine: the fallback and the test oracle of ``core._rollup``.

It walks the msgpack bytes itself, exactly as the Cython engine does, so that both make the
same decisions on any input, valid or not (the differential tests hold them to that). It is
written for clarity, not speed: the Cython engine is the fast one.

Decoding is two passes. The first walks the batch map and its frames, judging each frame but
interning nothing, so a batch refused whole leaves no trace. The second, after the batch is
known good, interns device ids and firmware strings, which is the only place the tenant's
state changes during decoding.
"""

from __future__ import annotations

import math
import struct
import threading
from typing import Any

import numpy as np
import numpy.typing as npt

from core.batch import BATTERY_NONE, FW_NONE, NEW_DEVICE, RSSI_NONE, Batch, admit_into
from core.dayblock import STATS_DTYPE, DayDelta, empty_stats
from core.errors import (
    REJECT_NUMBER,
    WARNING_BIT,
    MalformedBatch,
    TooManyFrames,
    UnsupportedVersion,
)
from core.times import (
    MS_PER_DAY,
    MS_THRESHOLD,
    NS_PER_DAY,
    NS_PER_MS,
    NS_PER_S,
    S_PER_DAY,
    slots_per_day,
)

__all__ = ["RollupPy", "ENGINE"]

ENGINE = "py"

# value kinds
NIL, BOOL, INT, FLOAT, STR, BIN, EXT, ARRAY, MAP, BAD = range(10)

INT64_MAX = 2**63 - 1
SEC_CLAMP = 9_223_372_035  # seconds past which a time saturates to INT64_MAX ns
MS_CLAMP = 9_223_372_036_853  # milliseconds past which the same
MAX_DEVICE_LEN = 128
MAX_GATEWAY_LEN = 64
MAX_FW_LEN = 32
MAX_FIRMWARE = 65_535
MAX_HEARTBEAT_S = 2**32 - 1
UNKNOWN_IDS = "batch refers to a device or firmware id this rollup does not hold"

# reject numbers and warning bits by machine code, from core.errors (each engine exposes the
# two maps; core.rollup checks them against core.errors)
R_NOT_FRAME = REJECT_NUMBER["not_a_frame"]
R_DEV_MISSING = REJECT_NUMBER["device_missing"]
R_DEV_TYPE = REJECT_NUMBER["device_type"]
R_DEV_EMPTY = REJECT_NUMBER["device_empty"]
R_DEV_LONG = REJECT_NUMBER["device_too_long"]
R_TS_MISSING = REJECT_NUMBER["ts_missing"]
R_TS_TYPE = REJECT_NUMBER["ts_type"]
R_TS_INVALID = REJECT_NUMBER["ts_invalid"]
R_TS_FUTURE = REJECT_NUMBER["ts_future"]
R_TS_OLD = REJECT_NUMBER["ts_too_old"]
R_TS_CLOSED = REJECT_NUMBER["ts_closed_month"]
W_STATUS = WARNING_BIT["status"]
W_BATTERY = WARNING_BIT["battery"]
W_RSSI = WARNING_BIT["rssi"]
W_FW = WARNING_BIT["firmware"]

# map-form frame keys: field number (0 device, 1 ts, 2 status, 3 battery, 4 rssi, 5 firmware)
# and whether the name is the short one
FRAME_KEYS = {
    b"d": (0, True),
    b"device": (0, False),
    b"t": (1, True),
    b"ts": (1, False),
    b"s": (2, True),
    b"status": (2, False),
    b"b": (3, True),
    b"battery": (3, False),
    b"r": (4, True),
    b"rssi": (4, False),
    b"fw": (5, True),
    b"firmware": (5, False),
}

Value = tuple[int, Any]


def _check_heartbeat(heartbeat_s: int) -> None:
    if heartbeat_s <= 0:
        raise ValueError("heartbeat_s must be positive")
    if heartbeat_s > MAX_HEARTBEAT_S:
        raise ValueError("heartbeat_s must be at most 4,294,967,295")


def _truncated() -> MalformedBatch:
    return MalformedBatch("not valid msgpack: data ends inside a value")


def read_value(buf: bytes, pos: int) -> tuple[int, Any, int]:
    """Read one value's head at ``pos``: ``(kind, value, next_pos)``.

    Scalars and str/bin/ext payloads are consumed; for arrays and maps only the header is,
    and ``value`` is the item count. str/bin values are ``(start, length)``; ext values are
    ``(type, start, length)``.
    """
    end = len(buf)
    if pos >= end:
        raise _truncated()
    b = buf[pos]
    pos += 1
    if b <= 0x7F:
        return INT, b, pos
    if b >= 0xE0:
        return INT, b - 0x100, pos
    if 0xA0 <= b <= 0xBF:
        n = b & 0x1F
        if pos + n > end:
            raise _truncated()
        return STR, (pos, n), pos + n
    if 0x90 <= b <= 0x9F:
        return ARRAY, b & 0x0F, pos
    if 0x80 <= b <= 0x8F:
        return MAP, b & 0x0F, pos
    if b == 0xC0:
        return NIL, None, pos
    if b == 0xC2 or b == 0xC3:
        return BOOL, b == 0xC3, pos
    if b in _FIXED:
        fmt, size, kind = _FIXED[b]
        if pos + size > end:
            raise _truncated()
        (value,) = struct.unpack_from(fmt, buf, pos)
        return kind, value, pos + size
    if b in _SIZED:  # str/bin/ext 8/16/32 and array/map 16/32
        fmt, size, kind = _SIZED[b]
        if pos + size > end:
            raise _truncated()
        (n,) = struct.unpack_from(fmt, buf, pos)
        pos += size
        if kind in (ARRAY, MAP):
            return kind, n, pos
        if kind == EXT:
            if pos + 1 + n > end:
                raise _truncated()
            ext_type = struct.unpack_from("b", buf, pos)[0]
            return EXT, (ext_type, pos + 1, n), pos + 1 + n
        if pos + n > end:
            raise _truncated()
        return kind, (pos, n), pos + n
    if b in _FIXEXT:
        n = _FIXEXT[b]
        if pos + 1 + n > end:
            raise _truncated()
        ext_type = struct.unpack_from("b", buf, pos)[0]
        return EXT, (ext_type, pos + 1, n), pos + 1 + n
    raise MalformedBatch("not valid msgpack: reserved byte 0xc1")


_FIXED = {
    0xCA: (">f", 4, FLOAT),
    0xCB: (">d", 8, FLOAT),
    0xCC: (">B", 1, INT),
    0xCD: (">H", 2, INT),
    0xCE: (">I", 4, INT),
    0xCF: (">Q", 8, INT),
    0xD0: (">b", 1, INT),
    0xD1: (">h", 2, INT),
    0xD2: (">i", 4, INT),
    0xD3: (">q", 8, INT),
}
_SIZED = {
    0xD9: (">B", 1, STR),
    0xDA: (">H", 2, STR),
    0xDB: (">I", 4, STR),
    0xC4: (">B", 1, BIN),
    0xC5: (">H", 2, BIN),
    0xC6: (">I", 4, BIN),
    0xC7: (">B", 1, EXT),
    0xC8: (">H", 2, EXT),
    0xC9: (">I", 4, EXT),
    0xDC: (">H", 2, ARRAY),
    0xDD: (">I", 4, ARRAY),
    0xDE: (">H", 2, MAP),
    0xDF: (">I", 4, MAP),
}
_FIXEXT = {0xD4: 1, 0xD5: 2, 0xD6: 4, 0xD7: 8, 0xD8: 16}


def skip_items(buf: bytes, pos: int, n: int) -> int:
    """Skip ``n`` whole values. Iterative: nesting depth costs nothing, and each value costs
    at least one byte, so a header claiming more items than the data holds ends in an error.
    """
    while n:
        kind, value, pos = read_value(buf, pos)
        n -= 1
        if kind == ARRAY:
            n += value
        elif kind == MAP:
            n += 2 * value
    return pos


def read_scalar(buf: bytes, pos: int) -> tuple[int, Any, int]:
    """Read one value; a container is skipped whole and reported as kind ARRAY/MAP."""
    kind, value, pos = read_value(buf, pos)
    if kind == ARRAY:
        pos = skip_items(buf, pos, value)
    elif kind == MAP:
        pos = skip_items(buf, pos, 2 * value)
    return kind, value, pos


def is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def time_ns(kind: int, value: Any, buf: bytes) -> int:
    """A wire timestamp as ns since the epoch; -1 if of the wrong type, -2 if invalid."""
    if kind == INT:
        if value < 0:
            return -2
        if value >= MS_THRESHOLD:
            return INT64_MAX if value > MS_CLAMP else value * NS_PER_MS
        return INT64_MAX if value > SEC_CLAMP else value * NS_PER_S
    if kind == FLOAT:
        if math.isnan(value) or math.isinf(value) or value < 0:
            return -2
        whole = math.floor(value)
        frac = value - whole
        if value >= MS_THRESHOLD:
            if whole > MS_CLAMP:
                return INT64_MAX
            return whole * NS_PER_MS + math.floor(frac * 1e6)
        if whole > SEC_CLAMP:
            return INT64_MAX
        return whole * NS_PER_S + math.floor(frac * 1e9)
    if kind == EXT:
        ext_type, start, n = value
        if ext_type != -1:
            return -1
        if n == 4:
            return struct.unpack_from(">I", buf, start)[0] * NS_PER_S
        if n == 8:
            raw = struct.unpack_from(">Q", buf, start)[0]
            nsec, sec = raw >> 34, raw & 0x3_FFFF_FFFF
        elif n == 12:
            nsec, sec = struct.unpack_from(">Iq", buf, start)
        else:
            return -1
        if sec < 0 or nsec >= NS_PER_S:
            return -2
        return INT64_MAX if sec > SEC_CLAMP else sec * NS_PER_S + nsec
    return -1


def whole_number(kind: int, value: Any) -> int | None:
    """An unsigned 64-bit integer in any msgpack numeric width: an int >= 0, or a float whose
    value is one (``3.0`` is 3, ``-0.0`` is 0; ``3.5``, NaN and infinities are not); else
    None. Where the format asks for an int (``v``, ``seq``, ``status``, an int ``device``)."""
    if kind == INT:
        return value if value >= 0 else None
    if kind == FLOAT and 0.0 <= value < 2.0**64 and value.is_integer():
        return int(value)
    return None


def _number(kind: int, value: Any, low: int, high: int) -> int | None:
    """A battery/rssi value in tenths of its unit, or None if not a number in [low, high]."""
    if kind == INT:
        return value * 10 if low <= value <= high else None
    if kind == FLOAT:
        if math.isnan(value) or not low <= value <= high:
            return None
        return round(value * 10.0)
    return None


class _Interner:
    """Strings (as bytes) to dense indexes, handed out from ``base``."""

    def __init__(self, base: int) -> None:
        self.base = base
        self.index: dict[bytes, int] = {}
        self.names: list[bytes] = []

    def get(self, key: bytes) -> int:
        return self.index.get(key, -1)

    def add(self, key: bytes) -> int:
        idx = self.base + len(self.names)
        self.index[key] = idx
        self.names.append(key)
        return idx

    def __len__(self) -> int:
        return len(self.names)


class RollupPy:
    """One tenant's rollup: its device and firmware ids, heartbeats, and live day state.

    ``decode`` turns a batch body into a :class:`Batch`; ``apply`` folds a decoded batch into
    the live state; ``drain`` hands over and clears what was applied, per UTC day, for the
    store to merge into its day blocks.
    """

    engine = ENGINE

    def __init__(self, slot_s: int = 60, heartbeat_s: int = 60, device_cap: int = 0) -> None:
        if slot_s <= 0 or S_PER_DAY % slot_s:
            raise ValueError("slot_s must divide a day (86,400 s)")
        _check_heartbeat(heartbeat_s)
        self.slot_s = slot_s
        self.slot_ns = slot_s * NS_PER_S
        self.slots_per_day = slots_per_day(slot_s)
        self.default_heartbeat_s = heartbeat_s
        self.device_cap = device_cap
        self._devices = _Interner(0)
        self._firmware = _Interner(1)
        self._heartbeat_ns: list[int] = []
        # (device, day) -> [coverage bits, fault bits, stats row]
        self._days: dict[tuple[int, int], list[Any]] = {}
        # decode may run in several threads; interning, apply and drain take this lock
        self._lock = threading.RLock()

    # --- ids -------------------------------------------------------------------------------

    @property
    def n_devices(self) -> int:
        return len(self._devices)

    def device_ids(self, start: int = 0) -> list[str]:
        with self._lock:
            return [name.decode() for name in self._devices.names[start:]]

    def device_index(self, device_id: str) -> int:
        with self._lock:
            return self._devices.get(device_id.encode())

    def add_device(self, device_id: str) -> int:
        """Intern one id (registration, or loading stored ids); returns its index."""
        with self._lock:
            return self._add_device(device_id)

    def _add_device(self, device_id: str) -> int:
        key = device_id.encode()
        idx = self._devices.get(key)
        if idx < 0:
            if not 0 < len(key) <= MAX_DEVICE_LEN:
                raise ValueError("device id must be 1..128 bytes of UTF-8")
            idx = self._devices.add(key)
            self._heartbeat_ns.append(self.default_heartbeat_s * NS_PER_S)
        return idx

    @property
    def n_firmware(self) -> int:
        return len(self._firmware)

    def firmware_ids(self, start: int = 0) -> list[str]:
        """Firmware strings by id, from id ``start + 1``."""
        with self._lock:
            return [name.decode() for name in self._firmware.names[start:]]

    def add_firmware(self, firmware: str) -> int:
        """Intern one firmware string (loading stored ids); returns its id, from 1."""
        key = firmware.encode()
        with self._lock:
            idx = self._firmware.get(key)
            if idx >= 0:
                return idx
            if not 0 < len(key) <= MAX_FW_LEN:
                raise ValueError("firmware must be 1..32 bytes of UTF-8")
            if len(self._firmware) >= MAX_FIRMWARE:
                raise ValueError("a rollup holds at most 65,535 firmware strings")
            return self._firmware.add(key)

    def set_heartbeat(self, dev: int, heartbeat_s: int) -> None:
        _check_heartbeat(heartbeat_s)
        with self._lock:
            self._heartbeat_ns[dev] = heartbeat_s * NS_PER_S

    def heartbeat_s(self, dev: int) -> int:
        with self._lock:
            return self._heartbeat_ns[dev] // NS_PER_S

    # --- decoding --------------------------------------------------------------------------

    def decode(
        self,
        body: bytes,
        now_ns: int,
        *,
        max_frames: int = 100_000,
        max_future_skew_s: int = 300,
        max_backfill_s: int = 7 * S_PER_DAY,
        closed_before_ns: int = 0,
    ) -> Batch:
        """Decode and judge one batch body; raise a ``BatchError`` if it is refused whole."""
        buf = bytes(body)
        kind, n_keys, pos = read_value(buf, 0)
        if kind != MAP:
            raise MalformedBatch("batch is not a msgpack map")
        version: Value | None = None
        gateway: Value | None = None
        seq: Value | None = None
        sent_at: Value | None = None
        frames: list[list[Any]] | None = None
        frames_kind = NIL
        bounds = (
            now_ns + max_future_skew_s * NS_PER_S,
            now_ns - max_backfill_s * NS_PER_S,
        )
        for _ in range(n_keys):
            kkind, kval, pos = read_scalar(buf, pos)
            name = buf[kval[0] : kval[0] + kval[1]] if kkind == STR else None
            if name == b"frames":
                vkind, vval, pos = read_value(buf, pos)
                frames_kind = vkind
                if vkind == ARRAY:
                    if vval > max_frames:
                        raise TooManyFrames(
                            f"batch holds {vval} frames, more than the limit of {max_frames}"
                        )
                    frames, pos = self._read_frames(buf, pos, vval, bounds, closed_before_ns)
                else:
                    frames = None
                    if vkind == MAP:
                        pos = skip_items(buf, pos, 2 * vval)
                continue
            vkind, vval, pos = read_scalar(buf, pos)
            if name == b"v":
                version = (vkind, vval)
            elif name == b"gateway":
                gateway = (vkind, vval)
            elif name == b"seq":
                seq = (vkind, vval)
            elif name == b"sent_at":
                sent_at = (vkind, vval)
        if pos != len(buf):
            raise MalformedBatch("not valid msgpack: bytes after the batch map")
        if version is not None and whole_number(*version) != 1:
            raise UnsupportedVersion("unsupported format version: only v=1 is understood")
        if gateway is None:
            raise MalformedBatch("gateway missing")
        if gateway[0] != STR or not 0 < gateway[1][1] <= MAX_GATEWAY_LEN:
            raise MalformedBatch("gateway must be a UTF-8 string of 1..64 bytes")
        gw_start, gw_len = gateway[1]
        gateway_bytes = buf[gw_start : gw_start + gw_len]
        if not is_utf8(gateway_bytes):
            raise MalformedBatch("gateway must be a UTF-8 string of 1..64 bytes")
        seq_value: int | None = None
        if seq is not None and seq[0] != NIL:
            seq_value = whole_number(*seq)
            if seq_value is None:
                raise MalformedBatch("seq must be an unsigned 64-bit integer")
        if frames_kind == NIL and frames is None:
            raise MalformedBatch("frames missing")
        if frames is None:
            raise MalformedBatch("frames must be an array")
        sent_at_ns = None
        if sent_at is not None:
            t = time_ns(sent_at[0], sent_at[1], buf)
            sent_at_ns = t if t >= 0 else None
        with self._lock:
            return self._intern(buf, gateway_bytes.decode(), seq_value, sent_at_ns, frames)

    def _read_frames(
        self, buf: bytes, pos: int, n: int, bounds: tuple[int, int], closed_before_ns: int
    ) -> tuple[list[list[Any]], int]:
        """Pass one: read and judge every frame. Each entry is
        ``[reason, warnings, device key or None, ts_ns, status, battery, rssi, fw key]``.
        """
        out = []
        for _ in range(n):
            fields: list[Value | None] = [None] * 6
            kind, count, pos = read_value(buf, pos)
            if kind == ARRAY:
                for i in range(count):
                    kkind, kval, pos = read_scalar(buf, pos)
                    if i < 5:
                        fields[i] = (kkind, kval)
            elif kind == MAP:
                short: list[Value | None] = [None] * 6
                for _ in range(count):
                    kkind, kval, pos = read_scalar(buf, pos)
                    vkind, vval, pos = read_scalar(buf, pos)
                    if kkind != STR:
                        continue
                    key = FRAME_KEYS.get(buf[kval[0] : kval[0] + kval[1]])
                    if key is not None:
                        (short if key[1] else fields)[key[0]] = (vkind, vval)
                for i in range(6):
                    s = short[i]
                    if s is not None and s[0] != NIL:
                        fields[i] = s
            else:
                out.append([R_NOT_FRAME, 0, None, 0, 0, BATTERY_NONE, RSSI_NONE, None])
                continue
            out.append(self._judge(buf, fields, bounds, closed_before_ns))
        return out, pos

    def _judge(
        self, buf: bytes, fields: list[Value | None], bounds: tuple[int, int], closed_before_ns: int
    ) -> list[Any]:
        frame: list[Any] = [0, 0, None, 0, 0, BATTERY_NONE, RSSI_NONE, None]
        dev = fields[0]
        if dev is None or dev[0] == NIL:
            frame[0] = R_DEV_MISSING
            return frame
        if dev[0] == STR:
            start, length = dev[1]
            if length == 0:
                frame[0] = R_DEV_EMPTY
                return frame
            if length > MAX_DEVICE_LEN:
                frame[0] = R_DEV_LONG
                return frame
            key = buf[start : start + length]
            if not is_utf8(key):
                frame[0] = R_DEV_TYPE
                return frame
        elif whole_number(*dev) is not None:
            key = str(whole_number(*dev)).encode()
        else:
            frame[0] = R_DEV_TYPE
            return frame
        frame[2] = key
        ts = fields[1]
        if ts is None or ts[0] == NIL:
            frame[0] = R_TS_MISSING
            return frame
        t = time_ns(ts[0], ts[1], buf)
        if t == -1:
            frame[0] = R_TS_TYPE
            return frame
        if t == -2:
            frame[0] = R_TS_INVALID
            return frame
        if t > bounds[0]:
            frame[0] = R_TS_FUTURE
            return frame
        if t < bounds[1]:
            frame[0] = R_TS_OLD
            return frame
        if t < closed_before_ns:
            frame[0] = R_TS_CLOSED
            return frame
        frame[3] = t
        warnings = 0
        status = fields[2]
        if status is not None and status[0] != NIL:
            value = whole_number(*status)
            if value is not None and value <= 255:
                frame[4] = value
            else:
                warnings |= W_STATUS
        battery = fields[3]
        if battery is not None and battery[0] != NIL:
            value = _number(battery[0], battery[1], 0, 100)
            if value is None:
                warnings |= W_BATTERY
            else:
                frame[5] = value
        rssi = fields[4]
        if rssi is not None and rssi[0] != NIL:
            value = _number(rssi[0], rssi[1], -200, 0)
            if value is None:
                warnings |= W_RSSI
            else:
                frame[6] = value
        fw = fields[5]
        if fw is not None and fw[0] != NIL:
            if fw[0] == STR and 0 < fw[1][1] <= MAX_FW_LEN:
                fw_key = buf[fw[1][0] : fw[1][0] + fw[1][1]]
                if is_utf8(fw_key):
                    frame[7] = fw_key
                else:
                    warnings |= W_FW
            else:
                warnings |= W_FW
        frame[1] = warnings
        return frame

    def _intern(
        self,
        buf: bytes,
        gateway: str,
        seq: int | None,
        sent_at_ns: int | None,
        frames: list[list[Any]],
    ) -> Batch:
        """Pass two: the batch is good; look up device ids (a new one is numbered in the batch,
        see ``NEW_DEVICE``), intern firmware and build the columns."""
        n = len(frames)
        reasons = np.zeros(n, np.uint8)
        warn = np.zeros(n, np.uint8)
        cols: list[list[int]] = [[], [], [], [], [], []]
        new: dict[bytes, int] = {}
        for i, frame in enumerate(frames):
            reason = frame[0]
            if not reason:
                dev = self._devices.get(frame[2])
                if dev < 0:
                    dev = NEW_DEVICE | new.setdefault(frame[2], len(new))
            if reason:
                reasons[i] = reason
                continue
            fw = FW_NONE
            mask = frame[1]
            if frame[7] is not None:
                fw = self._firmware.get(frame[7])
                if fw < 0:
                    if len(self._firmware) >= MAX_FIRMWARE:
                        fw = FW_NONE
                        mask |= W_FW
                    else:
                        fw = self._firmware.add(frame[7])
            warn[i] = mask
            for col, value in zip(
                cols, (dev, frame[3], frame[4], frame[5], frame[6], fw), strict=True
            ):
                col.append(value)
        return Batch(
            gateway,
            seq,
            sent_at_ns,
            reasons,
            warn,
            np.array(cols[0], np.uint32),
            np.array(cols[1], np.int64),
            np.array(cols[2], np.uint8),
            np.array(cols[3], np.int16),
            np.array(cols[4], np.int16),
            np.array(cols[5], np.uint16),
            [key.decode() for key in new],
        )

    def admit(self, batch: Batch) -> Batch:
        """Intern the batch's new devices now (frames over the device cap are rejected): for
        a rollup used without a store, whose commit admits them instead."""
        return admit_into(self, batch)

    # --- live state ------------------------------------------------------------------------

    def _day(self, dev: int, day: int) -> list[Any]:
        entry = self._days.get((dev, day))
        if entry is None:
            width = (self.slots_per_day + 7) // 8
            entry = [bytearray(width), bytearray(width), empty_stats(1)[0]]
            self._days[(dev, day)] = entry
        return entry

    def _fw_name(self, fw: int) -> bytes:
        return self._firmware.names[fw - 1] if fw else b""

    def apply(self, batch: Batch) -> None:
        """Fold the accepted frames of a decoded batch into the live state (admitting its new
        devices first if nobody has)."""
        if batch.new_ids:
            batch = self.admit(batch)
        with self._lock:
            if (batch.dev.size and int(batch.dev.max()) >= len(self._devices)) or (
                batch.fw.size and int(batch.fw.max()) > len(self._firmware)
            ):
                raise IndexError(UNKNOWN_IDS)
            self._apply(batch)

    def _apply(self, batch: Batch) -> None:
        spd = self.slots_per_day
        for dev, t, status, battery, rssi, fw in zip(
            batch.dev.tolist(),
            batch.ts.tolist(),
            batch.status.tolist(),
            batch.battery.tolist(),
            batch.rssi.tolist(),
            batch.fw.tolist(),
            strict=False,
        ):
            if status == 0:  # covers [t, t + H): set the slot range day by day
                first = t // self.slot_ns
                end = (t + self._heartbeat_ns[dev] - 1) // self.slot_ns + 1
                while first < end:
                    day, a = divmod(first, spd)
                    b = min(spd, a + end - first)
                    bits = self._day(dev, day)[0]
                    mask = ((1 << (b - a)) - 1) << a
                    bits[:] = (int.from_bytes(bits, "little") | mask).to_bytes(len(bits), "little")
                    first += b - a
            else:
                slot = t // self.slot_ns
                bits = self._day(dev, slot // spd)[1]
                i = slot % spd
                bits[i >> 3] |= 1 << (i & 7)
            day = t // NS_PER_DAY
            ms = t // NS_PER_MS - day * MS_PER_DAY
            row = self._day(dev, day)[2]
            row["frames"] += 1
            if status:
                row["fault_frames"] += 1
            if row["first_ms"] < 0 or ms < row["first_ms"]:
                row["first_ms"] = ms
            if ms > row["last_ms"] or (ms == row["last_ms"] and status > row["last_status"]):
                row["last_ms"], row["last_status"] = ms, status
            if battery != BATTERY_NONE:
                if row["batt_min"] < 0 or battery < row["batt_min"]:
                    row["batt_min"] = battery
                if ms > row["batt_ms"] or (ms == row["batt_ms"] and battery > row["batt_last"]):
                    row["batt_ms"], row["batt_last"] = ms, battery
            if rssi != RSSI_NONE:
                row["rssi_n"] += 1
                row["rssi_sum"] += rssi
                if ms > row["rssi_ms"] or (ms == row["rssi_ms"] and rssi > row["rssi_last"]):
                    row["rssi_ms"], row["rssi_last"] = ms, rssi
            if fw != FW_NONE:
                if ms > row["fw_ms"] or (
                    ms == row["fw_ms"] and self._fw_name(fw) > self._fw_name(int(row["fw_last"]))
                ):
                    row["fw_ms"], row["fw_last"] = ms, fw

    @property
    def pending_days(self) -> int:
        """Device-days held in the live state."""
        return len(self._days)

    def drain(self) -> list[DayDelta]:
        """Hand over the live state, one :class:`DayDelta` per day in day order, and clear it."""
        with self._lock:
            return self._drain()

    def _drain(self) -> list[DayDelta]:
        by_day: dict[int, list[int]] = {}
        for dev, day in self._days:
            by_day.setdefault(day, []).append(dev)
        out = []
        for day in sorted(by_day):
            devs = sorted(by_day[day])
            entries = [self._days[(dev, day)] for dev in devs]
            width = (self.slots_per_day + 7) // 8
            cov = np.frombuffer(b"".join(e[0] for e in entries), np.uint8).reshape(-1, width)
            fault = np.frombuffer(b"".join(e[1] for e in entries), np.uint8).reshape(-1, width)
            stats = np.array([e[2] for e in entries], STATS_DTYPE)
            out.append(DayDelta(day, np.array(devs, np.uint32), cov.copy(), fault.copy(), stats))
        self._days.clear()
        return out

    def fw_rank(self) -> npt.NDArray[np.int64]:
        """Rank of each firmware id (index) by its string; id 0 (none) ranks lowest."""
        names = [b""] + self._firmware.names
        order = sorted(range(len(names)), key=names.__getitem__)
        rank = np.empty(len(names), np.int64)
        rank[order] = np.arange(len(names))
        return rank
