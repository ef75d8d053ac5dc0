"""The tenants table: ``tenants`` (id -> record) and ``tenant_names`` (name -> id).

A tenant's record keeps the name of its service tier (``plan``), never what the tier allows:
its device cap and default heartbeat are resolved from the store's tiers when the record is
read, so a tier changed in the operator's file applies to every tenant on it. A name the
tiers no longer define falls back as the ingest rate does (:func:`core.tiers.tier_of`).
Records written before this carry copies of the cap and heartbeat; they are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import lmdb
import msgpack

from core.store.slab import ID_VALUE, META_U64, TENANT_KEY, Slab, last_id
from core.tiers import (
    DEFAULT_TIER,
    AlertRules,
    Tier,
    parse_alert_rules,
    percent_of,
    table,
    tier_of,
)
from core.zones import zone


class UnknownTenant(KeyError):
    pass


class UnknownDevice(KeyError):
    pass


@dataclass
class Tenant:
    id: int
    name: str
    plan: str = DEFAULT_TIER  # the name of its tier
    slot_s: int = 60
    closed_before_ns: int = 0
    settings: dict[str, Any] = field(default_factory=dict)
    #: IANA time zone of its days, months and business hours
    tz: str = "UTC"
    #: ISO 4217 code of its prices and invoices; never changes
    currency: str = "USD"
    #: percent, a decimal string ("19", "7.5")
    tax_rate: str = "0"
    #: the name its users see (the white-label portal); "" for ``name``
    display_name: str = ""
    #: overrides of its tier's alert rules (``AlertRules`` keys, as TOML would give them)
    alerts: dict[str, Any] = field(default_factory=dict)
    #: what ``plan`` allows, resolved from the store's tiers when read; not stored
    tier: Tier = field(default_factory=Tier, compare=False, repr=False)

    @property
    def heartbeat_s(self) -> int:
        """The default heartbeat of its devices: its tier's."""
        return self.tier.heartbeat_s

    @property
    def alert_rules(self) -> AlertRules:
        """Its tier's alert rules with its own overrides."""
        return parse_alert_rules("alerts", self.alerts, self.tier.alerts)

    @property
    def device_cap(self) -> int:
        """How many devices it may have (0: no cap): its tier's."""
        return self.tier.device_cap

    def to_record(self) -> bytes:
        return msgpack.packb(
            {
                "name": self.name,
                "plan": self.plan,
                "slot_s": self.slot_s,
                "closed_before_ns": self.closed_before_ns,
                "settings": self.settings,
                "tz": self.tz,
                "currency": self.currency,
                "tax_rate": self.tax_rate,
                "display_name": self.display_name,
                "alerts": self.alerts,
            }
        )

    @classmethod
    def from_record(
        cls, tenant_id: int, data: bytes, tiers: Mapping[str, Tier] | None = None
    ) -> Tenant:
        """The tenant of a stored record, its tier resolved from ``tiers`` (if given)."""
        record = msgpack.unpackb(data)
        plan = record.get("plan", DEFAULT_TIER)
        return cls(
            id=tenant_id,
            name=record["name"],
            plan=plan,
            slot_s=record.get("slot_s", 60),
            closed_before_ns=record.get("closed_before_ns", 0),
            settings=record.get("settings", {}),
            tz=record.get("tz", "UTC"),
            currency=record.get("currency", "USD"),
            tax_rate=record.get("tax_rate", "0"),
            display_name=record.get("display_name", ""),
            alerts=record.get("alerts", {}),
            tier=Tier() if tiers is None else tier_of(tiers, plan),
        )

    #: what :meth:`TenantTable.update` may change
    EDITABLE = ("plan", "tz", "currency", "tax_rate", "display_name", "alerts")


def check_settings(
    changes: Mapping[str, Any], tiers: Mapping[str, Tier], tenant: Tenant | None = None
) -> dict[str, Any]:
    """``changes`` to a tenant's settings (a new one's if ``tenant`` is None), checked and
    normalised; a ValueError says what is wrong. A tenant's currency never changes, and it
    takes only tiers of its own currency."""
    out = dict(changes)
    unknown = set(out) - set(Tenant.EDITABLE)
    if unknown:
        raise ValueError(f"cannot set {', '.join(sorted(unknown))}")
    if "tz" in out:
        zone(out["tz"])
    if "tax_rate" in out:
        out["tax_rate"] = str(percent_of("tax_rate", out["tax_rate"]))
    if "alerts" in out:  # the overrides as a whole; checked as a tier's alerts table is
        out["alerts"] = dict(table("alerts", out["alerts"]))
        parse_alert_rules("alerts", out["alerts"], AlertRules())
    if "display_name" in out:
        out["display_name"] = str(out["display_name"]).strip()
        if len(out["display_name"].encode()) > 64:
            raise ValueError("display_name must be at most 64 bytes")
    currency = out.get("currency", tenant.currency if tenant else Tenant.currency)
    if "currency" in out:
        if tenant is not None and out["currency"] != tenant.currency:
            raise ValueError(f"a tenant's currency never changes (it is {tenant.currency})")
        if not (len(currency) == 3 and currency.isascii() and currency.isupper()):
            raise ValueError(f"currency must be an ISO 4217 code like USD, not {currency!r}")
    plan = out.get("plan", tenant.plan if tenant else None)
    if plan is not None and ("plan" in out or "currency" in out):
        if plan not in tiers:
            raise ValueError(f"no tier {plan!r} (tiers: {', '.join(sorted(tiers))})")
        if tiers[plan].currency != currency:
            raise ValueError(
                f"tier {plan} is priced in {tiers[plan].currency}, the tenant in {currency}"
            )
    return out


