"""The billing tables: subscriptions, issued invoices, closed months and the MRR kept with
them (``docs/storage.md``; the rules are :mod:`core.billing`, the close is
:meth:`core.store.Store.close_month`).

* ``subscriptions`` ((tenant, n) -> msgpack event): a tenant's dated ``start``, ``change``
  and ``cancel`` events in the order recorded, each with who recorded it and when.
* ``invoices`` ((year of issue, seq) -> msgpack invoice): every issued invoice, in issue
  order; seq is gapless per year of issue across all tenants. An invoice is never rewritten.
* ``invoice_numbers`` ((tenant, number) -> (year, seq)): a tenant's invoices, by number.
* ``closed_months`` (``b"YYYY-MM"`` -> msgpack {closed_ns, numbers, prefix}): the months
  closed, and the invoices each close issued.
* ``month_mrr`` ((tenant, yyyymm) -> msgpack {mrr, currency, devices, tier, term}): the MRR
  of a closed month's end, kept so that editing a tier file never rewrites the past.

Everything is written in the caller's write transaction: a close writes all of its invoices,
its closed month, the kept MRR and the tenants' cuts in one, or nothing.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import lmdb
import msgpack

from core.billing.subscriptions import Cancel, Change, Event, Start
from core.store.slab import (
    INVOICE_KEY,
    MONTH_MRR_KEY,
    SUBSCRIPTION_KEY,
    TENANT_KEY,
    Slab,
    prefix_scan,
)


def event_record(event: Event, by: str, recorded_ns: int) -> dict[str, Any]:
    """A subscription event as stored: kind, on (local date, ISO), tier, term, trial_days
    (None where the kind has none), recorded_ns, by."""
    record: dict[str, Any] = {
        "kind": type(event).__name__.lower(),
        "on": event.on.isoformat(),
        "tier": None,
        "term": None,
        "trial_days": None,
        "recorded_ns": recorded_ns,
        "by": by,
    }
    if isinstance(event, Start):
        record.update(tier=event.tier, term=event.term, trial_days=event.trial_days)
    elif isinstance(event, Change):
        record.update(tier=event.tier, term=event.term)
    return record


def event_of(record: dict[str, Any]) -> Event:
    """The event of a stored record."""
    on = date.fromisoformat(record["on"])
    kind = record["kind"]
    if kind == "start":
        return Start(on, record["tier"], record["term"], record["trial_days"])
    if kind == "change":
        return Change(on, record["tier"], record["term"])
    if kind == "cancel":
        return Cancel(on)
    raise ValueError(f"unknown subscription event kind {kind!r}")


def month_key(year: int, month: int) -> bytes:
    return f"{year:04d}-{month:02d}".encode()


class BillingTable:
    def __init__(self, slab: Slab) -> None:
        self.slab = slab

    # --- subscriptions ------------------------------------------------------------------------

    def event_records(self, txn: lmdb.Transaction, tenant_id: int) -> list[dict[str, Any]]:
        """The tenant's subscription events as stored, in the order recorded."""
        prefix = TENANT_KEY.pack(tenant_id)
        return [
            msgpack.unpackb(value)
            for _, value in prefix_scan(txn, self.slab.db[b"subscriptions"], prefix)
        ]

    def add_event(self, txn: lmdb.Transaction, tenant_id: int, record: dict[str, Any]) -> int:
        """Store an event after the tenant's last one; returns its number (from 1)."""
        n = len(self.event_records(txn, tenant_id)) + 1
        key = SUBSCRIPTION_KEY.pack(tenant_id, n)
        db = self.slab.db[b"subscriptions"]
        if not txn.put(key, msgpack.packb(record), overwrite=False, db=db):
            raise lmdb.KeyExistsError(f"subscription event {tenant_id}/{n} exists")
        return n

    # --- invoices -------------------------------------------------------------------------------

    def last_seq(self, txn: lmdb.Transaction, year: int) -> int:
        """The greatest seq issued in ``year`` (0: none yet)."""
        cursor = txn.cursor(db=self.slab.db[b"invoices"])
        found = cursor.set_range(INVOICE_KEY.pack(year + 1, 0)) if year < 0xFFFF else False
        if not (cursor.prev() if found else cursor.last()):
            return 0
        stored_year, seq = INVOICE_KEY.unpack(cursor.key())
        return int(seq) if stored_year == year else 0

    def put_invoice(
        self, txn: lmdb.Transaction, year: int, seq: int, tenant_id: int, record: dict[str, Any]
    ) -> None:
        """Store an issued invoice; refuses to overwrite one (an invoice never changes)."""
        key = INVOICE_KEY.pack(year, seq)
        if not txn.put(key, msgpack.packb(record), overwrite=False, db=self.slab.db[b"invoices"]):
            raise lmdb.KeyExistsError(f"invoice {year}/{seq} exists")
        number_key = TENANT_KEY.pack(tenant_id) + record["number"].encode()
        txn.put(number_key, key, db=self.slab.db[b"invoice_numbers"])

    def invoice_at(self, txn: lmdb.Transaction, year: int, seq: int) -> dict[str, Any] | None:
        raw = txn.get(INVOICE_KEY.pack(year, seq), db=self.slab.db[b"invoices"])
        return None if raw is None else msgpack.unpackb(raw)

    def tenant_invoices(self, txn: lmdb.Transaction, tenant_id: int) -> list[dict[str, Any]]:
        """The tenant's invoices in issue order (by year of issue, then seq)."""
        prefix = TENANT_KEY.pack(tenant_id)
        keys = sorted(v for _, v in prefix_scan(txn, self.slab.db[b"invoice_numbers"], prefix))
        out = []
        for key in keys:
            raw = txn.get(key, db=self.slab.db[b"invoices"])
            if raw is not None:
                out.append(msgpack.unpackb(raw))
        return out

    # --- closed months and the MRR kept with them ---------------------------------------------

    def closed(self, txn: lmdb.Transaction, year: int, month: int) -> dict[str, Any] | None:
        raw = txn.get(month_key(year, month), db=self.slab.db[b"closed_months"])
        return None if raw is None else msgpack.unpackb(raw)

    def put_closed(
        self, txn: lmdb.Transaction, year: int, month: int, record: dict[str, Any]
    ) -> None:
        txn.put(month_key(year, month), msgpack.packb(record), db=self.slab.db[b"closed_months"])

    def closed_months(self, txn: lmdb.Transaction) -> list[tuple[str, dict[str, Any]]]:
        return [
            (bytes(key).decode(), msgpack.unpackb(value))
            for key, value in txn.cursor(db=self.slab.db[b"closed_months"])
        ]

    def put_mrr(
        self, txn: lmdb.Transaction, tenant_id: int, year: int, month: int, record: dict[str, Any]
    ) -> None:
        key = MONTH_MRR_KEY.pack(tenant_id, year * 100 + month)
        txn.put(key, msgpack.packb(record), db=self.slab.db[b"month_mrr"])

    def kept_mrr(
        self, txn: lmdb.Transaction, tenant_id: int
    ) -> dict[tuple[int, int], dict[str, Any]]:
        """The tenant's kept month-end figures by (year, month), oldest first."""
        prefix = TENANT_KEY.pack(tenant_id)
        out = {}
        for key, value in prefix_scan(txn, self.slab.db[b"month_mrr"], prefix):
            yyyymm = MONTH_MRR_KEY.unpack(key)[1]
            out[(yyyymm // 100, yyyymm % 100)] = msgpack.unpackb(value)
        return out
