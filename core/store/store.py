"""The store: the tables over one slab, and the writes that span them.

Writes come in two kinds (see ``docs/storage.md``):

* :meth:`Store.commit` takes a group of decoded batches and, in ONE fsync'd write
  transaction, appends their accepted frames to the log, records their ``(gateway, seq)``
  dedupe keys, gives the devices new in the group their indexes and persists them with newly
  interned firmware ids. Only after the commit does it intern those devices and fold the
  batches into the tenants' in-memory rollups. A failed commit leaves both the file and the
  rollups as they were, and creates no device.
* :meth:`Store.checkpoint` drains the rollups, merges the drained day deltas into the stored
  per-(tenant, day) blocks and deletes the log records they came from, in one transaction.

On open, the log written since the last checkpoint is replayed into the rollups, so a crash
loses nothing that was committed; :meth:`Store.checkpoint_replayed_log`, which the server
calls as it starts, then folds it into the day blocks, so that the next start replays only
what was committed after this one.

One process opens a store path once, and never carries it across ``fork()``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import secrets
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

import lmdb
import numpy as np
import numpy.typing as npt

from core import ingest, zones
from core.batch import QUARTER_NS, Batch, admit_new_devices, reject_before
from core.billing import subscriptions
from core.billing.invoice import build_invoice, invoice_number
from core.billing.revenue import TenantMonths, month_end_mrr
from core.billing.subscriptions import Event as SubscriptionEvent
from core.billing.subscriptions import History
from core.dayblock import BitmapBlock, DayDelta
from core.incidents import Incident
from core.rollup import Rollup, RollupPy
from core.sla.history import LifecycleEntry, SiteHistory, check_transition
from core.sla.windows import Window
from core.store.billing import BillingTable, event_of, event_record
from core.store.checkpoints import (
    CheckpointTable,
    Drained,
    Prepared,
    empty_devstate,
    merge_devstate,
)
from core.store.devices import DeviceTable, Persisted
from core.store.frames import FrameCountTable
from core.store.incidents import IncidentTable
from core.store.lifecycle import FirmwareNow, LifecycleTable
from core.store.log import CommitResult, LogTable
from core.store.outbox import OutboxTable
from core.store.sites import SiteTable, check_site
from core.store.slab import (
    DEDUPE_KEY,
    GATEWAY_KEY,
    TENANT_KEY,
    Slab,
    StoreError,
    prefix_scan,
)
from core.store.tenants import (
    Tenant,
    TenantTable,
    UnknownDevice,
    UnknownTenant,
    check_settings,
)
from core.store.tokens import Token, TokenTable, check_scope
from core.store.users import UserTable
from core.store.windows import WindowTable
from core.tiers import DEFAULT_TIER, DEFAULT_TIERS, Tier
from core.times import NS_PER_MS, NS_PER_S, S_PER_DAY
from core.users import (
    ROLES,
    SignInFailed,
    User,
    email_of,
    hash_password,
    password_matches,
)
from core.webhooks import (
    SECRET_PREFIX,
    STATES,
    Attempt,
    Delivery,
    Endpoint,
    Event,
    check_description,
    check_patterns,
    check_url,
    event_body,
    matches,
)

SCHEMA_VERSION = 1

#: what an invoice number's prefix may be (``INV``, ``ACME-EU``)
PREFIX = re.compile(r"[A-Z0-9][A-Z0-9-]{0,15}")
#: test hook: seconds the close sleeps inside its transaction after its first invoice (so a
#: crash test can kill it there); never set outside tests
CLOSE_PAUSE_ENV = "UPTALLY_TEST_CLOSE_PAUSE_S"


class Store:
    """One LMDB environment holding every tenant; see the package docstring.

    A writable store has a rollup (the live day state) per tenant, ``rollups``; a read-only
    one (the dashboard's) has none, and reads what the writer's checkpoints stored.
    """

    DBS = (
        b"meta",
        b"tenants",
        b"tenant_names",
        b"devices",
        b"device_ids",
        b"firmware",
        b"gateways",
        b"gateway_ids",
        b"dedupe",
        b"dedupe_age",
        b"log",
        b"days",
        b"daystats",
        b"devstate",
        b"tokens",
        b"token_hashes",
        b"first_gateway",
        b"device_sites",
        b"lifecycle",
        b"firmware_history",
        b"windows",
        b"endpoints",
        b"events",
        b"deliveries",
        b"pending_deliveries",
        b"incidents",
        b"watch",
        b"frame_quarters",
        b"users",
        b"user_emails",
        b"subscriptions",
        b"invoices",
        b"invoice_numbers",
        b"closed_months",
        b"month_mrr",
    )

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        map_size: int = 64 << 20,
        dedupe_window_s: int = S_PER_DAY,
        readonly: bool = False,
        engine: type[RollupPy] | None = None,
        tiers: Mapping[str, Tier] = DEFAULT_TIERS,
    ) -> None:
        self.engine: type[RollupPy] = engine or Rollup
        self.readonly = readonly
        self.dedupe_window_ns = dedupe_window_s * NS_PER_S
        self.slab = Slab(
            path,
            self.DBS,
            schema=SCHEMA_VERSION,
            map_size=map_size,
            readonly=readonly,
            on_create=lambda slab, txn: CheckpointTable(slab).start(txn, time.time_ns()),
        )
        self.path = self.slab.path
        self.env = self.slab.env
        self.rollups: dict[int, RollupPy] = {}
        self.tenant_table = TenantTable(self.slab, tiers)
        self.tenants: dict[int, Tenant] = self.tenant_table.by_id
        self.token_table = TokenTable(self.slab)
        self.device_table = DeviceTable(self.slab, self.rollups)
        self.log_table = LogTable(self.slab, self.dedupe_window_ns)
        self.checkpoint_table = CheckpointTable(self.slab)
        self.site_table = SiteTable(self.slab)
        self.lifecycle_table = LifecycleTable(self.slab)
        self.window_table = WindowTable(self.slab)
        self.outbox_table = OutboxTable(self.slab)
        self.incident_table = IncidentTable(self.slab)
        self.frame_table = FrameCountTable(self.slab)
        self.user_table = UserTable(self.slab)
        self.billing_table = BillingTable(self.slab)
        #: the writer's copy of each tenant's STORED ``closed_before_ns``, as of the
        #: ``tenant_changes`` count ``_cuts_seen`` (a commit rereads them when it moved)
        self._cuts: dict[int, int] = {}
        self._cuts_seen = -1
        #: per tenant, each gateway's last accepted batch (ns), and the first batch after a
        #: silence of a heartbeat or more: the writer's, since this store opened
        self.gateway_seen: dict[int, dict[str, int]] = {}
        self.gateway_resumed: dict[int, dict[str, int]] = {}
        self.opened_ns = time.time_ns()
        #: the writer's view of each device's firmware: (name id, since ms), to date changes
        self.firmware_now: dict[int, FirmwareNow] = {}
        #: log records replayed on open and not yet checkpointed (0 in a read-only store)
        self.replayed_records = 0
        # tenants are opened (read, given a rollup) and published under this lock: the
        # server refreshes them from its pools' threads
        self._opening = threading.Lock()
        self._load()

    # --- opening ---------------------------------------------------------------------------

    def _load(self) -> None:
        with self.slab.txn() as txn:
            for tenant in self.tenant_table.read_new(txn):
                self._open_tenant(txn, tenant)
                self.tenant_table.publish(tenant)
            self.device_table.load_gateways(txn)
            if not self.readonly:
                self.log_table.open(txn, self.checkpoint_table.lsn(txn))
        if not self.readonly:
            self.replayed_records = self.log_records
            self._replay_log()

    def _open_tenant(self, txn: lmdb.Transaction, tenant: Tenant) -> None:
        """Read the tenant's ids; in a writable store, also give it its rollup."""
        if self.readonly:
            self.device_table.open_tenant(txn, tenant.id)
            return
        rollup = self.engine(tenant.slot_s, tenant.heartbeat_s, tenant.device_cap)
        self.device_table.open_tenant(txn, tenant.id, rollup)
        state = self.checkpoint_table.devstate(txn, tenant.id, rollup.n_devices)
        for dev in np.flatnonzero(state["heartbeat_s"]):
            rollup.set_heartbeat(int(dev), int(state["heartbeat_s"][dev]))
        self.rollups[tenant.id] = rollup
        self.firmware_now[tenant.id] = FirmwareNow.load(
            self.lifecycle_table.firmware(txn, tenant.id), rollup
        )

    def _replay_log(self, upto: int | None = None, tenants: set[int] | None = None) -> None:
        """Apply the log (records up to ``upto``, of ``tenants``, if given) to the rollups."""
        for tenant_id, batch in self.log_table.batches(upto):
            if tenants is None or tenant_id in tenants:
                self.rollups[tenant_id].apply(batch)

    def checkpoint_replayed_log(self, now_ns: int) -> int:
        """Checkpoint now if the open replayed log records, so that they are replayed by no
        later open: under crashes less than a checkpoint interval apart the log would pile up
        otherwise. Call it before the writer starts; returns the device-days written."""
        if not self.replayed_records:
            return 0
        return self.checkpoint(now_ns)

    def close(self) -> None:
        self.slab.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- tenants ---------------------------------------------------------------------------

    def add_tenant(
        self, name: str, *, plan: str = DEFAULT_TIER, slot_s: int = 60, **settings: Any
    ) -> Tenant:
        """A new tenant on the tier called ``plan`` (a name the tiers lack falls back as
        :func:`core.tiers.tier_of` says), with ``settings`` (``tz``, ``currency``,
        ``tax_rate``, ``display_name``: :func:`core.store.tenants.check_settings`)."""
        RollupPy(slot_s, self.tenant_table.tier(plan).heartbeat_s)  # validates the settings
        if settings:
            settings = check_settings({**settings, "plan": plan}, self.tenant_table.tiers)
            settings.pop("plan")
        with self._opening:
            tenant = self.tenant_table.add(name, plan, slot_s, settings)
            with self.slab.txn() as txn:
                self._open_tenant(txn, tenant)
            self.tenant_table.publish(tenant)
        return tenant

    def set_tenant(self, tenant_id: int, **changes: Any) -> Tenant:
        """Change a tenant's tier, zone, tax rate or display name (never its currency)."""
        tenant = self.tenants[tenant_id]
        changes = check_settings(changes, self.tenant_table.tiers, tenant)
        return self.tenant_table.update(tenant_id, changes)

    def refresh_tenants(self) -> None:
        """Pick up tenants added by another process (the CLI beside a running server). Safe
        from any thread: a tenant is opened once, and published only with its rollup."""
        with self._opening, self.slab.txn() as txn:
            for tenant in self.tenant_table.read_new(txn):
                self._open_tenant(txn, tenant)
                self.tenant_table.publish(tenant)

    def refresh_changed_tenants(self) -> None:
        """:meth:`refresh_tenants` if a tenant was added or changed (by any process) since
        they were last read: one read of a counter when nothing changed."""
        with self.slab.txn() as txn:
            changed = self.tenant_table.changes(txn) != self.tenant_table.seen_changes
        if changed:
            self.refresh_tenants()

    def tenant(self, name_or_id: str | int) -> Tenant:
        return self.tenant_table.find(name_or_id)

    def set_closed_before(self, tenant_id: int, closed_before_ns: int) -> None:
        """Refuse frames older than this from now on (month close sets it)."""
        self.tenant_table.set_closed_before(tenant_id, closed_before_ns)

    # --- tokens ----------------------------------------------------------------------------

    def add_token(self, tenant_id: int | None, scope: str) -> tuple[str, Token]:
        """Create a token; returns the secret (shown once, stored only as a hash) and its
        record. ``tenant_id`` None with scope "staff" reads every tenant."""
        check_scope(tenant_id, scope)
        if tenant_id is not None and tenant_id not in self.tenants:
            raise UnknownTenant(tenant_id)
        return self.token_table.add(tenant_id, scope)

    def revoke_token(self, token_id: int) -> Token:
        return self.token_table.revoke(token_id)

    def tokens(self) -> list[Token]:
        return self.token_table.all()

    def authenticate(self, secret: str) -> Token | None:
        """The live token with this secret, or None (unknown or revoked). Reads the store on
        every call, so a revocation by another process takes effect at once."""
        return self.token_table.authenticate(secret)

    # --- devices ---------------------------------------------------------------------------

    def device_ids(self, tenant_id: int) -> list[str]:
        """Ids of the tenant's devices, by index. Ids are never removed or renumbered."""
        self.device_table.follow(tenant_id)
        return self.device_table.ids[tenant_id]

    def device_index(self, tenant_id: int, device_id: str) -> int | None:
        """The index of a stored device of the tenant, None if it has no such device. Reads
        the store's own ids (a read-only store follows the writer's), never a rollup's."""
        return self.device_table.device_index(tenant_id, device_id)

    def firmware_names(self, tenant_id: int) -> list[str]:
        """Firmware strings by id; index 0 is the empty string (none). The writer's include
        those its decoders interned and no commit has stored yet."""
        if self.readonly:
            self.device_table.follow(tenant_id)
            return ["", *self.device_table.firmware[tenant_id]]
        return ["", *self.rollups[tenant_id].firmware_ids()]

    def register_device(
        self,
        tenant_id: int,
        device_id: str,
        *,
        activated_ns: int | None = None,
        retired_ns: int | None = None,
        heartbeat_s: int | None = None,
    ) -> int:
        """Create or update a device's lifecycle settings; returns its index."""
        with self.device_table.admission:
            return self._register_device(
                tenant_id, device_id, activated_ns, retired_ns, heartbeat_s
            )

    def _register_device(
        self,
        tenant_id: int,
        device_id: str,
        activated_ns: int | None,
        retired_ns: int | None,
        heartbeat_s: int | None,
    ) -> int:
        rollup = self.rollups[tenant_id]
        dev = rollup.device_index(device_id)
        if dev < 0:
            if rollup.device_cap and rollup.n_devices >= rollup.device_cap:
                raise ValueError("device cap reached")
            dev = rollup.add_device(device_id)
        elif heartbeat_s is not None and heartbeat_s != rollup.heartbeat_s(dev):
            # Frames cover [t, t + H) with the heartbeat in force when they are applied, and
            # a replay after a crash applies the log with the heartbeats of that moment: fold
            # the frames so far into the day blocks first, so that none is ever covered with
            # the new heartbeat in one run and the old one in another.
            self.checkpoint()
        stored_heartbeat_s = rollup.heartbeat_s(dev)
        if heartbeat_s is not None:
            rollup.set_heartbeat(dev, heartbeat_s)

        def work(txn: lmdb.Transaction) -> Persisted:
            persisted = self.device_table.persist_ids(txn, tenant_id)
            state = self.checkpoint_table.devstate(txn, tenant_id, rollup.n_devices)
            if activated_ns is not None:
                state["registered_ms"][dev] = activated_ns // NS_PER_MS
            if retired_ns is not None:
                state["retired_ms"][dev] = retired_ns // NS_PER_MS
            if heartbeat_s is not None:
                state["heartbeat_s"][dev] = heartbeat_s
            self.checkpoint_table.put_devstate(txn, tenant_id, state)
            return persisted

        try:
            persisted = self.slab.write(work)
        except BaseException:
            # not stored, so not in force: a replay after a restart would use the stored one
            rollup.set_heartbeat(dev, stored_heartbeat_s)
            raise
        self.device_table.ids_persisted(tenant_id, persisted)
        return dev

    def add_devices(self, tenant_id: int, device_ids: list[str]) -> None:
        """Intern many device ids at once (provisioning, tools, benchmarks)."""
        rollup = self.rollups[tenant_id]
        with self.device_table.admission:
            for device_id in device_ids:
                if rollup.device_index(device_id) < 0:
                    if rollup.device_cap and rollup.n_devices >= rollup.device_cap:
                        raise ValueError("device cap reached")
                    rollup.add_device(device_id)
            persisted = self.slab.write(lambda txn: self.device_table.persist_ids(txn, tenant_id))
            self.device_table.ids_persisted(tenant_id, persisted)

    def devstate(
        self, tenant_id: int, devices: npt.ArrayLike | None = None
    ) -> npt.NDArray[np.void]:
        """Per-device lifecycle and latest values (as of the last checkpoint): dense by index,
        or the rows of ``devices`` (indexes as numpy takes them) only, which reads just those
        rows out of the map instead of copying every device's."""
        n = len(self.device_ids(tenant_id))
        if devices is None:
            with self.slab.txn() as txn:
                return self.checkpoint_table.devstate(txn, tenant_id, n)[:n]
        idx = np.arange(n)[np.asarray(devices, np.int64)]  # IndexError as for the full array
        return self.checkpoint_table.devstate_rows(tenant_id, idx)

    # --- sites, lifecycle, firmware ----------------------------------------------------------

    def _index(self, tenant_id: int, device_id: str) -> int:
        dev = self.device_index(tenant_id, device_id)
        if dev is None:
            raise UnknownDevice(device_id)
        return dev

    def gateway_names(self, tenant_id: int) -> dict[int, str]:
        """The tenant's gateways, id -> name (read from the store: another process's too)."""
        with self.slab.txn() as txn:
            prefix = TENANT_KEY.pack(tenant_id)
            return {
                GATEWAY_KEY.unpack(key)[1]: value.decode()
                for key, value in prefix_scan(txn, self.slab.db[b"gateways"], prefix)
            }

    def site_history(self, tenant_id: int) -> SiteHistory:
        """Every device's site over time (default: its first gateway's name)."""
        n = len(self.device_ids(tenant_id))
        names = self.gateway_names(tenant_id)
        with self.slab.txn() as txn:
            return self.site_table.history(txn, tenant_id, n, names)

    def set_site(self, tenant_id: int, device_id: str, site: str, at_ns: int) -> None:
        """Move a device to ``site`` from ``at_ns`` on (slots starting from then are its)."""
        dev = self._index(tenant_id, device_id)
        self._check_open(tenant_id, at_ns)
        self.slab.write(lambda txn: self.site_table.set_site(txn, tenant_id, dev, at_ns, site))

    def lifecycle(self, tenant_id: int) -> dict[int, list[LifecycleEntry]]:
        """Every device's lifecycle entries, oldest first."""
        with self.slab.txn() as txn:
            return self.lifecycle_table.entries(txn, tenant_id)

    def device_lifecycle(self, tenant_id: int, device_id: str) -> list[LifecycleEntry]:
        dev = self._index(tenant_id, device_id)
        with self.slab.txn() as txn:
            return self.lifecycle_table.device_entries(txn, tenant_id, dev)

    def firmware_history(self, tenant_id: int, device_id: str) -> list[tuple[int, str]]:
        """A device's firmware changes as (first seen at ns, firmware), oldest first."""
        dev = self._index(tenant_id, device_id)
        with self.slab.txn() as txn:
            return self.lifecycle_table.firmware(txn, tenant_id, dev).get(dev, [])

    def _check_open(self, tenant_id: int, at_ns: int) -> None:
        closed = self.tenants[tenant_id].closed_before_ns
        if at_ns < closed:
            raise ValueError("that time lies in a closed month")

    def set_lifecycle(
        self,
        tenant_id: int,
        device_id: str,
        state: str,
        at_ns: int,
        *,
        by: str = "",
        why: str = "",
        link: str = "",
    ) -> LifecycleEntry:
        """Record a lifecycle change of a device; ``retired`` also ends its counted slots."""
        dev = self._index(tenant_id, device_id)
        entry = LifecycleEntry(at_ns, state, by, why, link)
        with self.device_table.admission:
            self._check_lifecycle(tenant_id, dev, state, at_ns)
            self.slab.write(lambda txn: self.lifecycle_table.add(txn, tenant_id, dev, entry))
            if state == "retired":
                self._register_device(tenant_id, device_id, None, at_ns, None)
        return entry

    def _check_lifecycle(self, tenant_id: int, dev: int, state: str, at_ns: int) -> None:
        """A ValueError unless ``state`` may be recorded for the device at ``at_ns``: in an
        open month, a transition staff may make, not before the device's last entry."""
        self._check_open(tenant_id, at_ns)
        with self.slab.txn() as txn:
            entries = self.lifecycle_table.device_entries(txn, tenant_id, dev)
        check_transition(entries, state)
        if entries and at_ns < entries[-1].at_ns:
            raise ValueError("a lifecycle change cannot predate the device's last one")

    def change_device(
        self,
        tenant_id: int,
        device_id: str,
        at_ns: int,
        *,
        site: str | None = None,
        state: str | None = None,
        by: str = "",
        why: str = "",
    ) -> None:
        """Move a device to ``site`` and/or set its lifecycle ``state``, both from ``at_ns``.
        Both are checked before either is stored, so a refused change stores neither (a new
        site beside a state that predates the last one would otherwise stay)."""
        dev = self._index(tenant_id, device_id)
        self._check_open(tenant_id, at_ns)
        if site is not None:
            check_site(site)
        if state is not None:
            self._check_lifecycle(tenant_id, dev, state, at_ns)
        if site is not None:
            self.set_site(tenant_id, device_id, site, at_ns)
        if state is not None:
            self.set_lifecycle(tenant_id, device_id, state, at_ns, by=by, why=why)

    def replace_device(
        self, tenant_id: int, old_id: str, new_id: str, at_ns: int, *, by: str = "", why: str = ""
    ) -> None:
        """Retire ``old_id`` at ``at_ns`` and link ``new_id`` (a device the store knows) to
        it; the new device takes the old one's site from its first slot on."""
        if old_id == new_id:
            raise ValueError("a device cannot replace itself")
        old, new = self._index(tenant_id, old_id), self._index(tenant_id, new_id)
        with self.slab.txn() as txn:
            if self.lifecycle_table.device_entries(txn, tenant_id, new):
                entries = self.lifecycle_table.device_entries(txn, tenant_id, new)
                if entries[-1].state == "retired":
                    raise ValueError(f"{new_id} is retired")
        site = self.site_history(tenant_id).site_at(old, at_ns)
        self.set_lifecycle(
            tenant_id,
            old_id,
            "retired",
            at_ns,
            by=by,
            why=why or f"replaced by {new_id}",
            link=new_id,
        )
        entry = LifecycleEntry(at_ns, "active", by, why or f"replaces {old_id}", old_id)
        self.slab.write(lambda txn: self.lifecycle_table.add(txn, tenant_id, new, entry))
        if site:
            self.slab.write(lambda txn: self.site_table.set_site(txn, tenant_id, new, 0, site))

    # --- maintenance windows -----------------------------------------------------------------

    def windows(self, tenant_id: int) -> list[Window]:
        with self.slab.txn() as txn:
            return [
                Window.from_record(window_id, record)
                for window_id, record in self.window_table.records(txn, tenant_id)
            ]

    def add_window(self, tenant_id: int, window: Window) -> Window:
        """Store a maintenance window; returns it with its id."""
        if window.scope == "device":
            self._index(tenant_id, window.target)

        def work(txn: lmdb.Transaction) -> Window:
            stored = dataclasses.replace(window, id=self.window_table.next_id(txn))
            self.window_table.put(txn, tenant_id, stored.id, stored.to_record())
            return stored

        return self.slab.write(work)

    def delete_window(self, tenant_id: int, window_id: int) -> None:
        if not self.slab.write(lambda txn: self.window_table.delete(txn, tenant_id, window_id)):
            raise KeyError(window_id)

    def frames_between(self, tenant_id: int, start_ns: int, end_ns: int) -> int:
        """The tenant's accepted frames whose time lies in ``[start_ns, end_ns)``, quarter
        hours (a local day's bounds are)."""
        with self.slab.txn() as txn:
            return self.frame_table.count(txn, tenant_id, start_ns, end_ns)

    # --- incidents and the watching -----------------------------------------------------------

    def first_gateway_ids(self, tenant_id: int) -> npt.NDArray[np.uint32]:
        """Each device's first gateway (an id of :meth:`gateway_names`; 0: none yet)."""
        n = len(self.device_ids(tenant_id))
        with self.slab.txn() as txn:
            return self.site_table.first_gateways(txn, tenant_id, n)

    def incidents(self, tenant_id: int, *, after: int = 0) -> list[Incident]:
        """The tenant's incidents (of ids above ``after``), oldest first."""
        with self.slab.txn() as txn:
            return self.incident_table.all(txn, tenant_id, after)

    def incidents_by_id(self, tenant_id: int, ids: Iterable[int]) -> list[Incident]:
        """The tenant's incidents of these ids, as stored now (those it has)."""
        with self.slab.txn() as txn:
            found = (self.incident_table.get(txn, tenant_id, i) for i in ids)
            return [i for i in found if i is not None]

    def incident(self, tenant_id: int, incident_id: int) -> Incident:
        with self.slab.txn() as txn:
            found = self.incident_table.get(txn, tenant_id, incident_id)
        if found is None:
            raise KeyError(incident_id)
        return found

    def watch_memory(self, tenant_id: int) -> dict[str, Any] | None:
        with self.slab.txn() as txn:
            return self.incident_table.memory(txn, tenant_id)

    def apply_watch(
        self, plans: list[tuple[int, list[tuple[Any, ...]], dict[str, Any], list[Any]]], now_ns: int
    ) -> list[Incident]:
        """Apply evaluation passes (:class:`core.watch.Plan`: per tenant its incident
        operations, the memory it keeps and its events) in one transaction, with the events
        of the incidents' own changes and every event's outbox rows. Returns the incidents
        it changed."""

        def work(txn: lmdb.Transaction) -> list[Incident]:
            changed: list[Incident] = []
            for tenant_id, ops, memory, events in plans:
                changed += self._apply_ops(txn, tenant_id, ops, events, now_ns)
                self.incident_table.put_memory(txn, tenant_id, memory)
            return changed

        return self.slab.write(work)

    def _apply_ops(
        self,
        txn: lmdb.Transaction,
        tenant_id: int,
        ops: list[tuple[Any, ...]],
        events: list[tuple[str, dict[str, Any]]],
        now_ns: int,
    ) -> list[Incident]:
        table = self.incident_table
        name = self.tenants[tenant_id].name
        real: dict[int, int] = {}
        changed: dict[int, Incident] = {}
        out: list[tuple[str, dict[str, Any]]] = []

        def load(ref: int) -> Incident | None:
            ref = real.get(ref, ref)
            return changed.get(ref) or table.get(txn, tenant_id, ref)

        for op in ops:
            if op[0] == "open":
                incident = dataclasses.replace(op[1], id=table.next_id(txn), devices=[])
                real[op[1].id] = incident.id
                incident.gateway_incident = real.get(
                    incident.gateway_incident, incident.gateway_incident
                )
                changed[incident.id] = incident
                if incident.gateway_incident:
                    gateway = load(incident.gateway_incident)
                    if gateway is not None:
                        gateway.devices.append(incident.subject)
                        changed[gateway.id] = gateway
                else:
                    out.append(("incident.opened", incident.to_json(name)))
            elif op[0] == "close":
                _, ref, end_ns, state = op
                incident = load(ref)
                if incident is None or incident.end_ns >= 0:
                    continue
                incident.end_ns = end_ns
                changed[incident.id] = incident
                if not incident.is_open:
                    continue  # staff resolved it: only its end is news, to the record
                incident.state = state
                if state == "resolved":
                    incident.resolved_ns = max(end_ns, incident.detected_ns)
                if not incident.gateway_incident:
                    out.append((f"incident.{state}", incident.to_json(name)))
            elif op[0] == "attach":
                incident, gateway = load(op[1]), load(op[2])
                if incident is None or gateway is None or incident.gateway_incident:
                    continue
                incident.gateway_incident = gateway.id
                gateway.devices.append(incident.subject)
                changed[incident.id] = incident
                changed[gateway.id] = gateway
        for incident in changed.values():
            table.put(txn, incident)
        if out or events:
            self.emit_in(txn, tenant_id, [*out, *events], now_ns)
        return list(changed.values())

    def answer_incident(
        self, tenant_id: int, incident_id: int, action: str, by: str, note: str, now_ns: int
    ) -> Incident:
        """Staff ``acknowledge`` or ``resolve`` (a note required) an incident; its event goes
        out with it. A ValueError says why it cannot be done; KeyError: no such incident."""
        note = note.strip()
        if action not in ("acknowledge", "resolve"):
            raise ValueError("action must be acknowledge or resolve")
        if action == "resolve" and not note:
            raise ValueError("resolving an incident needs a note")
        name = self.tenants[tenant_id].name

        def work(txn: lmdb.Transaction) -> Incident:
            incident = self.incident_table.get(txn, tenant_id, incident_id)
            if incident is None:
                raise KeyError(incident_id)
            if action == "acknowledge":
                if incident.acknowledged_ns >= 0:
                    raise ValueError(f"incident {incident_id} is already acknowledged")
                if incident.state == "cleared_by_backfill":
                    raise ValueError(f"incident {incident_id} was cleared by backfill")
                incident.acknowledged_ns, incident.acknowledged_by = now_ns, by
                incident.acknowledge_note = note
                if incident.state == "open":
                    incident.state = "acknowledged"
            else:
                if not incident.is_open:
                    raise ValueError(f"incident {incident_id} is already {incident.state}")
                incident.state = "resolved"
                incident.resolved_ns, incident.resolved_by = now_ns, by
                incident.resolve_note = note
                if incident.acknowledged_ns < 0:  # a person answered it: that is a response
                    incident.acknowledged_ns, incident.acknowledged_by = now_ns, by
            self.incident_table.put(txn, incident)
            past = "acknowledged" if action == "acknowledge" else "resolved"
            self.emit_in(txn, tenant_id, [(f"incident.{past}", incident.to_json(name))], now_ns)
            return incident

        return self.slab.write(work)

    # --- billing ---------------------------------------------------------------------------

    def _stored_tenant(self, txn: lmdb.Transaction, tenant_id: int) -> Tenant:
        """The tenant as stored now (another process may have changed or closed it)."""
        raw = txn.get(TENANT_KEY.pack(tenant_id), db=self.slab.db[b"tenants"])
        if raw is None:
            raise UnknownTenant(tenant_id)
        return Tenant.from_record(tenant_id, bytes(raw), self.tenant_table.tiers)

    def _history(self, txn: lmdb.Transaction, tenant: Tenant) -> History:
        records = self.billing_table.event_records(txn, tenant.id)
        return History(tenant.currency, tuple(event_of(r) for r in records))

    def subscription(self, tenant_id: int) -> History:
        """The tenant's subscription history, as recorded (checked for order and shape; its
        tiers are those named when each event was recorded)."""
        tenant = self.tenant(tenant_id)
        with self.slab.txn() as txn:
            return self._history(txn, tenant)

    def subscription_records(self, tenant_id: int) -> list[dict[str, Any]]:
        """The tenant's events as stored: kind, on, tier, term, trial_days, recorded_ns, by."""
        self.tenant(tenant_id)
        with self.slab.txn() as txn:
            return self.billing_table.event_records(txn, tenant_id)

    def add_subscription_event(
        self, tenant_id: int, event: SubscriptionEvent, by: str = "", now_ns: int | None = None
    ) -> History:
        """Record a ``Start``, ``Change`` or ``Cancel`` after the tenant's last event; returns
        the history with it. A ValueError says why not: the rules of
        :func:`core.billing.subscriptions.history` (order, tiers of the tenant's currency),
        or a date in a month of the tenant that is closed (its invoices are issued)."""
        now_ns = time.time_ns() if now_ns is None else now_ns
        tiers = self.tenant_table.tiers

        def work(txn: lmdb.Transaction) -> History:
            tenant = self._stored_tenant(txn, tenant_id)
            if not isinstance(event.on, date) or type(event.on) is not date:
                raise ValueError(f"on must be a local date, not {event.on!r}")
            day_start = zones.day_bounds(event.on, tenant.tz)[0]
            if day_start < tenant.closed_before_ns:
                year, month = event.on.year, event.on.month
                raise ValueError(
                    f"{event.on} lies in {year:04d}-{month:02d}, closed for {tenant.name}: its"
                    " invoices are issued (months up to"
                    f" {zones.iso_local(tenant.closed_before_ns, tenant.tz)} are closed)"
                )
            result = self._history(txn, tenant).then(event, tiers)
            self.billing_table.add_event(txn, tenant_id, event_record(event, by, now_ns))
            return result

        return self.slab.write(work)

    def close_month(
        self, year: int, month: int, now_ns: int | None = None, prefix: str = "INV"
    ) -> list[dict[str, Any]]:
        """Issue the invoices of local month ``year``-``month`` for every tenant that had a
        billed or trial day in it, in tenant creation (id) order, numbered
        ``<prefix>-<year of issue>-<seq>`` with seq gapless per year of issue across all
        tenants; keep each one's month-end MRR; close the month for every tenant (frames in
        it are then rejected ``ts_closed_month``, by every engine and process). All of it in
        ONE write transaction: a crash leaves none of it or all, and a rerun issues the same.
        Returns the invoice records issued; ``[]`` when the month was closed already.

        A ValueError (nothing written) unless the month has ended in every tenant's zone and
        the last checkpoint's cut (``blocks_complete_until_ns``) lies past every tenant's
        month end. Holds the store's write lock while it computes: a server beside it waits
        with its commits until the close is done (so no frame slips in between the figures
        and the cut)."""
        from core import query  # core.query and core.sla import the store
        from core.sla.attainment import month_sla

        now_ns = time.time_ns() if now_ns is None else now_ns
        if not PREFIX.fullmatch(prefix):
            raise ValueError(f"prefix must be 1-16 of A-Z, 0-9 and -, not {prefix!r}")
        label = f"{year:04d}-{month:02d}"
        issue_year = zones.local_date(now_ns, "UTC").year
        tiers = self.tenant_table.tiers
        pause_s = float(os.environ.get(CLOSE_PAUSE_ENV, "0") or 0)
        self.refresh_tenants()  # tenants another process added
        table = self.billing_table

        def work(txn: lmdb.Transaction) -> list[dict[str, Any]]:
            if table.closed(txn, year, month) is not None:
                return []
            tenants = [self._stored_tenant(txn, tid) for tid in sorted(self.tenants)]
            ends = {t.id: zones.month_bounds(year, month, t.tz) for t in tenants}
            for tenant in tenants:
                end_ns = ends[tenant.id][1]
                if now_ns < end_ns:
                    raise ValueError(
                        f"{label} has not ended for {tenant.name} ({tenant.tz}): it ends at"
                        f" {zones.iso_local(end_ns, tenant.tz)}; close it after that"
                    )
            cut_ns = self.blocks_complete_until_ns()
            last_end = max((end for _, end in ends.values()), default=0)
            if cut_ns < last_end:
                raise ValueError(
                    f"the last checkpoint folded frames up to {zones.iso_local(cut_ns, 'UTC')},"
                    f" before {label} ended in every zone ({zones.iso_local(last_end, 'UTC')}):"
                    " wait for the server's next checkpoint (checkpoint_interval_s) and close"
                    " it again"
                )
            seq = table.last_seq(txn, issue_year)
            issued: list[dict[str, Any]] = []
            for tenant in tenants:
                start_ns, end_ns = ends[tenant.id]
                subscription = self._history(txn, tenant)
                billed = subscriptions.spans(subscription, year, month)
                if billed:
                    devices = query.billable_devices(self, tenant.id, start_ns, end_ns)
                    frames = sum(
                        self.frame_table.count(
                            txn,
                            tenant.id,
                            zones.day_bounds(span.first, tenant.tz)[0],
                            zones.day_bounds(span.last, tenant.tz)[1],
                        )
                        for span in billed
                        if not span.trial
                    )
                    if billed[-1].tier not in tiers:
                        raise ValueError(
                            f"{tenant.name}: its tier {billed[-1].tier!r} of {label} is no"
                            " longer defined; restore it in the tiers file to close the month"
                        )
                    sla = month_sla(self, tenant, year, month, now_ns, tier=tiers[billed[-1].tier])
                    invoice = build_invoice(
                        billed,
                        tiers,
                        billable_devices=len(devices),
                        frames=frames,
                        attainment=sla.attainment,
                        tax_rate=Decimal(tenant.tax_rate),
                        currency=tenant.currency,
                    )
                    seq += 1
                    number = invoice_number(prefix, issue_year, seq)
                    ids = self.device_ids(tenant.id)
                    record = {
                        "number": number,
                        "tenant": tenant.id,
                        "tenant_name": tenant.name,
                        "display_name": tenant.display_name or tenant.name,
                        "zone": tenant.tz,
                        "issued_ns": now_ns,
                        **invoice.to_json(),
                        "spans": [
                            {
                                "first": s.first.isoformat(),
                                "last": s.last.isoformat(),
                                "tier": s.tier,
                                "term": s.term,
                                "trial": s.trial,
                            }
                            for s in billed
                        ],
                        "computed_from": {
                            "billable_devices": [ids[int(d)] for d in devices],
                            "frames": frames,
                            "attainment_exact": None
                            if sla.attainment is None
                            else str(sla.attainment),
                            "up": sla.up,
                            "down": sla.down,
                            "excluded": sla.excluded,
                            "blocks_complete_until_ns": cut_ns,
                        },
                    }
                    table.put_invoice(txn, issue_year, seq, tenant.id, record)
                    issued.append(record)
                    if pause_s and len(issued) == 1:
                        print(f"close-month: paused after {number}", file=sys.stderr, flush=True)
                        time.sleep(pause_s)
                    state = subscriptions.state_on(
                        subscription, date(year, month, subscriptions.days_in_month(year, month))
                    )
                    mrr = month_end_mrr(subscription, tiers, year, month, len(devices))
                    table.put_mrr(
                        txn,
                        tenant.id,
                        year,
                        month,
                        {
                            "mrr": mrr,
                            "currency": tenant.currency,
                            "devices": len(devices),
                            "tier": None if state is None else state.tier,
                            "term": None if state is None else state.term,
                        },
                    )
                if end_ns > tenant.closed_before_ns:
                    tenant.closed_before_ns = end_ns
                    txn.put(
                        TENANT_KEY.pack(tenant.id), tenant.to_record(), db=self.slab.db[b"tenants"]
                    )
            table.put_closed(
                txn,
                year,
                month,
                {
                    "closed_ns": now_ns,
                    "prefix": prefix,
                    "numbers": [r["number"] for r in issued],
                },
            )
            self.tenant_table.bump_changes(txn)
            return issued

        issued = self.slab.write(work)
        self.refresh_tenants()  # the new cuts, in this process's tenants
        return issued

    def invoices(self, tenant_id: int) -> list[dict[str, Any]]:
        """The tenant's issued invoices, in issue order."""
        self.tenant(tenant_id)
        with self.slab.txn() as txn:
            return self.billing_table.tenant_invoices(txn, tenant_id)

    def invoice(self, number: str) -> dict[str, Any]:
        """The issued invoice of this number; a KeyError if there is none."""
        parts = number.rsplit("-", 2)
        if len(parts) != 3 or not (parts[1].isdigit() and parts[2].isdigit()):
            raise KeyError(number)
        year, seq = int(parts[1]), int(parts[2])
        if not (0 <= year <= 0xFFFF and 0 <= seq < 2**32):
            raise KeyError(number)
        with self.slab.txn() as txn:
            found = self.billing_table.invoice_at(txn, year, seq)
        if found is None or found["number"] != number:
            raise KeyError(number)
        return found

    def month_invoices(self, year: int, month: int) -> list[dict[str, Any]]:
        """The invoices the close of ``year``-``month`` issued, in issue order ([] when the
        month is not closed, or closed with none)."""
        with self.slab.txn() as txn:
            closed = self.billing_table.closed(txn, year, month)
            if closed is None:
                return []
            out = []
            for number in closed["numbers"]:
                _, y, n = number.rsplit("-", 2)
                found = self.billing_table.invoice_at(txn, int(y), int(n))
                if found is not None:
                    out.append(found)
            return out

    def closed_months(self) -> dict[str, dict[str, Any]]:
        """Every closed month (``"YYYY-MM"``) with its close: closed_ns, prefix, numbers."""
        with self.slab.txn() as txn:
            return dict(self.billing_table.closed_months(txn))

    def kept_mrr(self, tenant_id: int) -> TenantMonths:
        """The tenant's month-end MRR and billable devices kept with its closed months (a
        month absent: MRR 0), for :mod:`core.billing.revenue`'s portfolio figures."""
        tenant = self.tenant(tenant_id)
        with self.slab.txn() as txn:
            kept = self.billing_table.kept_mrr(txn, tenant_id)
        return TenantMonths(
            tenant.name,
            tenant.currency,
            {key: value["mrr"] for key, value in kept.items()},
            {key: value["devices"] for key, value in kept.items()},
        )

    # --- dashboard users ----------------------------------------------------------------------

    def add_user(
        self,
        email: str,
        password: str,
        *,
        tenant_id: int | None = None,
        role: str = "viewer",
        now_ns: int | None = None,
    ) -> User:
        """A new dashboard user: staff (``tenant_id`` None) or a tenant's viewer or admin.
        The password is kept only as its argon2id hash."""
        email = email_of(email)
        if tenant_id is not None:
            if role not in ROLES:
                raise ValueError(f"a tenant user's role is one of {', '.join(ROLES)}")
            if tenant_id not in self.tenants:
                raise UnknownTenant(tenant_id)
        role = "staff" if tenant_id is None else role
        password_hash = hash_password(password)  # slow: before the write, not inside it

        def work(txn: lmdb.Transaction) -> User:
            if self.user_table.by_email(txn, email) is not None:
                raise ValueError(f"a user {email} exists")
            user = User(
                self.user_table.next_id(txn),
                email,
                tenant_id,
                role,
                password_hash,
                created_ns=time.time_ns() if now_ns is None else now_ns,
            )
            self.user_table.put(txn, user)
            return user

        return self.slab.write(work)

    def users(self) -> list[User]:
        with self.slab.txn() as txn:
            return self.user_table.all(txn)

    def user(self, email: str) -> User:
        with self.slab.txn() as txn:
            found = self.user_table.by_email(txn, email_of(email))
        if found is None:
            raise KeyError(email)
        return found

    def change_user(
        self, email: str, *, disabled: bool | None = None, password: str | None = None
    ) -> User:
        """Disable or enable a user, or give it a new password (which also lifts a lockout);
        either ends its sessions."""
        password_hash = None if password is None else hash_password(password)
        email = email_of(email)

        def work(txn: lmdb.Transaction) -> User:
            user = self.user_table.by_email(txn, email)
            if user is None:
                raise KeyError(email)
            if disabled is not None:
                user.disabled = disabled
            if password_hash is not None:
                user.password_hash, user.failures, user.locked_until_ns = password_hash, 0, 0
            user.epoch += 1
            self.user_table.put(txn, user)
            return user

        return self.slab.write(work)

    def sign_in_user(self, email: str, password: str, now_ns: int) -> User:
        """The user behind this e-mail and password, its failures reset; else
        :class:`SignInFailed`, the failure counted (LOCK_AFTER in a row lock it out)."""
        try:
            user = self.user(email)
        except (KeyError, ValueError):
            raise SignInFailed("unknown e-mail or wrong password") from None
        if user.disabled or user.locked_until_ns > now_ns:
            raise SignInFailed("unknown e-mail or wrong password")
        good = password_matches(user.password_hash, password)

        def work(txn: lmdb.Transaction) -> User:
            stored = self.user_table.by_email(txn, user.email)
            assert stored is not None
            if good:
                stored.failures, stored.locked_until_ns = 0, 0
                changed = stored
            else:
                changed = stored.after_failure(now_ns)
            self.user_table.put(txn, changed)
            return changed

        changed = self.slab.write(work)
        if not good:
            raise SignInFailed("unknown e-mail or wrong password")
        return changed

    # --- ingest ----------------------------------------------------------------------------

    def commit(
        self, group: list[tuple[int, Batch]], now_ns: int | None = None
    ) -> list[CommitResult]:
        """Durably commit a group of decoded batches in one transaction, then apply them.

        Returns one result per batch, in order; a batch whose ``(gateway, seq)`` was accepted
        within the dedupe window (or earlier in the same group) is a duplicate: nothing of it
        is applied and its result repeats the counts first acknowledged. The devices a batch
        brings are created here (``admit_new_devices``), so a duplicate, or a group whose
        transaction fails, creates none; frames of new devices over the tenant's device cap
        are rejected here too.
        """
        with self.device_table.admission:
            return self._commit(group, time.time_ns() if now_ns is None else now_ns)

    def _commit(self, group: list[tuple[int, Batch]], now_ns: int) -> list[CommitResult]:
        log, devices = self.log_table, self.device_table
        new_gateways: dict[tuple[int, str], int] = {}
        persisted: dict[int, Persisted] = {}
        max_seq: dict[tuple[int, int], int] = {}
        new_devices: dict[int, dict[str, int]] = {}  # per tenant: id -> index it will take
        admitted: list[Batch | None] = []  # each batch with final device indexes
        lsn = [0]  # the log's last record once the group commits
        firmware: dict[int, dict[int, tuple[int, int]]] = {}  # per tenant: changes seen

        def work(txn: lmdb.Transaction) -> list[CommitResult]:
            new_gateways.clear()
            max_seq.clear()
            new_devices.clear()
            admitted.clear()
            firmware.clear()
            results: list[CommitResult] = []
            seen: dict[bytes, CommitResult] = {}
            quarters: dict[int, dict[int, int]] = {}  # per tenant: frames per quarter hour
            cuts = self._stored_cuts(txn)
            record: list[bytes] = []  # the group's accepted frames: one log record
            for tenant_id, batch in group:
                dedupe = None  # (key, gateway id, seq) of a batch with a seq
                if batch.seq is not None:
                    gw = devices.gateway_id(txn, tenant_id, batch.gateway, new_gateways)
                    key = DEDUPE_KEY.pack(tenant_id, gw, batch.seq)
                    dedupe = (key, gw, batch.seq)
                    top = max_seq.get((tenant_id, gw))
                    if top is None:
                        top = max_seq[(tenant_id, gw)] = log.stored_max_seq(txn, tenant_id, gw)
                    earlier = seen.get(key)
                    if earlier is None and batch.seq <= top:
                        earlier = log.dedupe_hit(txn, key, now_ns)
                    if earlier is not None:
                        results.append(
                            CommitResult(
                                earlier.accepted,
                                earlier.rejected,
                                earlier.warnings,
                                earlier.errors,
                                duplicate=True,
                            )
                        )
                        admitted.append(None)
                        continue
                cut = cuts.get(tenant_id, 0)
                if cut and batch.accepted and min(batch.quarter_counts()) * QUARTER_NS < cut:
                    # decoded before a close (by another process) that this commit's
                    # transaction sees: judged again against the stored cut
                    batch = reject_before(batch, cut)
                pending = new_devices.setdefault(tenant_id, {})
                known = len(pending)
                batch = admit_new_devices(self.rollups[tenant_id], batch, pending)
                if len(pending) > known:  # devices this batch brings: it names their site
                    gw = devices.gateway_id(txn, tenant_id, batch.gateway, new_gateways)
                    first = {dev: gw for dev in list(pending.values())[known:]}
                    self.site_table.record_first_gateways(txn, tenant_id, first)
                if batch.accepted:
                    self._firmware_changes(txn, tenant_id, batch, firmware)
                result = CommitResult(batch.accepted, batch.rejected, batch.warnings, batch.errors)
                if dedupe is not None:
                    key, gw, seq = dedupe
                    seen[key] = result
                    max_seq[(tenant_id, gw)] = max(max_seq[(tenant_id, gw)], seq)
                    log.remember(txn, tenant_id, gw, seq, result, now_ns)
                if batch.accepted:
                    record += log.record(tenant_id, batch)
                    counts = quarters.setdefault(tenant_id, {})
                    for quarter, n in batch.quarter_counts().items():
                        counts[quarter] = counts.get(quarter, 0) + n
                results.append(result)
                admitted.append(batch)
            lsn[0] = log.append(txn, record)
            for tenant_id, counts in quarters.items():
                self.frame_table.add(txn, tenant_id, counts)
            for tenant_id in {tenant_id for tenant_id, _ in group}:
                persisted[tenant_id] = self.device_table.persist_ids(
                    txn, tenant_id, list(new_devices.get(tenant_id, ()))
                )
            return results

        results = self.slab.write(work)
        log.lsn = lsn[0]
        log.max_seq.update(max_seq)
        devices.gateways.update(new_gateways)
        for tenant_id, new in new_devices.items():
            rollup = self.rollups[tenant_id]
            for device_id, dev in new.items():
                if rollup.add_device(device_id) != dev:
                    raise StoreError(f"device {device_id!r} was interned outside a commit")
        for tenant_id, written in persisted.items():
            devices.ids_persisted(tenant_id, written)
        for tenant_id, changes in firmware.items():
            self.firmware_now[tenant_id].apply(changes)
        for (tenant_id, _), batch in zip(group, admitted, strict=True):
            if batch is None:
                continue
            if batch.accepted:
                self.rollups[tenant_id].apply(batch)
            seen = self.gateway_seen.setdefault(tenant_id, {})
            last = seen.get(batch.gateway)
            if last is not None and now_ns - last >= self.tenants[tenant_id].heartbeat_s * NS_PER_S:
                self.gateway_resumed.setdefault(tenant_id, {})[batch.gateway] = now_ns
            seen[batch.gateway] = now_ns
        return results

    def _stored_cuts(self, txn: lmdb.Transaction) -> dict[int, int]:
        """Each tenant's ``closed_before_ns`` as stored, read in the commit's transaction: a
        month closed by another process (the CLI beside the server) binds every commit after
        it, whatever the cut the batch was decoded with. One read of the ``tenant_changes``
        counter per group; the records only when it moved."""
        changes = self.tenant_table.changes(txn)
        if changes != self._cuts_seen:
            cuts = {}
            for key, value in txn.cursor(db=self.slab.db[b"tenants"]):
                tenant_id = TENANT_KEY.unpack(key)[0]
                cuts[tenant_id] = Tenant.from_record(tenant_id, bytes(value)).closed_before_ns
                known = self.tenants.get(tenant_id)
                if known is not None and cuts[tenant_id] > known.closed_before_ns:
                    known.closed_before_ns = cuts[tenant_id]  # later decodes reject them early
            self._cuts, self._cuts_seen = cuts, changes
        return self._cuts

    def _firmware_changes(
        self,
        txn: lmdb.Transaction,
        tenant_id: int,
        batch: Batch,
        firmware: dict[int, dict[int, tuple[int, int]]],
    ) -> None:
        """Date the firmware changes of a batch's accepted frames into ``firmware_history``."""
        pending = firmware.setdefault(tenant_id, {})
        changes = self.firmware_now[tenant_id].diff(batch.dev, batch.ts, batch.fw, pending)
        if changes:
            names = self.rollups[tenant_id].firmware_ids()
            for dev, at_ns, fw in changes:
                self.lifecycle_table.add_firmware(txn, tenant_id, dev, at_ns, names[fw - 1])

    def ingest(self, tenant_id: int, body: bytes, now_ns: int | None = None) -> CommitResult:
        """Decode, commit and apply one batch: the synchronous path (tests, tools, demo)."""
        now_ns = time.time_ns() if now_ns is None else now_ns
        closed = self.tenants[tenant_id].closed_before_ns
        batch = ingest.decode(self.rollups[tenant_id], body, now_ns, closed_before_ns=closed)
        return self.commit([(tenant_id, batch)], now_ns)[0]

    # --- checkpoints -----------------------------------------------------------------------

    def blocks_complete_until_ns(self) -> int:
        """Wall-clock time up to which the day blocks hold every committed frame: the last
        checkpoint's cut. Frames committed since are in the log and the live state only, so
        queries over the blocks treat later slots as not yet known (not as down). Read from
        the store each time, so a reader in another process follows the writer's checkpoints.
        """
        return self.checkpoint_table.complete_until_ns()

    @property
    def log_records(self) -> int:
        return self.log_table.records

    def checkpoint(self, now_ns: int | None = None) -> int:
        """Merge the live state into the day blocks and truncate the log; returns the number
        of device-days written. Also forgets dedupe keys older than the window. ``now_ns``
        (default: the clock) is the checkpoint's cut and the dedupe window's end.

        The three steps can run apart (the server's writer does): :meth:`drain_checkpoint`
        between commits, :meth:`prepare_checkpoint` in another thread while commits go on,
        :meth:`write_checkpoint` in one short write transaction.
        """
        now_ns = time.time_ns() if now_ns is None else now_ns
        drained = self.drain_checkpoint(now_ns)
        return self.write_checkpoint(self.prepare_checkpoint(drained), now_ns)

    def drain_checkpoint(self, now_ns: int) -> Drained:
        """Take the live state of every tenant, with the last log record it includes; the
        cut is at ``now_ns``, a time by which all that was applied had been committed.

        Call it between commits (in the writer thread): every batch committed up to ``lsn``
        has been applied, and none after it.
        """
        # a copy: the event loop may pick up a new tenant (``refresh_tenants``) meanwhile
        rollups = list(self.rollups.items())
        deltas: dict[int, list[DayDelta]] = {}
        try:
            for tenant_id, rollup in rollups:
                deltas[tenant_id] = rollup.drain()
        except BaseException:
            # the tenants drained so far get their state back from the log (a rollup whose
            # drain fails keeps its own)
            self._replay_log(upto=self.log_table.lsn, tenants=set(deltas))
            raise
        return Drained(self.log_table.lsn, {t: d for t, d in deltas.items() if d}, now_ns)

    def prepare_checkpoint(self, drained: Drained) -> Prepared:
        """Merge drained days with the stored blocks and encode them (no write; any thread)."""
        table = self.checkpoint_table
        try:
            puts: list[tuple[bytes, bytes, bytes]] = []
            written = 0
            devstates = {}
            with self.slab.txn() as txn:
                for tenant_id, deltas in drained.deltas.items():
                    rollup = self.rollups[tenant_id]
                    fw_rank = rollup.fw_rank()
                    for delta in deltas:
                        puts.extend(
                            table.merge_day(txn, tenant_id, delta, rollup.slots_per_day, fw_rank)
                        )
                        written += len(delta.dev)
                    devstates[tenant_id] = table.merged_devstate(
                        txn, tenant_id, deltas, rollup.n_devices, fw_rank
                    )
            return Prepared(drained, puts, written, devstates)
        except BaseException:
            self._restore(drained)
            raise

    def write_checkpoint(self, prepared: Prepared, now_ns: int | None = None) -> int:
        """Write prepared blocks, fold the days into ``devstate``, delete the log records
        they came from; one transaction. On failure the live state is rebuilt from the log."""
        now_ns = time.time_ns() if now_ns is None else now_ns
        drained = prepared.drained
        table = self.checkpoint_table

        def work(txn: lmdb.Transaction) -> int:
            table.put(txn, prepared.puts)
            for tenant_id, deltas in drained.deltas.items():
                seen, state = prepared.devstates[tenant_id]
                rollup = self.rollups[tenant_id]
                if table.raw_devstate(txn, tenant_id) != seen:
                    # written since it was prepared (a device registered): merge it again
                    seen, state = table.merged_devstate(
                        txn, tenant_id, deltas, rollup.n_devices, rollup.fw_rank()
                    )
                n = rollup.n_devices
                if len(state) < n:  # devices interned since
                    state = np.concatenate((state, empty_devstate(n - len(state))))
                table.put_devstate(txn, tenant_id, state)
            self.log_table.truncate(txn, drained.lsn)
            table.record_cut(txn, drained.lsn, drained.at_ns)
            self.log_table.expire_dedupe(txn, now_ns)
            return prepared.written

        try:
            written = self.slab.write(work)
        except BaseException:
            self._restore(drained)
            raise
        self.replayed_records = 0
        self.clear_stale_readers()
        return written

    def _restore(self, drained: Drained) -> None:
        """Put drained state back: it is still in the log, up to ``drained.lsn``."""
        self._replay_log(upto=drained.lsn)

    def merge_days(self, tenant_id: int, deltas: list[DayDelta]) -> int:
        """Merge day deltas (as ``Rollup.drain`` makes them) into the stored blocks in one
        transaction; returns the device-days written. Tools use it to import history."""
        rollup = self.rollups[tenant_id]
        table = self.checkpoint_table

        def work(txn: lmdb.Transaction) -> int:
            fw_rank = rollup.fw_rank()
            state = table.devstate(txn, tenant_id, rollup.n_devices)
            for delta in deltas:
                table.put(
                    txn, table.merge_day(txn, tenant_id, delta, rollup.slots_per_day, fw_rank)
                )
                merge_devstate(state, delta, fw_rank)
            table.put_devstate(txn, tenant_id, state)
            return sum(len(delta.dev) for delta in deltas)

        return self.slab.write(work)

    def map_used(self) -> float:
        """The share of the LMDB map in use (it grows when full)."""
        return self.slab.map_used()

    def clear_stale_readers(self) -> int:
        """Free the reader slots of processes that died holding a read transaction (a killed
        dashboard, say); until then LMDB cannot reuse the pages their snapshot pins, and the
        file grows. Returns how many were cleared."""
        return self.slab.clear_stale_readers()

    # --- reading ---------------------------------------------------------------------------

    def day_blocks(
        self, tenant_id: int, first_day: int, last_day: int
    ) -> Iterator[tuple[int, BitmapBlock, npt.NDArray[np.void]]]:
        """Stored day blocks of a tenant for days ``first_day..last_day`` (missing ones are
        skipped), as of the last checkpoint."""
        return self.checkpoint_table.day_blocks(tenant_id, first_day, last_day)

    def day_stats(
        self, tenant_id: int, first_day: int, last_day: int
    ) -> Iterator[tuple[int, npt.NDArray[np.void]]]:
        """Stored stats blocks of days ``first_day..last_day``, as of the last checkpoint."""
        return self.checkpoint_table.day_stats(tenant_id, first_day, last_day)

    def raw_day(self, tenant_id: int, day: int) -> tuple[bytes | None, bytes | None]:
        """The stored bytes of one day's bitmap and stats blocks (for tests and tools)."""
        return self.checkpoint_table.raw_day(tenant_id, day)

    def stored_days(self, tenant_id: int) -> list[int]:
        return self.checkpoint_table.stored_days(tenant_id)

    # --- webhooks and events -------------------------------------------------------------------

    def add_endpoint(
        self,
        tenant_id: int,
        url: str,
        events: Sequence[str] = ("*",),
        description: str = "",
        created_by: str = "",
    ) -> tuple[str, Endpoint]:
        """A new webhook endpoint of the tenant for the events its patterns match (``"*"``,
        ``"incident.*"``, an exact type); returns its secret (``whsec_...``: shown once, it
        signs every attempt) and its record. A ValueError for a bad URL or pattern."""
        if tenant_id not in self.tenants:
            raise UnknownTenant(tenant_id)
        if isinstance(events, str):
            raise ValueError("events must be a list of patterns, not one string")
        patterns = check_patterns(list(events))
        url, description = check_url(url), check_description(description)
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        now = time.time_ns()

        def work(txn: lmdb.Transaction) -> Endpoint:
            endpoint_id = self.outbox_table.next_id(txn, b"endpoint_seq")
            endpoint = Endpoint(
                endpoint_id, tenant_id, url, secret, patterns, description, now, created_by
            )
            self.outbox_table.put_endpoint(txn, endpoint)
            return endpoint

        return secret, self.slab.write(work)

    def endpoints(self, tenant_id: int) -> list[Endpoint]:
        """The tenant's endpoints, by id (their ``to_json`` leaves the secret out)."""
        with self.slab.txn() as txn:
            return self.outbox_table.endpoints(txn, tenant_id)

    def endpoint(self, tenant_id: int, endpoint_id: int) -> Endpoint:
        """One endpoint of the tenant; a KeyError if it has none of that id."""
        with self.slab.txn() as txn:
            found = self.outbox_table.endpoint(txn, tenant_id, endpoint_id)
        if found is None:
            raise KeyError(endpoint_id)
        return found

    def delete_endpoint(self, tenant_id: int, endpoint_id: int) -> None:
        """Delete an endpoint (a KeyError if the tenant has none of that id); its pending
        deliveries fail with the error "endpoint deleted", in the same transaction."""
        table = self.outbox_table

        def work(txn: lmdb.Transaction) -> None:
            if not table.delete_endpoint(txn, tenant_id, endpoint_id):
                raise KeyError(endpoint_id)
            for delivery in table.pending(txn):
                if (delivery.tenant_id, delivery.endpoint_id) == (tenant_id, endpoint_id):
                    delivery.state, delivery.next_ns = "failed", 0
                    delivery.error = "endpoint deleted"
                    table.put_delivery(txn, delivery)

        self.slab.write(work)

    def emit_in(
        self,
        txn: lmdb.Transaction,
        tenant_id: int,
        events: Sequence[tuple[str, dict[str, Any]]],
        now_ns: int,
        *,
        endpoint_id: int | None = None,
    ) -> list[Event]:
        """Store events of the tenant, each ``(type, data)``, in the caller's write
        transaction ``txn``, so that they commit (or not) with whatever raised them; each gets
        a pending delivery, due at ``now_ns``, to every endpoint whose filter matches its type
        (not disabled). ``endpoint_id`` sends them to that endpoint only, whatever its filter
        (a KeyError if the tenant has none of that id). A ValueError for a bad type or data
        that is not a JSON object: the caller's transaction should then be let fail.

        Call it in the writer thread (it writes), then wake the server's deliverer."""
        table = self.outbox_table
        tenant = self.tenant(tenant_id)
        if endpoint_id is None:
            targets = [e for e in table.endpoints(txn, tenant_id) if not e.disabled]
        else:
            found = table.endpoint(txn, tenant_id, endpoint_id)
            if found is None:
                raise KeyError(endpoint_id)
            targets = [found]
        stored = []
        for event_type, data in events:
            event_id = table.next_id(txn, b"event_seq")
            body = event_body(event_id, event_type, now_ns, tenant.name, data)
            event = Event(event_id, tenant_id, event_type, now_ns, body)
            for endpoint in targets:
                if endpoint_id is None and not matches(endpoint.events, event_type):
                    continue
                delivery_id = table.next_id(txn, b"delivery_seq")
                delivery = Delivery(delivery_id, tenant_id, endpoint.id, event_id, next_ns=now_ns)
                table.put_delivery(txn, delivery)
                event.delivery_ids.append(delivery_id)
                event.deliveries.append(delivery)
            table.put_event(txn, event)
            stored.append(event)
        return stored

    def emit(
        self,
        tenant_id: int,
        events: Sequence[tuple[str, dict[str, Any]]],
        now_ns: int,
        *,
        endpoint_id: int | None = None,
    ) -> list[Event]:
        """:meth:`emit_in` in a write transaction of its own."""
        return self.slab.write(
            lambda txn: self.emit_in(txn, tenant_id, events, now_ns, endpoint_id=endpoint_id)
        )

    def events(
        self,
        tenant_id: int,
        start_ns: int = 0,
        end_ns: int = 2**63 - 1,
        types: Sequence[str] | None = None,
        limit: int = 100,
    ) -> list[Event]:
        """The alert log: the tenant's events created in ``[start_ns, end_ns)`` whose type
        one of ``types`` (patterns, as an endpoint's filter) matches, newest first, at most
        ``limit``, each with its deliveries and their attempts."""
        patterns = None if types is None else check_patterns(list(types))
        table = self.outbox_table
        out: list[Event] = []
        with self.slab.txn() as txn:
            for event in table.events_newest_first(txn, tenant_id):
                if len(out) >= limit:
                    break
                if not start_ns <= event.created_ns < end_ns:
                    continue
                if patterns is not None and not matches(patterns, event.type):
                    continue
                event.deliveries = [
                    d for d in (table.delivery(txn, i) for i in event.delivery_ids) if d is not None
                ]
                out.append(event)
        return out

    def pending_deliveries(self) -> list[Delivery]:
        """Every tenant's deliveries still pending, oldest first (the deliverer's work)."""
        with self.slab.txn() as txn:
            return self.outbox_table.pending(txn)

    def outgoing(self, delivery_id: int) -> tuple[Delivery, Endpoint | None, bytes] | None:
        """What an attempt of a delivery sends: the delivery as stored, its endpoint (None if
        deleted) and the event's body; None if there is no such delivery."""
        table = self.outbox_table
        with self.slab.txn() as txn:
            delivery = table.delivery(txn, delivery_id)
            if delivery is None:
                return None
            endpoint = table.endpoint(txn, delivery.tenant_id, delivery.endpoint_id)
            event = table.event(txn, delivery.tenant_id, delivery.event_id)
        return delivery, endpoint, b"" if event is None else event.body

    def record_attempt(
        self, delivery_id: int, attempt: Attempt, state: str, next_ns: int
    ) -> Delivery:
        """Add an attempt to a delivery and set its state (a KeyError if there is none): still
        pending (due again at ``next_ns``), delivered, or failed (the attempt's error says
        why). A delivery no longer pending (its endpoint was deleted during the attempt) keeps
        its state; the attempt is recorded all the same."""
        if state not in STATES:
            raise ValueError(f"state must be one of {', '.join(STATES)}")
        table = self.outbox_table

        def work(txn: lmdb.Transaction) -> Delivery:
            delivery = table.delivery(txn, delivery_id)
            if delivery is None:
                raise KeyError(delivery_id)
            delivery.attempts.append(attempt)
            if delivery.state == "pending":
                delivery.state = state
                delivery.next_ns = next_ns if state == "pending" else 0
                if state == "failed":
                    delivery.error = attempt.error or "failed"
            table.put_delivery(txn, delivery)
            return delivery

        return self.slab.write(work)
