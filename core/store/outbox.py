"""The webhook outbox: endpoints, events and their deliveries, durable until delivered.

* ``endpoints`` ((tenant, endpoint id) -> msgpack :meth:`core.webhooks.Endpoint.to_record`):
  url, secret, event filter, description, created_ns, created_by, disabled.
* ``events`` ((tenant, event id) -> msgpack :meth:`core.webhooks.Event.to_record`): type,
  created_ns, the exact JSON body every attempt sends, and the ids of its deliveries.
* ``deliveries`` ((delivery id) -> msgpack :meth:`core.webhooks.Delivery.to_record`): tenant,
  endpoint, event, state (pending, delivered, failed), next_ns, attempts, error.
* ``pending_deliveries`` ((delivery id) -> empty): the deliveries still pending, so that a
  start (or a poll) reads those, not every delivery ever made.

Ids come from sequences in ``meta`` (``endpoint_seq``, ``event_seq``, ``delivery_seq``), one
each over all tenants, never reused. Every write takes the caller's write transaction, so an
event commits with whatever raised it (``Store.emit_in``).
"""

from __future__ import annotations

from collections.abc import Iterator

import lmdb
import msgpack

from core.store.slab import (
    DELIVERY_KEY,
    ENDPOINT_KEY,
    EVENT_KEY,
    TENANT_KEY,
    Slab,
    next_in_sequence,
    prefix_scan,
)
from core.webhooks import Delivery, Endpoint, Event

DBS = (b"endpoints", b"events", b"deliveries", b"pending_deliveries")


class OutboxTable:
    def __init__(self, slab: Slab) -> None:
        self.slab = slab

    def next_id(self, txn: lmdb.Transaction, sequence: bytes) -> int:
        """The next id of ``sequence`` (``endpoint_seq``, ``event_seq``, ``delivery_seq``)."""
        return next_in_sequence(self.slab, txn, sequence)

    # --- endpoints -------------------------------------------------------------------------

    def put_endpoint(self, txn: lmdb.Transaction, endpoint: Endpoint) -> None:
        txn.put(
            ENDPOINT_KEY.pack(endpoint.tenant_id, endpoint.id),
            msgpack.packb(endpoint.to_record()),
            db=self.slab.db[b"endpoints"],
        )

    def endpoint(self, txn: lmdb.Transaction, tenant_id: int, endpoint_id: int) -> Endpoint | None:
        raw = txn.get(ENDPOINT_KEY.pack(tenant_id, endpoint_id), db=self.slab.db[b"endpoints"])
        if raw is None:
            return None
        return Endpoint.from_record(endpoint_id, tenant_id, msgpack.unpackb(raw))

    def endpoints(self, txn: lmdb.Transaction, tenant_id: int) -> list[Endpoint]:
        return [
            Endpoint.from_record(ENDPOINT_KEY.unpack(key)[1], tenant_id, msgpack.unpackb(value))
            for key, value in prefix_scan(
                txn, self.slab.db[b"endpoints"], TENANT_KEY.pack(tenant_id)
            )
        ]

    def delete_endpoint(self, txn: lmdb.Transaction, tenant_id: int, endpoint_id: int) -> bool:
        key = ENDPOINT_KEY.pack(tenant_id, endpoint_id)
        return bool(txn.delete(key, db=self.slab.db[b"endpoints"]))

    # --- events ----------------------------------------------------------------------------

    def put_event(self, txn: lmdb.Transaction, event: Event) -> None:
        txn.put(
            EVENT_KEY.pack(event.tenant_id, event.id),
            msgpack.packb(event.to_record()),
            db=self.slab.db[b"events"],
        )

    def event(self, txn: lmdb.Transaction, tenant_id: int, event_id: int) -> Event | None:
        raw = txn.get(EVENT_KEY.pack(tenant_id, event_id), db=self.slab.db[b"events"])
        if raw is None:
            return None
        return Event.from_record(event_id, tenant_id, msgpack.unpackb(raw))

    def events_newest_first(self, txn: lmdb.Transaction, tenant_id: int) -> Iterator[Event]:
        """The tenant's events, newest (the highest id) first."""
        cursor = txn.cursor(db=self.slab.db[b"events"])
        # step back from the first key past the tenant's
        if tenant_id + 1 < 2**32 and cursor.set_range(TENANT_KEY.pack(tenant_id + 1)):
            found = cursor.prev()
        else:
            found = cursor.last()
        while found:
            key = bytes(cursor.key())
            tenant, event_id = EVENT_KEY.unpack(key)
            if tenant != tenant_id:
                return
            yield Event.from_record(event_id, tenant_id, msgpack.unpackb(cursor.value()))
            found = cursor.prev()

    # --- deliveries ------------------------------------------------------------------------

    def put_delivery(self, txn: lmdb.Transaction, delivery: Delivery) -> None:
        key = DELIVERY_KEY.pack(delivery.id)
        txn.put(key, msgpack.packb(delivery.to_record()), db=self.slab.db[b"deliveries"])
        pending = self.slab.db[b"pending_deliveries"]
        if delivery.state == "pending":
            txn.put(key, b"", db=pending)
        else:
            txn.delete(key, db=pending)

    def delivery(self, txn: lmdb.Transaction, delivery_id: int) -> Delivery | None:
        raw = txn.get(DELIVERY_KEY.pack(delivery_id), db=self.slab.db[b"deliveries"])
        if raw is None:
            return None
        return Delivery.from_record(delivery_id, msgpack.unpackb(raw))

    def pending(self, txn: lmdb.Transaction) -> list[Delivery]:
        """Every pending delivery of every tenant, oldest first."""
        out = []
        for key, _ in txn.cursor(db=self.slab.db[b"pending_deliveries"]):
            delivery = self.delivery(txn, DELIVERY_KEY.unpack(key)[0])
            if delivery is not None:
                out.append(delivery)
        return out
