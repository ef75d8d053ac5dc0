"""The LMDB store: tenants, devices, the frame log, dedupe keys and per-day blocks.

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
loses nothing that was committed, and restart costs at most one checkpoint interval of
replay. Keys are fixed-width big-endian, so range scans come back in order.

One process opens a store path once, and never carries it across ``fork()``. Every
transaction is opened through a :class:`ResizeLock`, so that growing the map never pulls it
from under another thread's transaction, and a map grown by another process is adopted.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import lmdb
import msgpack
import numpy as np
import numpy.typing as npt

from core.batch import Batch, admit_new_devices
from core.dayblock import (
    MS_PER_DAY,
    STATS_DTYPE,
    BitmapBlock,
    DayDelta,
    decode_bitmaps,
    empty_stats,
    merge_bitmaps,
    merge_stats,
)
from core.rollup import Rollup, RollupPy

T = TypeVar("T")
V = TypeVar("V", bytes, memoryview)

SCHEMA_VERSION = 1
NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_TENANT_DAY = struct.Struct(">II")
_TENANT_DEV = struct.Struct(">II")
_DEDUPE = struct.Struct(">IIQ")
_AGE = struct.Struct(">QIIQ")
_LOG_HEAD = struct.Struct(">I")
_LOG_COUNT = struct.Struct("<I")  # frames in a log entry's columns (little-endian)

#: Per-device state of a tenant, dense by device index: lifecycle settings and the merged
#: "latest" values. ``*_ms`` are Unix milliseconds, -1 for none.
DEVSTATE_DTYPE = np.dtype(
    [
        ("first_ms", "<i8"),  # earliest accepted frame
        ("last_ms", "<i8"),  # latest accepted frame
        ("batt_ms", "<i8"),
        ("rssi_ms", "<i8"),
        ("fw_ms", "<i8"),
        ("registered_ms", "<i8"),  # activation given at registration, -1 none
        ("retired_ms", "<i8"),  # retirement, -1 none
        ("heartbeat_s", "<u4"),  # 0: the tenant's default
        ("batt_last", "<i2"),
        ("rssi_last", "<i2"),
        ("fw_last", "<u2"),
        ("last_status", "u1"),
        ("pad", "u1"),
    ]
)


def empty_devstate(n: int) -> npt.NDArray[np.void]:
    out = np.zeros(n, DEVSTATE_DTYPE)
    for name in ("first_ms", "last_ms", "batt_ms", "rssi_ms", "fw_ms", "registered_ms"):
        out[name] = -1
    out["retired_ms"] = -1
    out["batt_last"] = -1
    out["rssi_last"] = 1
    return out


class StoreError(Exception):
    """The store could not commit; nothing of the group was stored."""


class UnknownTenant(KeyError):
    pass


@dataclass
class Tenant:
    id: int
    name: str
    plan: str = "standard"
    slot_s: int = 60
    heartbeat_s: int = 60
    device_cap: int = 0
    closed_before_ns: int = 0
    settings: dict[str, Any] = field(default_factory=dict)

    def to_record(self) -> bytes:
        return msgpack.packb(
            {
                "name": self.name,
                "plan": self.plan,
                "slot_s": self.slot_s,
                "heartbeat_s": self.heartbeat_s,
                "device_cap": self.device_cap,
                "closed_before_ns": self.closed_before_ns,
                "settings": self.settings,
            }
        )

    @classmethod
    def from_record(cls, tenant_id: int, data: bytes) -> Tenant:
        return cls(id=tenant_id, **msgpack.unpackb(data))


TOKEN_SCOPES = ("ingest", "read", "staff")


@dataclass
class Token:
    """An API credential. Only the SHA-256 of the secret is stored, with a short prefix of
    the secret for people to recognise it by."""

    id: int
    tenant_id: int | None
    scope: str  # "ingest", "read" (one tenant) or "staff" (every tenant)
    prefix: str
    digest: bytes
    created_ns: int
    revoked_ns: int = 0

    def may_read(self, tenant_id: int) -> bool:
        """Staff read every tenant; a tenant's read token reads only that tenant; an ingest
        token reads nothing. The read API and the dashboard both ask this."""
        return self.scope == "staff" or (self.scope == "read" and self.tenant_id == tenant_id)

    def to_record(self) -> bytes:
        return msgpack.packb(
            [self.tenant_id, self.scope, self.prefix, self.digest, self.created_ns, self.revoked_ns]
        )

    @classmethod
    def from_record(cls, token_id: int, data: bytes) -> Token:
        return cls(token_id, *msgpack.unpackb(data))


@dataclass
class Drained:
    """Live state taken for a checkpoint: it covers log records up to ``lsn``, all that was
    committed by ``at_ns`` (wall clock)."""

    lsn: int
    deltas: dict[int, list[DayDelta]]
    at_ns: int = 0


@dataclass
class Prepared:
    """A checkpoint ready to write: (db, key, value) puts of merged day blocks, and per tenant
    the ``devstate`` value it was merged from with the merged rows."""

    drained: Drained
    puts: list[tuple[bytes, bytes, bytes]]
    written: int
    devstates: dict[int, tuple[bytes | None, npt.NDArray[np.void]]] = field(default_factory=dict)


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


class ResizeLock:
    """Transactions share the LMDB map; resizing it is exclusive.

    LMDB may remap the file only while no transaction of the process is open
    (``mdb_env_set_mapsize``), and neither LMDB nor py-lmdb checks that; yet the server reads
    from several threads while its writer grows the map. So every transaction is begun by
    :meth:`txn`, and :meth:`resize` waits until none is open, holding new ones back meanwhile.
    A thread may nest transactions: one that already holds one is not held back, so it cannot
    deadlock against a waiting resize. A map grown by another process (the CLI beside the
    server, the server beside a reader) makes ``begin`` raise ``MapResizedError``; the new
    size is then adopted the same way and the transaction begun again.
    """

    def __init__(self, env: lmdb.Environment) -> None:
        self._env = env
        self._cond = threading.Condition(threading.Lock())
        self._open = 0  # transactions open in this process
        self._resizing = False
        self._held = threading.local()  # .depth: transactions open in this thread

    def _depth(self) -> int:
        return int(getattr(self._held, "depth", 0))

    def _leave(self, depth: int) -> None:
        self._held.depth = depth
        with self._cond:
            self._open -= 1
            if self._open == 0:
                self._cond.notify_all()

    def txn(self, *, write: bool = False) -> AbstractContextManager[lmdb.Transaction[bytes]]:
        """``env.begin(write=write)`` as a context: committed on success (a write), aborted on
        an exception."""
        return self._begin(lambda: self._env.begin(write=write))

    def view(self) -> AbstractContextManager[lmdb.Transaction[memoryview]]:
        """A read transaction whose values are views into the map, valid inside it only."""
        return self._begin(lambda: self._env.begin(buffers=True))

    @contextmanager
    def _begin(self, begin: Callable[[], lmdb.Transaction[V]]) -> Iterator[lmdb.Transaction[V]]:
        depth = self._depth()
        while True:
            with self._cond:
                while self._resizing and depth == 0:
                    self._cond.wait()
                self._open += 1
            self._held.depth = depth + 1
            try:
                txn = begin()
            except lmdb.MapResizedError:
                self._leave(depth)
                self.resize(grow=False)
                continue
            except BaseException:
                self._leave(depth)
                raise
            break
        try:
            with txn:
                yield txn
        finally:
            self._leave(depth)

    def resize(self, *, grow: bool) -> None:
        """Double the map (``grow``), or adopt the size another process gave it."""
        if self._depth():
            raise StoreError("the LMDB map cannot be resized inside a transaction")
        with self._cond:
            while self._resizing:
                self._cond.wait()
            self._resizing = True
            try:
                while self._open:
                    self._cond.wait()
                self._env.set_mapsize(self._env.info()["map_size"] * 2 if grow else 0)
            finally:
                self._resizing = False
                self._cond.notify_all()


class Store:
    """One LMDB environment holding every tenant; see the module docstring."""

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
    )

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        map_size: int = 64 << 20,
        dedupe_window_s: int = 86_400,
        readonly: bool = False,
        engine: type[RollupPy] | None = None,
    ) -> None:
        self.engine: type[RollupPy] = engine or Rollup
        os.makedirs(path, exist_ok=True)
        self.path = os.fspath(path)
        self.readonly = readonly
        self.dedupe_window_ns = dedupe_window_s * NS_PER_S
        self.env = lmdb.open(
            self.path,
            map_size=map_size,
            max_dbs=len(self.DBS) + 2,
            sync=True,
            metasync=True,
            writemap=False,
            map_async=False,
            readonly=readonly,
            lock=True,
        )
        self._resize = ResizeLock(self.env)
        self._txn = self._resize.txn
        self.db: dict[bytes, Any] = {}
        if readonly:
            for name in self.DBS:
                self.db[name] = self.env.open_db(name, create=False)
        else:
            with self._txn(write=True) as txn:
                for name in self.DBS:
                    self.db[name] = self.env.open_db(name, txn=txn)
                meta = self.db[b"meta"]
                stored = txn.get(b"schema", db=meta)
                if stored is None:
                    txn.put(b"schema", _U32.pack(SCHEMA_VERSION), db=meta)
                    # nothing of a new store is in its day blocks yet, nor missing from them
                    txn.put(b"checkpoint_ns", _U64.pack(time.time_ns()), db=meta)
                elif _U32.unpack(stored)[0] != SCHEMA_VERSION:
                    raise StoreError(f"store schema {_U32.unpack(stored)[0]} is not supported")
        self.tenants: dict[int, Tenant] = {}
        self.rollups: dict[int, RollupPy] = {}
        self._persisted_devices: dict[int, int] = {}
        self._persisted_firmware: dict[int, int] = {}
        self._gateways: dict[tuple[int, str], int] = {}
        self._device_ids: dict[int, list[str]] = {}
        # What the single writer knows without asking LMDB (each read or write releases and
        # retakes the GIL, which costs up to a switch interval when the server is busy): the
        # last log sequence number, and per (tenant, gateway) the highest seq in ``dedupe``, so
        # that a batch with a higher seq (the usual case) is known new without a lookup.
        self._lsn = 0
        # Devices are interned only under this lock: by a commit, which numbers a group's new
        # devices before its transaction and interns them after it, by registration, and in
        # a read-only store by following the writer's ids.
        self._admission = threading.Lock()
        self._max_seq: dict[tuple[int, int], int] = {}
        self._load()

    # --- opening ---------------------------------------------------------------------------

    def _load(self) -> None:
        with self._txn() as txn:
            for key, value in txn.cursor(db=self.db[b"tenants"]):
                tenant = Tenant.from_record(_U32.unpack(key)[0], value)
                self.tenants[tenant.id] = tenant
            for tenant in self.tenants.values():
                self._open_rollup(txn, tenant)
            for key, value in txn.cursor(db=self.db[b"gateway_ids"]):
                tenant_id = _U32.unpack(key[:4])[0]
                self._gateways[(tenant_id, key[4:].decode())] = _U32.unpack(value)[0]
        if not self.readonly:
            with self._txn() as txn:
                cursor = txn.cursor(db=self.db[b"log"])
                last = _U64.unpack(cursor.key())[0] if cursor.last() else 0
                self._lsn = max(last, self._checkpoint_lsn(txn))
            self._replay_log()

    def _open_rollup(self, txn: lmdb.Transaction, tenant: Tenant) -> None:
        rollup = self.engine(tenant.slot_s, tenant.heartbeat_s, tenant.device_cap)
        prefix = _U32.pack(tenant.id)
        ids = [value.decode() for _, value in _prefix_scan(txn, self.db[b"devices"], prefix)]
        for device_id in ids:
            rollup.add_device(device_id)
        for _, value in _prefix_scan(txn, self.db[b"firmware"], prefix):
            rollup.add_firmware(value.decode())
        state = self._devstate(txn, tenant.id, len(ids))
        for dev in np.flatnonzero(state["heartbeat_s"]):
            rollup.set_heartbeat(int(dev), int(state["heartbeat_s"][dev]))
        self.rollups[tenant.id] = rollup
        self._persisted_devices[tenant.id] = rollup.n_devices
        self._persisted_firmware[tenant.id] = rollup.n_firmware
        self._device_ids[tenant.id] = ids

    def _replay_log(self, upto: int | None = None, tenants: set[int] | None = None) -> None:
        """Apply the log (records up to ``upto``, of ``tenants``, if given) to the rollups."""
        with self._txn() as txn:
            for key, value in txn.cursor(db=self.db[b"log"]):
                if upto is not None and _U64.unpack(key)[0] > upto:
                    break
                for tenant_id, batch in _log_entries(value):
                    if tenants is None or tenant_id in tenants:
                        self.rollups[tenant_id].apply(batch)

    def close(self) -> None:
        self.env.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writing with map growth -----------------------------------------------------------

    def _write(self, work: Callable[[lmdb.Transaction], T]) -> T:
        """Run ``work`` in one write transaction; on a full map, grow it and run it again."""
        while True:
            try:
                with self._txn(write=True) as txn:
                    return work(txn)
            except lmdb.MapFullError:
                self._resize.resize(grow=True)
            except lmdb.Error as exc:
                raise StoreError(str(exc)) from exc

    # --- tenants ---------------------------------------------------------------------------

    def add_tenant(
        self,
        name: str,
        *,
        plan: str = "standard",
        slot_s: int = 60,
        heartbeat_s: int = 60,
        device_cap: int = 0,
    ) -> Tenant:
        if not name or len(name.encode()) > 64:
            raise ValueError("tenant name must be 1..64 bytes")
        RollupPy(slot_s, heartbeat_s)  # validates the settings

        def work(txn: lmdb.Transaction) -> Tenant:
            names = self.db[b"tenant_names"]
            if txn.get(name.encode(), db=names) is not None:
                raise ValueError(f"tenant {name!r} exists")
            cursor = txn.cursor(db=self.db[b"tenants"])
            # another process (the CLI beside a running server) may have added tenants
            tenant_id = _U32.unpack(cursor.key())[0] + 1 if cursor.last() else 1
            tenant = Tenant(tenant_id, name, plan, slot_s, heartbeat_s, device_cap)
            txn.put(_U32.pack(tenant_id), tenant.to_record(), db=self.db[b"tenants"])
            txn.put(name.encode(), _U32.pack(tenant_id), db=names)
            return tenant

        tenant = self._write(work)
        self.tenants[tenant.id] = tenant
        with self._txn() as txn:
            self._open_rollup(txn, tenant)
        return tenant

    def refresh_tenants(self) -> None:
        """Pick up tenants added by another process (the CLI beside a running server)."""
        with self._txn() as txn:
            for key, value in txn.cursor(db=self.db[b"tenants"]):
                tenant_id = _U32.unpack(key)[0]
                if tenant_id not in self.tenants:
                    tenant = Tenant.from_record(tenant_id, value)
                    self.tenants[tenant_id] = tenant
                    self._open_rollup(txn, tenant)

    def tenant(self, name_or_id: str | int) -> Tenant:
        if isinstance(name_or_id, int):
            if name_or_id in self.tenants:
                return self.tenants[name_or_id]
        else:
            for tenant in self.tenants.values():
                if tenant.name == name_or_id:
                    return tenant
        raise UnknownTenant(name_or_id)

    def set_closed_before(self, tenant_id: int, closed_before_ns: int) -> None:
        """Refuse frames older than this from now on (month close sets it)."""
        tenant = self.tenants[tenant_id]

        def work(txn: lmdb.Transaction) -> None:
            tenant.closed_before_ns = max(tenant.closed_before_ns, closed_before_ns)
            txn.put(_U32.pack(tenant_id), tenant.to_record(), db=self.db[b"tenants"])

        self._write(work)

    # --- tokens ----------------------------------------------------------------------------

    def add_token(self, tenant_id: int | None, scope: str) -> tuple[str, Token]:
        """Create a token; returns the secret (shown once, stored only as a hash) and its
        record. ``tenant_id`` None with scope "staff" reads every tenant."""
        if scope not in TOKEN_SCOPES:
            raise ValueError(f"scope must be one of {', '.join(TOKEN_SCOPES)}")
        if (scope == "staff") != (tenant_id is None):
            raise ValueError("staff tokens belong to no tenant; others to exactly one")
        if tenant_id is not None and tenant_id not in self.tenants:
            raise UnknownTenant(tenant_id)
        secret = "upt_" + secrets.token_urlsafe(32)
        digest = hashlib.sha256(secret.encode()).digest()

        def work(txn: lmdb.Transaction) -> Token:
            cursor = txn.cursor(db=self.db[b"tokens"])
            token_id = _U32.unpack(cursor.key())[0] + 1 if cursor.last() else 1
            token = Token(token_id, tenant_id, scope, secret[4:12], digest, time.time_ns())
            txn.put(_U32.pack(token_id), token.to_record(), db=self.db[b"tokens"])
            txn.put(digest, _U32.pack(token_id), db=self.db[b"token_hashes"])
            return token

        return secret, self._write(work)

    def revoke_token(self, token_id: int) -> Token:
        def work(txn: lmdb.Transaction) -> Token:
            raw = txn.get(_U32.pack(token_id), db=self.db[b"tokens"])
            if raw is None:
                raise KeyError(f"no token {token_id}")
            token = Token.from_record(token_id, bytes(raw))
            token.revoked_ns = token.revoked_ns or time.time_ns()
            txn.put(_U32.pack(token_id), token.to_record(), db=self.db[b"tokens"])
            return token

        return self._write(work)

    def tokens(self) -> list[Token]:
        with self._txn() as txn:
            return [
                Token.from_record(_U32.unpack(key)[0], bytes(value))
                for key, value in txn.cursor(db=self.db[b"tokens"])
            ]

    def authenticate(self, secret: str) -> Token | None:
        """The live token with this secret, or None (unknown or revoked). Reads the store on
        every call, so a revocation by another process takes effect at once. Secrets are
        ASCII: anything else (HTTP header bytes beyond it arrive as surrogates) matches none."""
        if not secret.isascii():
            return None
        digest = hashlib.sha256(secret.encode()).digest()
        with self._txn() as txn:
            raw_id = txn.get(digest, db=self.db[b"token_hashes"])
            if raw_id is None:
                return None
            raw = txn.get(bytes(raw_id), db=self.db[b"tokens"])
        if raw is None:
            return None
        token = Token.from_record(_U32.unpack(bytes(raw_id))[0], bytes(raw))
        if not hmac.compare_digest(token.digest, digest) or token.revoked_ns:
            return None
        return token

    # --- devices ---------------------------------------------------------------------------

    def device_ids(self, tenant_id: int) -> list[str]:
        """Ids of the tenant's devices, by index. Ids are never removed or renumbered."""
        self._follow_ids(tenant_id)
        return self._device_ids[tenant_id]

    def _follow_ids(self, tenant_id: int) -> None:
        """In a read-only store, pick up the device and firmware ids the writer (another
        process) has stored since: dense, so only those past the ones known are read."""
        if not self.readonly:
            return
        rollup = self.rollups[tenant_id]
        ids = self._device_ids[tenant_id]
        prefix = _U32.pack(tenant_id)
        with self._admission, self._txn() as txn:  # two threads must not add the same id
            start = _TENANT_DEV.pack(tenant_id, len(ids))
            for _, value in _prefix_scan(txn, self.db[b"devices"], prefix, start):
                ids.append(value.decode())
                rollup.add_device(ids[-1])
            start = _TENANT_DEV.pack(tenant_id, rollup.n_firmware + 1)
            for _, value in _prefix_scan(txn, self.db[b"firmware"], prefix, start):
                rollup.add_firmware(value.decode())

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
        with self._admission:
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

        def work(txn: lmdb.Transaction) -> tuple[list[str], int]:
            persisted = self._persist_ids(txn, tenant_id)
            state = self._devstate(txn, tenant_id, rollup.n_devices)
            if activated_ns is not None:
                state["registered_ms"][dev] = activated_ns // NS_PER_MS
            if retired_ns is not None:
                state["retired_ms"][dev] = retired_ns // NS_PER_MS
            if heartbeat_s is not None:
                state["heartbeat_s"][dev] = heartbeat_s
            txn.put(_U32.pack(tenant_id), state.tobytes(), db=self.db[b"devstate"])
            return persisted

        try:
            persisted = self._write(work)
        except BaseException:
            # not stored, so not in force: a replay after a restart would use the stored one
            rollup.set_heartbeat(dev, stored_heartbeat_s)
            raise
        self._ids_persisted(tenant_id, persisted)
        return dev

    def add_devices(self, tenant_id: int, device_ids: list[str]) -> None:
        """Intern many device ids at once (provisioning, tools, benchmarks)."""
        rollup = self.rollups[tenant_id]
        with self._admission:
            for device_id in device_ids:
                if rollup.device_index(device_id) < 0:
                    if rollup.device_cap and rollup.n_devices >= rollup.device_cap:
                        raise ValueError("device cap reached")
                    rollup.add_device(device_id)
            persisted = self._write(lambda txn: self._persist_ids(txn, tenant_id))
            self._ids_persisted(tenant_id, persisted)

    def merge_days(self, tenant_id: int, deltas: list[DayDelta]) -> int:
        """Merge day deltas (as ``Rollup.drain`` makes them) into the stored blocks in one
        transaction; returns the device-days written. Checkpoints use it for live state;
        tools use it to import history."""
        return self._write(lambda txn: self._merge_tenant(txn, tenant_id, deltas))

    def _persist_ids(
        self, txn: lmdb.Transaction, tenant_id: int, admitted: list[str] | None = None
    ) -> tuple[list[str], int]:
        """Write the device ids interned since the last commit and those ``admitted`` by this
        one (to be interned after it, in this order), and the firmware ids interned since the
        last commit: dense, so ranges.

        Decoding threads may intern more firmware while this runs: what was written is
        returned, and only that is marked persisted (:meth:`_ids_persisted`) once the
        transaction commits.
        """
        rollup = self.rollups[tenant_id]
        start = self._persisted_devices[tenant_id]
        start_fw = self._persisted_firmware[tenant_id]
        if rollup.n_devices == start and rollup.n_firmware == start_fw and not admitted:
            return [], 0  # the usual group: no new ids (and no lock taken to find out)
        new_ids = rollup.device_ids(start) + (admitted or [])
        for dev, device_id in enumerate(new_ids, start):
            raw = device_id.encode()
            txn.put(_TENANT_DEV.pack(tenant_id, dev), raw, db=self.db[b"devices"])
            txn.put(_U32.pack(tenant_id) + raw, _U32.pack(dev), db=self.db[b"device_ids"])
        new_fw = rollup.firmware_ids(start_fw)
        for fw, name in enumerate(new_fw, start_fw + 1):
            txn.put(_TENANT_DEV.pack(tenant_id, fw), name.encode(), db=self.db[b"firmware"])
        return new_ids, len(new_fw)

    def _ids_persisted(self, tenant_id: int, persisted: tuple[list[str], int]) -> None:
        new_ids, n_fw = persisted
        self._device_ids[tenant_id].extend(new_ids)
        self._persisted_devices[tenant_id] += len(new_ids)
        self._persisted_firmware[tenant_id] += n_fw

    def _merged_devstate(
        self, txn: lmdb.Transaction, tenant_id: int, deltas: list[DayDelta]
    ) -> tuple[bytes | None, npt.NDArray[np.void]]:
        """The stored ``devstate`` value and its rows with drained days folded in."""
        rollup = self.rollups[tenant_id]
        fw_rank = rollup.fw_rank()
        seen = _raw(txn.get(_U32.pack(tenant_id), db=self.db[b"devstate"]))
        state = self._devstate(txn, tenant_id, rollup.n_devices)
        for delta in deltas:
            _merge_devstate(state, delta, fw_rank)
        return seen, state

    def _devstate(self, txn: lmdb.Transaction, tenant_id: int, n: int) -> npt.NDArray[np.void]:
        raw = txn.get(_U32.pack(tenant_id), db=self.db[b"devstate"])
        stored = np.frombuffer(raw, DEVSTATE_DTYPE) if raw else empty_devstate(0)
        if len(stored) >= n:
            return stored.copy()
        out = empty_devstate(n)
        out[: len(stored)] = stored
        return out

    def devstate(
        self, tenant_id: int, devices: npt.ArrayLike | None = None
    ) -> npt.NDArray[np.void]:
        """Per-device lifecycle and latest values (as of the last checkpoint): dense by index,
        or the rows of ``devices`` (indexes as numpy takes them) only, which reads just those
        rows out of the map instead of copying every device's."""
        n = len(self.device_ids(tenant_id))
        if devices is None:
            with self._txn() as txn:
                return self._devstate(txn, tenant_id, n)[:n]
        idx = np.arange(n)[np.asarray(devices, np.int64)]  # IndexError as for the full array
        out = empty_devstate(len(idx))
        with self._resize.view() as txn:
            raw = txn.get(_U32.pack(tenant_id), db=self.db[b"devstate"])
            if raw is not None:  # a view into the map, valid inside this transaction only
                stored = np.frombuffer(raw, DEVSTATE_DTYPE)
                have = idx < len(stored)
                out[have] = stored[idx[have]]
        return out

    # --- ingest ----------------------------------------------------------------------------

    def decode(
        self, tenant_id: int, body: bytes, now_ns: int | None = None, **limits: int
    ) -> Batch:
        """Decode and judge one batch for a tenant; raises ``BatchError`` if refused whole.

        ``limits`` are ``max_frames``, ``max_future_skew_s`` and ``max_backfill_s``.
        """
        tenant = self.tenants[tenant_id]
        now_ns = time.time_ns() if now_ns is None else now_ns
        batch = self.rollups[tenant_id].decode(
            body, now_ns, closed_before_ns=tenant.closed_before_ns, **limits
        )
        return batch.prepare()

    def _gateway_id(self, txn: lmdb.Transaction, tenant_id: int, name: str) -> int:
        key = (tenant_id, name)
        gw = self._gateways.get(key)
        if gw is None:
            prefix = _U32.pack(tenant_id)
            gw = sum(1 for _ in _prefix_scan(txn, self.db[b"gateways"], prefix)) + 1
            txn.put(_TENANT_DEV.pack(tenant_id, gw), name.encode(), db=self.db[b"gateways"])
            txn.put(prefix + name.encode(), _U32.pack(gw), db=self.db[b"gateway_ids"])
        return gw

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
        with self._admission:
            return self._commit(group, time.time_ns() if now_ns is None else now_ns)

    def _commit(self, group: list[tuple[int, Batch]], now_ns: int) -> list[CommitResult]:
        new_gateways: dict[tuple[int, str], int] = {}
        persisted: dict[int, tuple[list[str], int]] = {}
        max_seq: dict[tuple[int, int], int] = {}
        new_devices: dict[int, dict[str, int]] = {}  # per tenant: id -> index it will take
        admitted: list[Batch | None] = []  # each batch with final device indexes
        lsn = [0]  # the group's log record, if it has one

        def work(txn: lmdb.Transaction) -> list[CommitResult]:
            new_gateways.clear()
            max_seq.clear()
            new_devices.clear()
            admitted.clear()
            results: list[CommitResult] = []
            seen: dict[bytes, CommitResult] = {}
            record: list[bytes] = []  # the group's accepted frames: one log record
            for tenant_id, batch in group:
                dedupe = None  # (key, gateway id, seq) of a batch with a seq
                if batch.seq is not None:
                    gw = self._gateways.get((tenant_id, batch.gateway))
                    if gw is None:
                        gw = new_gateways.get((tenant_id, batch.gateway))
                    if gw is None:
                        gw = self._gateway_id(txn, tenant_id, batch.gateway)
                        new_gateways[(tenant_id, batch.gateway)] = gw
                    key = _DEDUPE.pack(tenant_id, gw, batch.seq)
                    dedupe = (key, gw, batch.seq)
                    top = max_seq.get((tenant_id, gw))
                    if top is None:
                        top = max_seq[(tenant_id, gw)] = self._stored_max_seq(txn, tenant_id, gw)
                    earlier = seen.get(key)
                    if earlier is None and batch.seq <= top:
                        earlier = self._dedupe_hit(txn, key, now_ns)
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
                batch = admit_new_devices(
                    self.rollups[tenant_id], batch, new_devices.setdefault(tenant_id, {})
                )
                result = CommitResult(batch.accepted, batch.rejected, batch.warnings, batch.errors)
                if dedupe is not None:
                    key, gw, seq = dedupe
                    seen[key] = result
                    max_seq[(tenant_id, gw)] = max(max_seq[(tenant_id, gw)], seq)
                    answer = msgpack.packb(
                        [now_ns, result.accepted, result.rejected, result.warnings, result.errors]
                    )
                    txn.put(key, answer, db=self.db[b"dedupe"])
                    txn.put(_AGE.pack(now_ns, tenant_id, gw, seq), b"", db=self.db[b"dedupe_age"])
                if batch.accepted:
                    record += (_LOG_HEAD.pack(tenant_id), batch.columns_bytes())
                results.append(result)
                admitted.append(batch)
            lsn[0] = self._lsn
            if record:
                lsn[0] += 1
                txn.put(_U64.pack(lsn[0]), b"".join(record), db=self.db[b"log"], append=True)
            for tenant_id in {tenant_id for tenant_id, _ in group}:
                persisted[tenant_id] = self._persist_ids(
                    txn, tenant_id, list(new_devices.get(tenant_id, ()))
                )
            return results

        results = self._write(work)
        self._lsn = lsn[0]
        self._max_seq.update(max_seq)
        self._gateways.update(new_gateways)
        for tenant_id, devices in new_devices.items():
            rollup = self.rollups[tenant_id]
            for device_id, dev in devices.items():
                if rollup.add_device(device_id) != dev:
                    raise StoreError(f"device {device_id!r} was interned outside a commit")
        for tenant_id, written in persisted.items():
            self._ids_persisted(tenant_id, written)
        for (tenant_id, _), batch in zip(group, admitted, strict=True):
            if batch is not None and batch.accepted:
                self.rollups[tenant_id].apply(batch)
        return results

    def _stored_max_seq(self, txn: lmdb.Transaction, tenant_id: int, gw: int) -> int:
        """The highest seq of the gateway in ``dedupe`` (-1 if none); asked once a gateway."""
        top = self._max_seq.get((tenant_id, gw))
        if top is not None:
            return top
        prefix = _TENANT_DEV.pack(tenant_id, gw)
        greatest = prefix + b"\xff" * 8  # seq 2**64 - 1, which the gateway may have sent
        cursor = txn.cursor(db=self.db[b"dedupe"])
        if cursor.set_range(greatest):
            found = bytes(cursor.key()) == greatest or cursor.prev()
        else:
            found = cursor.last()
        key = bytes(cursor.key()) if found else b""
        return _DEDUPE.unpack(key)[2] if key.startswith(prefix) else -1

    def _dedupe_hit(self, txn: lmdb.Transaction, key: bytes, now_ns: int) -> CommitResult | None:
        raw = txn.get(key, db=self.db[b"dedupe"])
        if raw is None:
            return None
        accepted_ns, accepted, rejected, warnings, errors = msgpack.unpackb(raw)
        if accepted_ns < now_ns - self.dedupe_window_ns:
            return None
        return CommitResult(accepted, rejected, warnings, errors)

    def ingest(self, tenant_id: int, body: bytes, now_ns: int | None = None) -> CommitResult:
        """Decode, commit and apply one batch: the synchronous path (tests, tools, demo)."""
        now_ns = time.time_ns() if now_ns is None else now_ns
        batch = self.decode(tenant_id, body, now_ns)
        return self.commit([(tenant_id, batch)], now_ns)[0]

    # --- checkpoints -----------------------------------------------------------------------

    def blocks_complete_until_ns(self) -> int:
        """Wall-clock time up to which the day blocks hold every committed frame: the last
        checkpoint's cut. Frames committed since are in the log and the live state only, so
        queries over the blocks treat later slots as not yet known (not as down). Read from
        the store each time, so a reader in another process follows the writer's checkpoints.
        """
        with self._txn() as txn:
            raw = txn.get(b"checkpoint_ns", db=self.db[b"meta"])
        return _U64.unpack(raw)[0] if raw else 2**63 - 1  # a store from before: no bound

    def _checkpoint_lsn(self, txn: lmdb.Transaction) -> int:
        raw = txn.get(b"checkpoint_lsn", db=self.db[b"meta"])
        return _U64.unpack(raw)[0] if raw else 0

    @property
    def log_records(self) -> int:
        with self._txn() as txn:
            return int(txn.stat(self.db[b"log"])["entries"])

    def checkpoint(self, now_ns: int | None = None) -> int:
        """Merge the live state into the day blocks and truncate the log; returns the number
        of device-days written. Also forgets dedupe keys older than the window.

        The three steps can run apart (the server's writer does): :meth:`drain_checkpoint`
        between commits, :meth:`prepare_checkpoint` in another thread while commits go on,
        :meth:`write_checkpoint` in one short write transaction.
        """
        drained = self.drain_checkpoint()
        return self.write_checkpoint(self.prepare_checkpoint(drained), now_ns)

    def drain_checkpoint(self) -> Drained:
        """Take the live state of every tenant, with the last log record it includes.

        Call it between commits (in the writer thread): every batch committed up to ``lsn``
        has been applied, and none after it.
        """
        at_ns = time.time_ns()
        # a copy: the event loop may pick up a new tenant (``refresh_tenants``) meanwhile
        rollups = list(self.rollups.items())
        deltas: dict[int, list[DayDelta]] = {}
        try:
            for tenant_id, rollup in rollups:
                deltas[tenant_id] = rollup.drain()
        except BaseException:
            # the tenants drained so far get their state back from the log (a rollup whose
            # drain fails keeps its own)
            self._replay_log(upto=self._lsn, tenants=set(deltas))
            raise
        return Drained(self._lsn, {t: d for t, d in deltas.items() if d}, at_ns)

    def prepare_checkpoint(self, drained: Drained) -> Prepared:
        """Merge drained days with the stored blocks and encode them (no write; any thread)."""
        try:
            puts: list[tuple[bytes, bytes, bytes]] = []
            written = 0
            devstates = {}
            with self._txn() as txn:
                for tenant_id, deltas in drained.deltas.items():
                    rollup = self.rollups[tenant_id]
                    fw_rank = rollup.fw_rank()
                    for delta in deltas:
                        puts.extend(self._merge_day(txn, tenant_id, delta, rollup, fw_rank))
                        written += len(delta.dev)
                    devstates[tenant_id] = self._merged_devstate(txn, tenant_id, deltas)
            return Prepared(drained, puts, written, devstates)
        except BaseException:
            self._restore(drained)
            raise

    def write_checkpoint(self, prepared: Prepared, now_ns: int | None = None) -> int:
        """Write prepared blocks, fold the days into ``devstate``, delete the log records
        they came from; one transaction. On failure the live state is rebuilt from the log."""
        now_ns = time.time_ns() if now_ns is None else now_ns
        drained = prepared.drained

        def work(txn: lmdb.Transaction) -> int:
            for db, key, value in prepared.puts:
                txn.put(key, value, db=self.db[db])
            for tenant_id, deltas in drained.deltas.items():
                seen, state = prepared.devstates[tenant_id]
                if _raw(txn.get(_U32.pack(tenant_id), db=self.db[b"devstate"])) != seen:
                    # written since it was prepared (a device registered): merge it again
                    seen, state = self._merged_devstate(txn, tenant_id, deltas)
                n = self.rollups[tenant_id].n_devices
                if len(state) < n:  # devices interned since
                    state = np.concatenate((state, empty_devstate(n - len(state))))
                txn.put(_U32.pack(tenant_id), state.tobytes(), db=self.db[b"devstate"])
            log = self.db[b"log"]
            cursor = txn.cursor(db=log)
            if cursor.first():
                while True:
                    key = bytes(cursor.key())
                    if not key or _U64.unpack(key)[0] > drained.lsn:
                        break
                    cursor.delete()
            txn.put(b"checkpoint_lsn", _U64.pack(drained.lsn), db=self.db[b"meta"])
            txn.put(b"checkpoint_ns", _U64.pack(drained.at_ns), db=self.db[b"meta"])
            self._expire_dedupe(txn, now_ns)
            return prepared.written

        try:
            written = self._write(work)
        except BaseException:
            self._restore(drained)
            raise
        self.clear_stale_readers()
        return written

    def map_used(self) -> float:
        """The share of the LMDB map in use (it grows when full)."""
        with self._txn():
            info, stat = self.env.info(), self.env.stat()
        return float((info["last_pgno"] + 1) * stat["psize"] / info["map_size"])

    def clear_stale_readers(self) -> int:
        """Free the reader slots of processes that died holding a read transaction (a killed
        dashboard, say); until then LMDB cannot reuse the pages their snapshot pins, and the
        file grows. Returns how many were cleared."""
        return int(self.env.reader_check())

    def _restore(self, drained: Drained) -> None:
        """Put drained state back: it is still in the log, up to ``drained.lsn``."""
        self._replay_log(upto=drained.lsn)

    def _merge_day(
        self,
        txn: lmdb.Transaction,
        tenant_id: int,
        delta: DayDelta,
        rollup: RollupPy,
        fw_rank: npt.NDArray[np.int64],
    ) -> list[tuple[bytes, bytes, bytes]]:
        """The new bitmap and stats blocks of one tenant-day: stored ones merged with a delta."""
        key = _TENANT_DAY.pack(tenant_id, delta.day)
        raw = txn.get(key, db=self.db[b"days"])
        bitmaps, n = merge_bitmaps(
            bytes(raw) if raw else None, delta.dev, delta.cov, delta.fault, rollup.slots_per_day
        )
        raw = txn.get(key, db=self.db[b"daystats"])
        stats = empty_stats(n)
        if raw:
            old = np.frombuffer(raw, STATS_DTYPE)
            stats[: len(old)] = old
        stats[delta.dev] = merge_stats(stats[delta.dev], delta.stats, fw_rank)
        return [(b"days", key, bitmaps), (b"daystats", key, stats.tobytes())]

    def _merge_tenant(self, txn: lmdb.Transaction, tenant_id: int, deltas: list[DayDelta]) -> int:
        rollup = self.rollups[tenant_id]
        fw_rank = rollup.fw_rank()
        state = self._devstate(txn, tenant_id, rollup.n_devices)
        for delta in deltas:
            for db, key, value in self._merge_day(txn, tenant_id, delta, rollup, fw_rank):
                txn.put(key, value, db=self.db[db])
            _merge_devstate(state, delta, fw_rank)
        txn.put(_U32.pack(tenant_id), state.tobytes(), db=self.db[b"devstate"])
        return sum(len(delta.dev) for delta in deltas)

    def _expire_dedupe(self, txn: lmdb.Transaction, now_ns: int) -> None:
        cutoff = _U64.pack(max(0, now_ns - self.dedupe_window_ns))
        cursor = txn.cursor(db=self.db[b"dedupe_age"])
        dedupe = self.db[b"dedupe"]
        if not cursor.first():
            return
        while True:
            age_key = bytes(cursor.key())
            if not age_key or age_key >= cutoff:
                return
            _, tenant_id, gw, seq = _AGE.unpack(age_key)
            key = _DEDUPE.pack(tenant_id, gw, seq)
            raw = txn.get(key, db=dedupe)
            if raw is not None and msgpack.unpackb(raw)[0] < now_ns - self.dedupe_window_ns:
                txn.delete(key, db=dedupe)
            cursor.delete()  # moves to the next entry

    # --- reading ---------------------------------------------------------------------------

    def day_blocks(
        self, tenant_id: int, first_day: int, last_day: int
    ) -> Iterator[tuple[int, BitmapBlock, npt.NDArray[np.void]]]:
        """Stored day blocks of a tenant for days ``first_day..last_day`` (missing ones are
        skipped), as of the last checkpoint."""
        start = _TENANT_DAY.pack(tenant_id, max(first_day, 0))
        with self._txn() as txn:
            cursor = txn.cursor(db=self.db[b"days"])
            stats_db = self.db[b"daystats"]
            if not cursor.set_range(start):
                return
            for key, raw in cursor:
                tenant, day = _TENANT_DAY.unpack(key)
                if tenant != tenant_id or day > last_day:
                    break
                raw_stats = txn.get(key, db=stats_db)
                assert raw_stats is not None, "a day block without its stats block"
                stats = np.frombuffer(raw_stats, STATS_DTYPE)
                yield day, decode_bitmaps(raw), stats

    def raw_day(self, tenant_id: int, day: int) -> tuple[bytes | None, bytes | None]:
        """The stored bytes of one day's bitmap and stats blocks (for tests and tools)."""
        key = _TENANT_DAY.pack(tenant_id, day)
        with self._txn() as txn:
            return txn.get(key, db=self.db[b"days"]), txn.get(key, db=self.db[b"daystats"])

    def stored_days(self, tenant_id: int) -> list[int]:
        prefix = _U32.pack(tenant_id)
        with self._txn() as txn:
            return [
                _TENANT_DAY.unpack(key)[1] for key, _ in _prefix_scan(txn, self.db[b"days"], prefix)
            ]

    def firmware_names(self, tenant_id: int) -> list[str]:
        """Firmware strings by id; index 0 is the empty string (none)."""
        self._follow_ids(tenant_id)
        return [""] + self.rollups[tenant_id].firmware_ids()


