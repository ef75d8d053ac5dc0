"""The decoded batch, shared by both rollup engines."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Protocol

import numpy as np
import numpy.typing as npt

from core.errors import MAX_ERRORS, REJECT_CODES, REJECT_NUMBER, REJECT_REASONS, WARNING_REASONS
from core.times import NS_PER_S

R_CAP = REJECT_NUMBER["device_cap"]
R_CLOSED = REJECT_NUMBER["ts_closed_month"]

#: ``battery`` column value when the frame carried none (valid values are 0..1000, 0.1 %).
BATTERY_NONE = -1
#: ``rssi`` column value when the frame carried none (valid values are -2000..0, 0.1 dBm).
RSSI_NONE = 1
#: ``fw`` column value when the frame carried none (valid values are firmware ids from 1).
FW_NONE = 0
#: ``dev`` column flag of a frame whose device the rollup did not know when the batch was
#: decoded; the rest of the value indexes :attr:`Batch.new_ids`. Decoding interns no device:
#: a batch's new devices are admitted when it is committed (:func:`admit_new_devices`), so a
#: batch that never is (a duplicate, a failed commit, a dropped request) creates none.
NEW_DEVICE = 1 << 31


#: the unit frames are counted in for billing: every UTC offset is a multiple of 15 minutes
QUARTER_NS = 15 * 60 * NS_PER_S


def quarter_counts(ts: npt.NDArray[np.int64]) -> dict[int, int]:
    """Frames per quarter hour of ``ts`` (ns): one pair in the usual case of a batch inside
    one quarter, found with two reductions."""
    if not len(ts):
        return {}
    first, last = int(ts.min()) // QUARTER_NS, int(ts.max()) // QUARTER_NS
    if first == last:
        return {first: len(ts)}
    counts = np.bincount(ts // QUARTER_NS - first)
    return {first + int(q): int(n) for q in np.flatnonzero(counts) for n in (counts[q],)}


@dataclass
class Batch:
    """One batch after decoding: header fields, per-frame verdicts, accepted frames as columns.

    The columns hold only the accepted frames, in batch order: ``dev`` is the tenant's dense
    device index, ``ts`` nanoseconds since the Unix epoch, ``status`` 0..255, ``battery`` in
    0.1 % (or ``BATTERY_NONE``), ``rssi`` in 0.1 dBm (or ``RSSI_NONE``), ``fw`` the tenant's
    firmware id (or ``FW_NONE``). ``reasons`` and ``warnings_mask`` have one entry per frame of
    the batch, accepted or not. ``new_ids`` are the devices the rollup did not know, in order
    of first appearance; their frames' ``dev`` is ``NEW_DEVICE | k`` until admitted.
    """

    gateway: str
    seq: int | None
    sent_at_ns: int | None
    reasons: npt.NDArray[np.uint8]
    warnings_mask: npt.NDArray[np.uint8]
    dev: npt.NDArray[np.uint32]
    ts: npt.NDArray[np.int64]
    status: npt.NDArray[np.uint8]
    battery: npt.NDArray[np.int16]
    rssi: npt.NDArray[np.int16]
    fw: npt.NDArray[np.uint16]
    new_ids: list[str] = field(default_factory=list)
    _errors: list[dict[str, object]] | None = field(default=None, repr=False)
    _warnings: int | None = field(default=None, repr=False)
    _log: bytes | None = field(default=None, repr=False)
    _quarters: dict[int, int] | None = field(default=None, repr=False)

    #: bytes of one frame in :meth:`columns_bytes` (dev, ts, status, battery, rssi, fw)
    FRAME_BYTES: ClassVar[int] = 4 + 8 + 1 + 2 + 2 + 2

    def prepare(self) -> Batch:
        """Compute the answer's counts and the log record now (in a decoding thread), so the
        single writer thread does not have to."""
        _ = self.warnings, self.errors, self.columns_bytes(), self.quarter_counts()
        return self

    def quarter_counts(self) -> dict[int, int]:
        """Accepted frames per quarter hour of their time (``ts // QUARTER_NS``): what billing
        counts frames by, since every zone's local day starts on a quarter hour."""
        if self._quarters is None:
            self._quarters = quarter_counts(self.ts)
        return self._quarters

    @property
    def n_frames(self) -> int:
        return len(self.reasons)

    @property
    def accepted(self) -> int:
        return len(self.dev)

    @property
    def rejected(self) -> int:
        return self.n_frames - self.accepted

    @property
    def warnings(self) -> int:
        if self._warnings is None:
            mask = self.warnings_mask
            self._warnings = int(np.bitwise_count(mask).sum()) if mask.any() else 0
        return self._warnings

    def reject_counts(self) -> dict[str, int]:
        """Rejected frames by machine code (for metrics)."""
        if not self.rejected:
            return {}
        counts = np.bincount(self.reasons, minlength=len(REJECT_CODES))
        return {REJECT_CODES[i]: int(n) for i, n in enumerate(counts) if i and n}

    @property
    def errors(self) -> list[dict[str, object]]:
        """The first rejects and warnings in frame order, at most ``MAX_ERRORS``."""
        if self._errors is None:
            out: list[dict[str, object]] = []
            if not self.rejected and not self.warnings:  # the usual batch: nothing to tell
                self._errors = out
                return out
            flagged = np.flatnonzero((self.reasons != 0) | (self.warnings_mask != 0))
            for i in flagged:
                reason = int(self.reasons[i])
                if reason:
                    out.append({"index": int(i), "reason": REJECT_REASONS[reason]})
                else:
                    mask = int(self.warnings_mask[i])
                    for bit, text in enumerate(WARNING_REASONS):
                        if mask >> bit & 1:
                            out.append({"index": int(i), "reason": text})
                if len(out) >= MAX_ERRORS:
                    break
            self._errors = out[:MAX_ERRORS]
        return self._errors

    def columns_bytes(self) -> bytes:
        """The accepted frames as one compact byte string (the log record)."""
        if self._log is None:
            self._log = self._columns_bytes()
        return self._log

    def _columns_bytes(self) -> bytes:
        # asarray: no copy when a column already has the little-endian type
        return b"".join(
            (
                np.uint32(self.accepted).tobytes(),
                np.asarray(self.dev, "<u4").tobytes(),
                np.asarray(self.ts, "<i8").tobytes(),
                self.status.tobytes(),
                np.asarray(self.battery, "<i2").tobytes(),
                np.asarray(self.rssi, "<i2").tobytes(),
                np.asarray(self.fw, "<u2").tobytes(),
            )
        )

    @classmethod
    def from_columns_bytes(cls, data: bytes, gateway: str = "", seq: int | None = None) -> Batch:
        """Rebuild the accepted frames of a batch from :meth:`columns_bytes` (log replay)."""
        n = int(np.frombuffer(data, "<u4", 1)[0])
        pos = 4
        cols = []
        for dtype in ("<u4", "<i8", "u1", "<i2", "<i2", "<u2"):
            arr = np.frombuffer(data, dtype, n, pos)
            pos += arr.nbytes
            cols.append(arr.astype(dtype.lstrip("<"), copy=True))
        if pos != len(data):
            raise ValueError("log record has trailing bytes")
        dev, ts, status, battery, rssi, fw = cols
        empty = np.zeros(n, np.uint8)
        return cls(gateway, seq, None, empty, empty.copy(), dev, ts, status, battery, rssi, fw)


class Admitting(Protocol):
    """What admission asks of a rollup (both engines have it)."""

    device_cap: int

    @property
    def n_devices(self) -> int: ...

    def device_index(self, device_id: str) -> int: ...

    def add_device(self, device_id: str) -> int: ...


def admit_new_devices(rollup: Admitting, batch: Batch, pending: dict[str, int]) -> Batch:
    """The batch with final indexes for its new devices, for a store's commit.

    An id the rollup has interned since the batch was decoded takes its index, and so does one
    already given out in ``pending`` (to an earlier batch of the same commit). Any other takes
    the next free index and joins ``pending``, unless the tenant's device cap is reached: its
    frames are then rejected ("device cap reached", and their warnings dropped). Nothing is
    interned here; the caller interns ``pending`` in index order once the batch is committed,
    and nothing else may intern devices meanwhile.
    """
    if not batch.new_ids:
        return batch
    base, cap = rollup.n_devices, rollup.device_cap
    final = []
    for device_id in batch.new_ids:
        idx = rollup.device_index(device_id)
        if idx < 0:
            idx = pending.get(device_id, -1)
        if idx < 0 and not (cap and base + len(pending) >= cap):
            idx = pending[device_id] = base + len(pending)
        final.append(idx)
    return _with_devices(batch, final)


def admit_into(rollup: Admitting, batch: Batch) -> Batch:
    """Admit a batch's new devices by interning them at once, as :func:`admit_new_devices`
    numbers them: for a rollup used without a store (tools, benchmarks, tests). Safe beside
    other threads doing the same, except that together they may pass the device cap."""
    if not batch.new_ids:
        return batch
    cap = rollup.device_cap
    final = []
    for device_id in batch.new_ids:
        idx = rollup.device_index(device_id)
        if idx < 0 and not (cap and rollup.n_devices >= cap):
            idx = rollup.add_device(device_id)  # returns the index if another thread added it
        final.append(idx)
    return _with_devices(batch, final)


def _with_devices(batch: Batch, final: list[int]) -> Batch:
    """``batch`` with ``NEW_DEVICE | k`` replaced by ``final[k]``; frames whose ``final`` is
    -1 are rejected as over the device cap."""
    dev = batch.dev.astype(np.int64)
    new = dev >= NEW_DEVICE
    dev[new] = np.asarray(final, np.int64)[dev[new] - NEW_DEVICE]
    keep = dev >= 0
    reasons, warnings_mask = batch.reasons, batch.warnings_mask
    if not keep.all():
        capped = np.flatnonzero(reasons == 0)[~keep]
        reasons, warnings_mask = reasons.copy(), warnings_mask.copy()
        reasons[capped] = R_CAP
        warnings_mask[capped] = 0
    return Batch(
        batch.gateway,
        batch.seq,
        batch.sent_at_ns,
        reasons,
        warnings_mask,
        dev[keep].astype(np.uint32),
        batch.ts[keep],
        batch.status[keep],
        batch.battery[keep],
        batch.rssi[keep],
        batch.fw[keep],
    )


def reject_before(batch: Batch, closed_before_ns: int) -> Batch:
    """``batch`` with its accepted frames before ``closed_before_ns`` rejected as
    ``ts_closed_month`` (their warnings dropped), as decoding against that cut would have:
    for a commit that finds a month closed since the batch was decoded. New devices left
    without a frame are dropped from ``new_ids``, so the commit creates none for them."""
    keep = batch.ts >= closed_before_ns
    if keep.all():
        return batch
    reasons, warnings_mask = batch.reasons.copy(), batch.warnings_mask.copy()
    closed = np.flatnonzero(reasons == 0)[~keep]
    reasons[closed] = R_CLOSED
    warnings_mask[closed] = 0
    dev = batch.dev[keep]
    new_ids = batch.new_ids
    if new_ids:
        new = dev >= NEW_DEVICE
        used = np.unique(dev[new] - NEW_DEVICE)
        renumber = np.full(len(new_ids), -1, np.int64)
        renumber[used] = np.arange(len(used))
        dev = dev.copy()
        dev[new] = (renumber[dev[new] - NEW_DEVICE] + NEW_DEVICE).astype(np.uint32)
        new_ids = [new_ids[int(k)] for k in used]
    return Batch(
        batch.gateway,
        batch.seq,
        batch.sent_at_ns,
        reasons,
        warnings_mask,
        dev,
        batch.ts[keep],
        batch.status[keep],
        batch.battery[keep],
        batch.rssi[keep],
        batch.fw[keep],
        new_ids,
    )
