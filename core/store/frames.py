"""Accepted frames per tenant and quarter hour: ``frame_quarters`` ((tenant, quarter) -> u64
little-endian count), by the frames' own times.

Billing counts a month's frames by the tenant's local days (overage is priced on the frames
of billed, non-trial days), and every zone's days begin on a quarter hour, so quarters add up
to any local day exactly. The counts are written by the commit that accepts the frames, in
its transaction, from counts the decoding thread made (``Batch.quarter_counts``): durable
with the frames, never counted twice (a resent batch is a duplicate, and replaying the log
after a crash restores the engines' live state only).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import cast

import lmdb

from core.batch import QUARTER_NS
from core.store.slab import QUARTER_KEY, Slab

COUNT = struct.Struct("<Q")


class FrameCountTable:
    def __init__(self, slab: Slab) -> None:
        self.slab = slab

    def add(self, txn: lmdb.Transaction, tenant_id: int, counts: Mapping[int, int]) -> None:
        db = self.slab.db[b"frame_quarters"]
        for quarter, n in counts.items():
            key = QUARTER_KEY.pack(tenant_id, quarter)
            raw = txn.get(key, db=db)
            txn.put(key, COUNT.pack((COUNT.unpack(raw)[0] if raw else 0) + n), db=db)

    def count(self, txn: lmdb.Transaction, tenant_id: int, start_ns: int, end_ns: int) -> int:
        """Frames whose time lies in ``[start_ns, end_ns)``; both must be quarter hours."""
        if start_ns % QUARTER_NS or end_ns % QUARTER_NS:
            raise ValueError("frames are counted by quarter hours: the bounds must be ones")
        if end_ns <= start_ns:
            return 0
        first, last = max(start_ns // QUARTER_NS, 0), end_ns // QUARTER_NS
        if last <= first:
            return 0
        # keys are fixed-width big-endian: the range ends at the key of its last quarter,
        # compared as bytes (no unpacking per quarter), and the counts are unpacked at once
        final = QUARTER_KEY.pack(tenant_id, min(last - 1, 0xFFFF_FFFF))
        # the store's transactions (Slab.txn, Slab.write) give bytes, not buffers
        cursor = cast("lmdb.Transaction[bytes]", txn).cursor(db=self.slab.db[b"frame_quarters"])
        counts: list[bytes] = []
        if cursor.set_range(QUARTER_KEY.pack(tenant_id, first)):
            for key, value in cursor:
                if key > final:
                    break
                counts.append(value)
        return sum(n for (n,) in COUNT.iter_unpack(b"".join(counts)))
