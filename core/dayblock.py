"""Per-(tenant, day) blocks: what a day of a whole fleet looks like on disk and in memory.

A day of one device is a coverage bitmap, a fault bitmap (one bit per slot, slot ``i`` at bit
``i & 7`` of byte ``i >> 3``) and a row of counters (:data:`STATS_DTYPE`). A tenant's day is
kept as two LMDB values: the bitmap block (see :func:`encode_bitmaps`) and the stats block
(the counters of every device, a packed array indexed by device). The layout is described in
``docs/storage.md``.

Merging is what makes the stored result depend only on the set of frames: bitmaps are ORed,
``first``/``min`` take the minimum, ``last`` values take the value at the greatest time (ties
broken by the greater value), and delivery counters add up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from core.times import MS_PER_DAY as MS_PER_DAY  # imported from here by core.store

#: One device-day of counters. ``*_ms`` fields are milliseconds into the UTC day, -1 for none.
STATS_DTYPE = np.dtype(
    [
        ("rssi_sum", "<i8"),  # sum of rssi over frames that carried it, 0.1 dBm
        ("frames", "<u4"),  # accepted frames (deliveries)
        ("fault_frames", "<u4"),  # accepted frames with status != 0
        ("rssi_n", "<u4"),  # frames that carried rssi
        ("first_ms", "<i4"),  # earliest frame of the day
        ("last_ms", "<i4"),  # latest frame of the day
        ("batt_ms", "<i4"),  # time of batt_last
        ("rssi_ms", "<i4"),  # time of rssi_last
        ("fw_ms", "<i4"),  # time of fw_last
        ("batt_last", "<i2"),  # 0.1 %, -1 none
        ("batt_min", "<i2"),  # 0.1 %, -1 none
        ("rssi_last", "<i2"),  # 0.1 dBm, 1 none
        ("fw_last", "<u2"),  # tenant firmware id, 0 none
        ("last_status", "u1"),  # status of the latest frame
    ]
)

EMPTY_STATS = np.zeros((), STATS_DTYPE)
for _name in ("first_ms", "last_ms", "batt_ms", "rssi_ms", "fw_ms", "batt_last", "batt_min"):
    EMPTY_STATS[_name] = -1
EMPTY_STATS["rssi_last"] = 1


def empty_stats(n: int) -> npt.NDArray[np.void]:
    return np.full(n, EMPTY_STATS, STATS_DTYPE)


@dataclass
class DayDelta:
    """What one drain of a rollup holds for one UTC day: the devices touched, sorted."""

    day: int
    dev: npt.NDArray[np.uint32]
    cov: npt.NDArray[np.uint8]  # (k, W) packed bits
    fault: npt.NDArray[np.uint8]  # (k, W) packed bits
    stats: npt.NDArray[np.void]  # (k,) STATS_DTYPE


def _last_wins(
    a_ms: npt.NDArray[np.int32],
    a_val: npt.NDArray[Any],
    b_ms: npt.NDArray[np.int32],
    b_val: npt.NDArray[Any],
) -> npt.NDArray[np.bool_]:
    """Where the value timed ``b_ms`` replaces the one timed ``a_ms``."""
    return (b_ms > a_ms) | ((b_ms == a_ms) & (b_val > a_val))


def merge_stats(
    a: npt.NDArray[np.void], b: npt.NDArray[np.void], fw_rank: npt.NDArray[np.int64] | None = None
) -> npt.NDArray[np.void]:
    """Merge two arrays of counters row by row; commutative, associative.

    ``fw_rank`` maps firmware ids to their rank by name, so that a tie on time is broken by
    the firmware string, not by the order in which firmware ids were handed out.
    """
    out = a.copy()
    for name in ("rssi_sum", "frames", "fault_frames", "rssi_n"):
        out[name] = a[name] + b[name]
    a_first, b_first = a["first_ms"], b["first_ms"]
    out["first_ms"] = np.where(
        (a_first < 0) | ((b_first >= 0) & (b_first < a_first)), b_first, a_first
    )
    take = _last_wins(a["last_ms"], a["last_status"], b["last_ms"], b["last_status"])
    out["last_ms"] = np.where(take, b["last_ms"], a["last_ms"])
    out["last_status"] = np.where(take, b["last_status"], a["last_status"])
    take = _last_wins(a["batt_ms"], a["batt_last"], b["batt_ms"], b["batt_last"])
    out["batt_ms"] = np.where(take, b["batt_ms"], a["batt_ms"])
    out["batt_last"] = np.where(take, b["batt_last"], a["batt_last"])
    a_min, b_min = a["batt_min"], b["batt_min"]
    out["batt_min"] = np.where((a_min < 0) | ((b_min >= 0) & (b_min < a_min)), b_min, a_min)
    take = _last_wins(a["rssi_ms"], a["rssi_last"], b["rssi_ms"], b["rssi_last"])
    out["rssi_ms"] = np.where(take, b["rssi_ms"], a["rssi_ms"])
    out["rssi_last"] = np.where(take, b["rssi_last"], a["rssi_last"])
    a_fw, b_fw = a["fw_last"].astype(np.int64), b["fw_last"].astype(np.int64)
    if fw_rank is not None:
        a_fw, b_fw = fw_rank[a_fw], fw_rank[b_fw]
    take = _last_wins(a["fw_ms"], a_fw, b["fw_ms"], b_fw)
    out["fw_ms"] = np.where(take, b["fw_ms"], a["fw_ms"])
    out["fw_last"] = np.where(take, b["fw_last"], a["fw_last"])
    return out


# --- bitmap block codec ----------------------------------------------------------------------

KIND_EMPTY, KIND_FULL, KIND_RAW, KIND_RUNS = 0, 1, 2, 3
BLOCK_MAGIC = b"UD\x01"
_HEADER = np.dtype([("magic", "S3"), ("pad", "u1"), ("slots", "<u4"), ("n", "<u4"), ("m", "<u4")])


def _varints(values: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """LEB128-encode many values at once: the bytes, and each value's byte count."""
    nbytes = np.ones(len(values), np.int64)
    for k in (7, 14, 21, 28, 35):
        nbytes += values >= (1 << k)
    starts = np.cumsum(nbytes) - nbytes
    out = np.zeros(int(nbytes.sum()), np.uint8)
    for k in range(int(nbytes.max(initial=0))):
        here = nbytes > k
        byte = (values[here] >> (7 * k)) & 0x7F
        out[starts[here] + k] = byte | np.where(nbytes[here] > k + 1, 0x80, 0)
    return out, nbytes


