"""The incidents table and the watching's memory: ``incidents`` ((tenant, incident id) ->
msgpack record) and ``watch`` (tenant -> msgpack record).

Incident ids are one sequence over all tenants (``meta``'s ``incident_seq``), never reused.
The record is :meth:`core.incidents.Incident.to_record`. ``watch`` holds, per tenant, what
the evaluator must remember across a restart so that it neither loses nor repeats an event:
the alert states it last announced, the devices' recent state changes (flapping), and the
instant of its last pass (:class:`core.watch.WatchMemory`).
"""

from __future__ import annotations

from typing import Any

import lmdb
import msgpack

from core.incidents import Incident
from core.store.slab import INCIDENT_KEY, TENANT_KEY, Slab, next_in_sequence, prefix_scan


class IncidentTable:
    def __init__(self, slab: Slab) -> None:
        self.slab = slab

    def next_id(self, txn: lmdb.Transaction) -> int:
        return next_in_sequence(self.slab, txn, b"incident_seq")

    def put(self, txn: lmdb.Transaction, incident: Incident) -> None:
        txn.put(
            INCIDENT_KEY.pack(incident.tenant_id, incident.id),
            msgpack.packb(incident.to_record()),
            db=self.slab.db[b"incidents"],
        )

    def get(self, txn: lmdb.Transaction, tenant_id: int, incident_id: int) -> Incident | None:
        raw = txn.get(INCIDENT_KEY.pack(tenant_id, incident_id), db=self.slab.db[b"incidents"])
        return None if raw is None else Incident.from_record(msgpack.unpackb(raw))

    def all(self, txn: lmdb.Transaction, tenant_id: int, after: int = 0) -> list[Incident]:
        """The tenant's incidents of ids above ``after``, oldest id first."""
        start = INCIDENT_KEY.pack(tenant_id, after + 1) if after else None
        prefix = TENANT_KEY.pack(tenant_id)
        return [
            Incident.from_record(msgpack.unpackb(value))
            for _, value in prefix_scan(txn, self.slab.db[b"incidents"], prefix, start)
        ]

    def memory(self, txn: lmdb.Transaction, tenant_id: int) -> dict[str, Any] | None:
        raw = txn.get(TENANT_KEY.pack(tenant_id), db=self.slab.db[b"watch"])
        return None if raw is None else msgpack.unpackb(raw, strict_map_key=False)

    def put_memory(self, txn: lmdb.Transaction, tenant_id: int, record: dict[str, Any]) -> None:
        txn.put(TENANT_KEY.pack(tenant_id), msgpack.packb(record), db=self.slab.db[b"watch"])
