"""The maintenance windows table: ``windows`` ((tenant, window id) -> msgpack record).

Window ids are one sequence over all tenants (``meta``'s ``window_seq``), never reused, so a
deleted window's id never comes back naming another. The record is
:meth:`core.sla.windows.Window.to_record`.
"""

from __future__ import annotations

from typing import Any

import lmdb
import msgpack

from core.store.slab import TENANT_KEY, WINDOW_KEY, Slab, next_in_sequence, prefix_scan


class WindowTable:
    def __init__(self, slab: Slab) -> None:
        self.slab = slab

    def next_id(self, txn: lmdb.Transaction) -> int:
        return next_in_sequence(self.slab, txn, b"window_seq")

    def put(self, txn: lmdb.Transaction, tenant_id: int, window_id: int, record: Any) -> None:
        txn.put(
            WINDOW_KEY.pack(tenant_id, window_id),
            msgpack.packb(record),
            db=self.slab.db[b"windows"],
        )

    def delete(self, txn: lmdb.Transaction, tenant_id: int, window_id: int) -> bool:
        return bool(txn.delete(WINDOW_KEY.pack(tenant_id, window_id), db=self.slab.db[b"windows"]))

    def records(self, txn: lmdb.Transaction, tenant_id: int) -> list[tuple[int, Any]]:
        prefix = TENANT_KEY.pack(tenant_id)
        return [
            (WINDOW_KEY.unpack(key)[1], msgpack.unpackb(value))
            for key, value in prefix_scan(txn, self.slab.db[b"windows"], prefix)
        ]