def _edges(
    packed: npt.NDArray[np.uint8],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Where each row's bits change (slot j differs from slot j-1, slot -1 and the padding
    after the last slot counting as 0), as (row, position) sorted row-major.

    Works on packed bytes: a row XOR itself shifted by one bit has a 1 at every change, and
    only the few bytes holding one are unpacked.
    """
    m, width = packed.shape
    rows = np.zeros((m, width + 1), np.uint8)
    rows[:, :width] = packed  # an extra zero byte: a run of ones reaching the end ends there
    carry = np.zeros_like(rows)
    carry[:, 1:] = rows[:, :-1] >> 7
    changes = rows ^ ((rows << 1) | carry)
    row_of, byte_of = np.nonzero(changes)
    bits = np.unpackbits(changes[row_of, byte_of][:, None], axis=1, bitorder="little")
    which, bit = np.nonzero(bits)
    return row_of[which].astype(np.int64), byte_of[which].astype(np.int64) * 8 + bit


def _encode_runs_many(
    packed: npt.NDArray[np.uint8], n_slots: int
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Run-length encode many rows at once.

    Each row becomes the lengths of its alternating runs, starting with a run of zeros (maybe
    empty), the last run left implied, as varints. Returns one buffer and each row's start
    and length in it.
    """
    m = len(packed)
    rows, cols = _edges(packed)
    first = np.ones(len(rows), np.bool_)
    first[1:] = rows[1:] != rows[:-1]
    last = np.ones(len(rows), np.bool_)
    last[:-1] = rows[1:] != rows[:-1]
    previous = np.where(first, 0, np.concatenate(([0], cols[:-1])))
    keep = ~(last & (cols == n_slots))  # a final run of ones reaching the end is implied
    rows, lengths = rows[keep], (cols - previous)[keep]
    data, nbytes = _varints(lengths)
    row_len = np.bincount(rows, weights=nbytes, minlength=m).astype(np.int64)
    return data, np.cumsum(row_len) - row_len, row_len