def _raw(value: bytes | memoryview | None) -> bytes | None:
    return None if value is None else bytes(value)


def _log_entries(value: bytes) -> Iterator[tuple[int, Batch]]:
    """The batches of one log record: one or more (tenant u32, columns) back to back."""
    pos = 0
    while pos < len(value):
        tenant_id = _LOG_HEAD.unpack_from(value, pos)[0]
        n = _LOG_COUNT.unpack_from(value, pos + _LOG_HEAD.size)[0]
        end = pos + _LOG_HEAD.size + _LOG_COUNT.size + n * Batch.FRAME_BYTES
        yield tenant_id, Batch.from_columns_bytes(value[pos + _LOG_HEAD.size : end])
        pos = end


def _prefix_scan(
    txn: lmdb.Transaction, db: Any, prefix: bytes, start: bytes | None = None
) -> Iterator[tuple[bytes, bytes]]:
    """The entries whose keys begin with ``prefix`` (from key ``start`` on, if given)."""
    cursor = txn.cursor(db=db)
    if not cursor.set_range(prefix if start is None else start):
        return
    for key, value in cursor:
        if not bytes(key).startswith(prefix):
            return
        yield bytes(key), bytes(value)


def _merge_devstate(
    state: npt.NDArray[np.void], delta: DayDelta, fw_rank: npt.NDArray[np.int64]
) -> None:
    """Fold one day's stats into the per-device latest values (same rules as day merges)."""
    rows = state[delta.dev]
    stats = delta.stats
    base = delta.day * MS_PER_DAY

    def at(ms: npt.NDArray[np.int32]) -> npt.NDArray[np.int64]:
        return np.where(ms >= 0, ms.astype(np.int64) + base, -1)

    first = at(stats["first_ms"])
    rows["first_ms"] = np.where(
        (rows["first_ms"] < 0) | ((first >= 0) & (first < rows["first_ms"])),
        first,
        rows["first_ms"],
    )
    last = at(stats["last_ms"])
    take = (last > rows["last_ms"]) | (
        (last == rows["last_ms"]) & (stats["last_status"] > rows["last_status"])
    )
    rows["last_ms"] = np.where(take, last, rows["last_ms"])
    rows["last_status"] = np.where(take, stats["last_status"], rows["last_status"])
    for value, ms_name, last_name in (
        ("batt", "batt_ms", "batt_last"),
        ("rssi", "rssi_ms", "rssi_last"),
        ("fw", "fw_ms", "fw_last"),
    ):
        ms = at(stats[ms_name])
        new, old = stats[last_name].astype(np.int64), rows[last_name].astype(np.int64)
        if value == "fw":
            new, old = fw_rank[new], fw_rank[old]
        take = (ms > rows[ms_name]) | ((ms == rows[ms_name]) & (new > old))
        rows[ms_name] = np.where(take, ms, rows[ms_name])
        rows[last_name] = np.where(take, stats[last_name], rows[last_name])
    state[delta.dev] = rows