#: ``meta`` key of a counter every write of a tenant record bumps, so that another process
#: (a server beside the CLI) sees with one read whether its tenants are stale
CHANGES_KEY = b"tenant_changes"


class TenantTable:
    """Every tenant of the store, by id (``by_id``, kept in memory: tenants are few)."""

    def __init__(self, slab: Slab, tiers: Mapping[str, Tier]) -> None:
        self.slab = slab
        self.tiers = tiers
        self.by_id: dict[int, Tenant] = {}
        #: the ``CHANGES_KEY`` counter as of the last :meth:`read_new`
        self.seen_changes = -1

    def changes(self, txn: lmdb.Transaction) -> int:
        raw = txn.get(CHANGES_KEY, db=self.slab.db[b"meta"])
        return META_U64.unpack(raw)[0] if raw else 0

    def _changed(self, txn: lmdb.Transaction) -> None:
        txn.put(CHANGES_KEY, META_U64.pack(self.changes(txn) + 1), db=self.slab.db[b"meta"])

    def bump_changes(self, txn: lmdb.Transaction) -> None:
        """Count a write of tenant records made in ``txn`` outside this table (month close),
        so that other processes read them again."""
        self._changed(txn)

    def tier(self, plan: str) -> Tier:
        return tier_of(self.tiers, plan)

    def read_new(self, txn: lmdb.Transaction) -> list[Tenant]:
        """The stored tenants not yet in ``by_id`` (another process, the CLI beside a running
        server, may have added some); the caller opens them, then :meth:`publish`es them.
        Those known take in what was changed meanwhile (:meth:`update`) in place."""
        new = []
        self.seen_changes = self.changes(txn)
        for key, value in txn.cursor(db=self.slab.db[b"tenants"]):
            tenant_id = TENANT_KEY.unpack(key)[0]
            stored = Tenant.from_record(tenant_id, bytes(value), self.tiers)
            known = self.by_id.get(tenant_id)
            if known is None:
                new.append(stored)
            else:
                for name in (*Tenant.EDITABLE, "closed_before_ns"):
                    setattr(known, name, getattr(stored, name))
                known.tier = stored.tier
        return new

    def add(
        self, name: str, plan: str, slot_s: int, settings: Mapping[str, Any] | None = None
    ) -> Tenant:
        """Store a new tenant (the next id after the greatest stored) and return it, to be
        opened and then :meth:`publish`ed by the caller."""
        if not name or len(name.encode()) > 64:
            raise ValueError("tenant name must be 1..64 bytes")

        def work(txn: lmdb.Transaction) -> Tenant:
            names = self.slab.db[b"tenant_names"]
            if txn.get(name.encode(), db=names) is not None:
                raise ValueError(f"tenant {name!r} exists")
            tenants = self.slab.db[b"tenants"]
            tenant_id = last_id(txn, tenants, TENANT_KEY) + 1
            tenant = Tenant(tenant_id, name, plan, slot_s, tier=self.tier(plan))
            for key, value in (settings or {}).items():
                setattr(tenant, key, value)
            txn.put(TENANT_KEY.pack(tenant_id), tenant.to_record(), db=tenants)
            txn.put(name.encode(), ID_VALUE.pack(tenant_id), db=names)
            self._changed(txn)
            return tenant

        return self.slab.write(work)

    def publish(self, tenant: Tenant) -> None:
        """Make an opened tenant known: from now on requests may find it, and its rollup."""
        self.by_id[tenant.id] = tenant

    def find(self, name_or_id: str | int) -> Tenant:
        if isinstance(name_or_id, int):
            if name_or_id in self.by_id:
                return self.by_id[name_or_id]
        else:
            for tenant in self.by_id.values():
                if tenant.name == name_or_id:
                    return tenant
        raise UnknownTenant(name_or_id)

    def update(self, tenant_id: int, changes: Mapping[str, Any]) -> Tenant:
        """Store changed settings of a tenant (names of :attr:`Tenant.EDITABLE`, already
        checked by the caller); returns it."""
        unknown = set(changes) - set(Tenant.EDITABLE)
        if unknown:
            raise ValueError(f"cannot change {', '.join(sorted(unknown))}")
        tenant = self.by_id[tenant_id]

        def work(txn: lmdb.Transaction) -> None:
            raw = txn.get(TENANT_KEY.pack(tenant_id), db=self.slab.db[b"tenants"])
            assert raw is not None  # tenants are never removed
            stored = Tenant.from_record(tenant_id, bytes(raw), self.tiers)
            for name, value in changes.items():
                setattr(stored, name, value)
            txn.put(TENANT_KEY.pack(tenant_id), stored.to_record(), db=self.slab.db[b"tenants"])
            self._changed(txn)

        self.slab.write(work)
        for name, value in changes.items():
            setattr(tenant, name, value)
        tenant.tier = self.tier(tenant.plan)
        return tenant

    def set_closed_before(self, tenant_id: int, closed_before_ns: int) -> None:
        tenant = self.by_id[tenant_id]

        def work(txn: lmdb.Transaction) -> None:
            tenant.closed_before_ns = max(tenant.closed_before_ns, closed_before_ns)
            txn.put(TENANT_KEY.pack(tenant_id), tenant.to_record(), db=self.slab.db[b"tenants"])
            self._changed(txn)

        self.slab.write(work)