def _kinds(packed: npt.NDArray[np.uint8], n_slots: int) -> npt.NDArray[np.uint8]:
    counts = np.bitwise_count(packed).sum(axis=1, dtype=np.int64)
    kinds = np.full(len(packed), KIND_RAW, np.uint8)
    kinds[counts == 0] = KIND_EMPTY
    kinds[counts == n_slots] = KIND_FULL
    return kinds


#: Rows encoded (and decoded, when a stored day is merged) per step by the chunked paths.
#: A day of 100,000 devices is 36 MB of dense bitmaps; whole-day numpy calls held the GIL for
#: tens of milliseconds each, a pause for every request of the server. On 8,192 rows each
#: call works on 3 MB.
CHUNK_ROWS = 8_192


@dataclass
class _Part:
    """Encoded rows ``first..first+len(kinds)-1`` of a block, to be joined with the others."""

    kinds: npt.NDArray[np.uint8]  # coverage kind | fault kind << 2, a byte per device
    busy: npt.NDArray[np.int64]  # device indexes (absolute) with a payload entry
    entry_len: npt.NDArray[np.int64]
    payload: npt.NDArray[np.uint8]


def encode_bitmaps(cov: npt.NDArray[np.uint8], fault: npt.NDArray[np.uint8], n_slots: int) -> bytes:
    """Encode a day of bitmaps for devices ``0..n-1`` (rows of packed bits) as one block.

    Layout: header; one kind byte per device (coverage kind | fault kind << 2); for the ``m``
    devices with a non-trivial bitmap, their indexes (u32) and ``m + 1`` payload offsets (u32);
    the payloads. A device that was fully up with no fault costs one byte.
    """
    parts = [
        _encode_part(cov[lo : lo + CHUNK_ROWS], fault[lo : lo + CHUNK_ROWS], n_slots, lo)
        for lo in range(0, len(cov), CHUNK_ROWS)
    ]
    return _join_parts(parts, n_slots)


def merge_bitmaps(
    stored: bytes | None,
    dev: npt.NDArray[np.uint32],
    cov: npt.NDArray[np.uint8],
    fault: npt.NDArray[np.uint8],
    n_slots: int,
) -> tuple[bytes, int]:
    """A stored day block (or none) with the rows of devices ``dev`` (sorted) OR-ed in, encoded
    again, and its number of devices; :data:`CHUNK_ROWS` devices at a time, so no step decodes
    the whole day."""
    block = decode_bitmaps(stored) if stored else None
    n = max(block.n if block else 0, int(dev.max()) + 1 if len(dev) else 0)
    width = (n_slots + 7) // 8
    parts = []
    for lo in range(0, n, CHUNK_ROWS):
        hi = min(n, lo + CHUNK_ROWS)
        if block is not None:
            c, f = block.rows(np.arange(lo, hi, dtype=np.int64))
        else:
            c, f = np.zeros((hi - lo, width), np.uint8), np.zeros((hi - lo, width), np.uint8)
        a, b = np.searchsorted(dev, [lo, hi])
        rows = dev[a:b].astype(np.int64) - lo
        c[rows] |= cov[a:b]
        f[rows] |= fault[a:b]
        parts.append(_encode_part(c, f, n_slots, lo))
    return _join_parts(parts, n_slots), n


def _join_parts(parts: list[_Part], n_slots: int) -> bytes:
    entry_len = [p.entry_len for p in parts]
    offsets = np.concatenate(([0], np.cumsum(np.concatenate(entry_len)) if parts else []))
    n = sum(len(p.kinds) for p in parts)
    m = sum(len(p.busy) for p in parts)
    header = np.array([(BLOCK_MAGIC, 0, n_slots, n, m)], _HEADER)
    return b"".join(
        [header.tobytes()]
        + [p.kinds.tobytes() for p in parts]
        + [p.busy.astype("<u4").tobytes() for p in parts]
        + [offsets.astype("<u4").tobytes()]
        + [p.payload.tobytes() for p in parts]
    )


