"""The frame log with its dedupe keys: ``log``, ``dedupe`` and ``dedupe_age``.

``log`` (lsn -> record) holds the accepted frames of every group committed since the last
checkpoint, one record a group: one or more (tenant u32 BE, columns) back to back, the
decisions already made, so replay does not depend on the clock. ``dedupe`` ((tenant, gateway,
seq) -> the answer first given, with its time) and ``dedupe_age`` (the same keys by time, so
that old ones are forgotten in order) make a resent batch a duplicate within the window.

What the single writer knows without asking LMDB (each read or write releases and retakes
the GIL, which costs up to a switch interval when the server is busy): the last log sequence
number (``lsn``), and per (tenant, gateway) the highest seq in ``dedupe``, so that a batch
with a higher seq (the usual case) is known new without a lookup.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

import lmdb
import msgpack

from core.batch import Batch
from core.store.slab import (
    DEDUPE_AGE_KEY,
    DEDUPE_KEY,
    GATEWAY_KEY,
    LOG_KEY,
    TENANT_KEY,
    Slab,
)

LOG_TENANT = TENANT_KEY  # the tenant of one batch of a log record
LOG_FRAMES = struct.Struct("<I")  # frames in a log entry's columns (little-endian)


@dataclass
class CommitResult:
    """What a gateway is told about one committed batch."""

    accepted: int
    rejected: int
    warnings: int
    errors: list[dict[str, object]]
    duplicate: bool = False

    def as_dict(self) -> dict[str, object]:
        return {
            "accepted": self.accepted,
            "rejected": self.rejected,
            "warnings": self.warnings,
            "duplicate": self.duplicate,
            "errors": self.errors,
        }


def log_entries(value: bytes) -> Iterator[tuple[int, Batch]]:
    """The batches of one log record: one or more (tenant u32, columns) back to back."""
    pos = 0
    while pos < len(value):
        tenant_id = LOG_TENANT.unpack_from(value, pos)[0]
        n = LOG_FRAMES.unpack_from(value, pos + LOG_TENANT.size)[0]
        end = pos + LOG_TENANT.size + LOG_FRAMES.size + n * Batch.FRAME_BYTES
        yield tenant_id, Batch.from_columns_bytes(value[pos + LOG_TENANT.size : end])
        pos = end


class LogTable:
    """The log and the dedupe keys; written by the writer thread only."""

    def __init__(self, slab: Slab, dedupe_window_ns: int) -> None:
        self.slab = slab
        self.dedupe_window_ns = dedupe_window_ns
        self.lsn = 0  # the last record's, or the last checkpoint's if the log is empty
        self.max_seq: dict[tuple[int, int], int] = {}

    def open(self, txn: lmdb.Transaction, checkpoint_lsn: int) -> None:
        cursor = txn.cursor(db=self.slab.db[b"log"])
        last = LOG_KEY.unpack(cursor.key())[0] if cursor.last() else 0
        self.lsn = max(last, checkpoint_lsn)

    @property
    def records(self) -> int:
        return self.slab.entries(b"log")

    def batches(self, upto: int | None = None) -> Iterator[tuple[int, Batch]]:
        """(tenant, batch) of every record (up to lsn ``upto``, if given), in order."""
        with self.slab.txn() as txn:
            for key, value in txn.cursor(db=self.slab.db[b"log"]):
                if upto is not None and LOG_KEY.unpack(key)[0] > upto:
                    break
                yield from log_entries(value)

    @staticmethod
    def record(tenant_id: int, batch: Batch) -> list[bytes]:
        """One batch's part of a log record."""
        return [LOG_TENANT.pack(tenant_id), batch.columns_bytes()]

    def append(self, txn: lmdb.Transaction, record: list[bytes]) -> int:
        """Put a group's record (if it has frames) after the last; returns the lsn the log
        has once ``txn`` commits (to be set as ``lsn`` then)."""
        if not record:
            return self.lsn
        lsn = self.lsn + 1
        txn.put(LOG_KEY.pack(lsn), b"".join(record), db=self.slab.db[b"log"], append=True)
        return lsn

    def truncate(self, txn: lmdb.Transaction, upto: int) -> None:
        """Delete the records up to lsn ``upto`` (a checkpoint holds them now)."""
        cursor = txn.cursor(db=self.slab.db[b"log"])
        if cursor.first():
            while True:
                key = bytes(cursor.key())
                if not key or LOG_KEY.unpack(key)[0] > upto:
                    break
                cursor.delete()

    def stored_max_seq(self, txn: lmdb.Transaction, tenant_id: int, gw: int) -> int:
        """The highest seq of the gateway in ``dedupe`` (-1 if none); asked once a gateway."""
        top = self.max_seq.get((tenant_id, gw))
        if top is not None:
            return top
        prefix = GATEWAY_KEY.pack(tenant_id, gw)
        greatest = prefix + b"\xff" * 8  # seq 2**64 - 1, which the gateway may have sent
        cursor = txn.cursor(db=self.slab.db[b"dedupe"])
        if cursor.set_range(greatest):
            found = bytes(cursor.key()) == greatest or cursor.prev()
        else:
            found = cursor.last()
        key = bytes(cursor.key()) if found else b""
        return DEDUPE_KEY.unpack(key)[2] if key.startswith(prefix) else -1

    def dedupe_hit(self, txn: lmdb.Transaction, key: bytes, now_ns: int) -> CommitResult | None:
        """The answer first given to the batch of this dedupe key, if within the window."""
        raw = txn.get(key, db=self.slab.db[b"dedupe"])
        if raw is None:
            return None
        accepted_ns, accepted, rejected, warnings, errors = msgpack.unpackb(raw)
        if accepted_ns < now_ns - self.dedupe_window_ns:
            return None
        return CommitResult(accepted, rejected, warnings, errors)

    def remember(
        self,
        txn: lmdb.Transaction,
        tenant_id: int,
        gw: int,
        seq: int,
        result: CommitResult,
        now_ns: int,
    ) -> None:
        """Store the answer to a batch under its dedupe key."""
        answer = msgpack.packb(
            [now_ns, result.accepted, result.rejected, result.warnings, result.errors]
        )
        txn.put(DEDUPE_KEY.pack(tenant_id, gw, seq), answer, db=self.slab.db[b"dedupe"])
        age_key = DEDUPE_AGE_KEY.pack(now_ns, tenant_id, gw, seq)
        txn.put(age_key, b"", db=self.slab.db[b"dedupe_age"])

    def expire_dedupe(self, txn: lmdb.Transaction, now_ns: int) -> None:
        """Forget the dedupe keys older than the window."""
        cutoff = DEDUPE_AGE_KEY.pack(max(0, now_ns - self.dedupe_window_ns), 0, 0, 0)
        cursor = txn.cursor(db=self.slab.db[b"dedupe_age"])
        dedupe = self.slab.db[b"dedupe"]
        if not cursor.first():
            return
        while True:
            age_key = bytes(cursor.key())
            if not age_key or age_key >= cutoff:
                return
            _, tenant_id, gw, seq = DEDUPE_AGE_KEY.unpack(age_key)
            key = DEDUPE_KEY.pack(tenant_id, gw, seq)
            raw = txn.get(key, db=dedupe)
            if raw is not None and msgpack.unpackb(raw)[0] < now_ns - self.dedupe_window_ns:
                txn.delete(key, db=dedupe)
            cursor.delete()  # moves to the next entry