def _encode_part(
    cov: npt.NDArray[np.uint8], fault: npt.NDArray[np.uint8], n_slots: int, first: int
) -> _Part:
    cov_kinds, fault_kinds = _kinds(cov, n_slots), _kinds(fault, n_slots)
    busy = np.flatnonzero((cov_kinds == KIND_RAW) | (fault_kinds == KIND_RAW))
    width = (n_slots + 7) // 8
    m = len(busy)
    # Each busy device's entry: varint(len(coverage part)), coverage part, fault part. A part
    # is the run-length form where shorter than the raw bitmap, else the raw bitmap, or empty
    # for an empty/full bitmap. Built for all devices at once: the parts' bytes are gathered
    # from one source array into one payload array.
    sources: list[npt.NDArray[np.uint8]] = []
    part_len, part_src = [], []
    base = 0
    for packed, kinds in ((cov, cov_kinds), (fault, fault_kinds)):
        length = np.zeros(m, np.int64)
        src = np.zeros(m, np.int64)
        raw_pos = np.flatnonzero(kinds[busy] == KIND_RAW)
        rows = packed[busy[raw_pos]]
        runs, run_start, run_len = _encode_runs_many(rows, n_slots)
        shorter = run_len < width
        kinds[busy[raw_pos[shorter]]] = KIND_RUNS
        length[raw_pos] = np.where(shorter, run_len, width)
        raw_at = base + len(runs) + np.arange(len(raw_pos)) * width
        src[raw_pos] = np.where(shorter, base + run_start, raw_at)
        sources += [runs, rows.reshape(-1)]
        base += len(runs) + rows.size
        part_len.append(length)
        part_src.append(src)
    source = np.concatenate(sources) if sources else np.zeros(0, np.uint8)
    head, head_len = _varints(part_len[0])
    entry_len = head_len + part_len[0] + part_len[1]
    offsets = np.concatenate(([0], np.cumsum(entry_len)))
    payload = np.zeros(int(offsets[-1]), np.uint8)
    payload[_ranges(offsets[:-1], head_len)] = head
    cov_at = offsets[:-1] + head_len
    payload[_ranges(cov_at, part_len[0])] = source[_ranges(part_src[0], part_len[0])]
    fault_at = cov_at + part_len[0]
    payload[_ranges(fault_at, part_len[1])] = source[_ranges(part_src[1], part_len[1])]
    kinds = (cov_kinds | (fault_kinds << 2)).astype(np.uint8)
    return _Part(kinds, busy.astype(np.int64) + first, entry_len, payload)


def _ranges(starts: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Indexes of the concatenated ranges ``[starts[i], starts[i] + lengths[i])``."""
    total = int(lengths.sum())
    if not total:
        return np.zeros(0, np.int64)
    shift = np.repeat(starts - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
    return shift + np.arange(total)


def _runs_to_bits(
    payload: npt.NDArray[np.uint8],
    starts: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.int64],
    n_slots: int,
) -> npt.NDArray[np.uint8]:
    """Decode many run-length parts at once into packed rows (vectorised varints)."""
    m = len(starts)
    idx = _ranges(starts, lengths)
    data = payload[idx].astype(np.int64)
    row_of_byte = np.repeat(np.arange(m), lengths)
    last = data < 0x80  # the last byte of each varint
    ends = np.flatnonzero(last)
    first = np.concatenate(([0], ends[:-1] + 1))
    # value = sum of (byte & 0x7f) << 7 * (position inside its varint)
    var_of_byte = np.cumsum(np.concatenate(([0], last[:-1].astype(np.int64))))
    pos_in_var = np.arange(len(data)) - first[var_of_byte]
    contrib = (data & 0x7F) << (7 * pos_in_var)
    values = np.add.reduceat(contrib, first) if len(first) else np.zeros(0, np.int64)
    rows = row_of_byte[ends]
    # Runs alternate 0, 1, 0, ... from the start of each row; the run after the last explicit
    # one fills the row. So the bits are the runs' parities repeated by their lengths.
    counts = np.bincount(rows, minlength=m)
    first_var = np.concatenate(([0], np.cumsum(counts)[:-1]))
    parity = (np.arange(len(values)) - first_var[rows]) & 1
    tail = n_slots - np.bincount(rows, weights=values, minlength=m).astype(np.int64)
    row_ends = np.cumsum(counts)
    lengths = np.insert(values, row_ends, np.maximum(tail, 0))
    parities = np.insert(parity, row_ends, counts & 1).astype(np.bool_)
    bits = np.repeat(parities, lengths).reshape(m, n_slots)
    return np.packbits(bits, axis=1, bitorder="little")


@dataclass
class BitmapBlock:
    """A day bitmap block: kinds for every device; rows are decoded on demand, vectorised."""

    n_slots: int
    cov_kind: npt.NDArray[np.uint8]
    fault_kind: npt.NDArray[np.uint8]
    busy: npt.NDArray[np.uint32]  # device indexes with a payload, ascending
    offsets: npt.NDArray[np.int64]  # m + 1 payload offsets
    payload: npt.NDArray[np.uint8]

    @property
    def n(self) -> int:
        return len(self.cov_kind)

    @property
    def width(self) -> int:
        return (self.n_slots + 7) // 8

    def _busy_rows(
        self, sel: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
        """Packed rows of the busy entries ``sel`` (positions in ``busy``)."""
        m = len(sel)
        cov = np.zeros((m, self.width), np.uint8)
        fault = np.zeros((m, self.width), np.uint8)
        if not m:
            return cov, fault
        off = self.offsets[sel]
        end = self.offsets[sel + 1]
        b0 = self.payload[off].astype(np.int64)
        two = b0 >= 0x80
        b1 = self.payload[np.minimum(off + 1, len(self.payload) - 1)].astype(np.int64)
        cov_len = np.where(two, (b0 & 0x7F) | (b1 << 7), b0)
        cov_start = off + 1 + two
        fault_start = cov_start + cov_len
        devs = self.busy[sel]
        for out, kinds, start, length in (
            (cov, self.cov_kind[devs], cov_start, cov_len),
            (fault, self.fault_kind[devs], fault_start, end - fault_start),
        ):
            out[kinds == KIND_FULL] = np.packbits(np.ones(self.n_slots, bool), bitorder="little")
            raw = np.flatnonzero(kinds == KIND_RAW)
            if len(raw):
                out[raw] = self.payload[start[raw, None] + np.arange(self.width)]
            runs = np.flatnonzero(kinds == KIND_RUNS)
            if len(runs):
                out[runs] = _runs_to_bits(self.payload, start[runs], length[runs], self.n_slots)
        return cov, fault

    def dense(self, n: int | None = None) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
        """Packed coverage and fault rows for devices ``0..n-1``."""
        return self.rows(np.arange(self.n if n is None else n, dtype=np.int64))

    def rows(
        self, devs: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
        """Packed coverage and fault rows of the given devices (beyond ``n``: no data)."""
        devs = np.asarray(devs, np.int64)
        cov = np.zeros((len(devs), self.width), np.uint8)
        fault = np.zeros((len(devs), self.width), np.uint8)
        known = devs < self.n
        safe = np.where(known, devs, 0) if self.n else np.zeros(len(devs), np.int64)
        full_row = np.packbits(np.ones(self.n_slots, bool), bitorder="little")
        if self.n:
            cov[known & (self.cov_kind[safe] == KIND_FULL)] = full_row
            fault[known & (self.fault_kind[safe] == KIND_FULL)] = full_row
        if len(self.busy):
            at = np.searchsorted(self.busy, devs)
            hit = (at < len(self.busy)) & (self.busy[np.minimum(at, len(self.busy) - 1)] == devs)
            if hit.any():
                cov[hit], fault[hit] = self._busy_rows(at[hit])
        return cov, fault


def decode_bitmaps(data: bytes | memoryview) -> BitmapBlock:
    header = np.frombuffer(data, _HEADER, 1)[0]
    if header["magic"] != BLOCK_MAGIC:
        raise ValueError("not a day bitmap block")
    n_slots, n, m = int(header["slots"]), int(header["n"]), int(header["m"])
    pos = _HEADER.itemsize
    kinds = np.frombuffer(data, np.uint8, n, pos)
    pos += n
    busy = np.frombuffer(data, "<u4", m, pos).astype(np.uint32)
    pos += 4 * m
    offsets = np.frombuffer(data, "<u4", m + 1, pos).astype(np.int64)
    pos += 4 * (m + 1)
    payload = np.frombuffer(data, np.uint8, len(data) - pos, pos)
    cov_kind, fault_kind = (kinds & 3).astype(np.uint8), (kinds >> 2).astype(np.uint8)
    return BitmapBlock(n_slots, cov_kind, fault_kind, busy, offsets, payload)
