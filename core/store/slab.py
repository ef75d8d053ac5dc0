"""The generic layer under the store's tables: one LMDB environment and its named databases.

A :class:`Slab` opens the environment (``sync=True``, no ``writemap``/``map_async``: billing
data must be durable) and its databases by name, checks the schema version, begins every
transaction through a :class:`ResizeLock`, grows the map when a write finds it full and runs
the write again (:meth:`Slab.write`), and scans keys by prefix (:func:`prefix_scan`).

Keys are fixed-width big-endian, so range scans come back in order; the structs below are
named for what they key. The layout is written down in ``docs/storage.md``.
"""

from __future__ import annotations

import os
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, TypeVar

import lmdb

T = TypeVar("T")
V = TypeVar("V", bytes, memoryview)

#: tenant id: ``tenants`` and ``devstate``; the prefix of every per-tenant key
TENANT_KEY = struct.Struct(">I")
#: token id: ``tokens``
TOKEN_KEY = struct.Struct(">I")
#: (tenant, day): ``days`` and ``daystats``
DAY_KEY = struct.Struct(">II")
#: (tenant, device index): ``devices``
DEVICE_KEY = struct.Struct(">II")
#: (tenant, firmware id, from 1): ``firmware``
FIRMWARE_KEY = struct.Struct(">II")
#: (tenant, gateway id, from 1): ``gateways``
GATEWAY_KEY = struct.Struct(">II")
#: (tenant, gateway id, seq): ``dedupe``
DEDUPE_KEY = struct.Struct(">IIQ")
#: (accepted ns, tenant, gateway id, seq): ``dedupe_age``, oldest first
DEDUPE_AGE_KEY = struct.Struct(">QIIQ")
#: (tenant, device index, from ms): ``device_sites``, a device's site from that time on
SITE_KEY = struct.Struct(">IIQ")
#: (tenant, block of FIRST_GATEWAY_BLOCK devices): ``first_gateway``
GATEWAY_BLOCK_KEY = struct.Struct(">II")
#: (tenant, device index, at ms, sequence): ``lifecycle`` (the sequence orders entries of one
#: millisecond); (tenant, device index, at ms): ``firmware_history``
LIFECYCLE_KEY = struct.Struct(">IIQI")
FIRMWARE_AT_KEY = struct.Struct(">IIQ")
#: (tenant, window id): ``windows``
WINDOW_KEY = struct.Struct(">II")
#: (tenant, endpoint id): ``endpoints``
ENDPOINT_KEY = struct.Struct(">II")
#: (tenant, event id): ``events``, oldest first
EVENT_KEY = struct.Struct(">IQ")
#: delivery id: ``deliveries`` and ``pending_deliveries``
DELIVERY_KEY = struct.Struct(">Q")
#: (tenant, quarter hour since 1970 UTC): ``frame_quarters``
QUARTER_KEY = struct.Struct(">II")
#: (tenant, incident id): ``incidents``
INCIDENT_KEY = struct.Struct(">II")
#: (tenant, n from 1): ``subscriptions``, a tenant's events in the order recorded
SUBSCRIPTION_KEY = struct.Struct(">II")
#: (year of issue, seq from 1): ``invoices``, in issue order
INVOICE_KEY = struct.Struct(">HI")
#: (tenant, local year * 100 + month): ``month_mrr``
MONTH_MRR_KEY = struct.Struct(">II")
#: log sequence number: ``log``
LOG_KEY = struct.Struct(">Q")
#: an id or index stored as a value (``tenant_names``, ``device_ids``, ``gateway_ids``,
#: ``token_hashes``) and the schema version in ``meta``
ID_VALUE = struct.Struct(">I")
#: ``meta``'s ``checkpoint_lsn`` and ``checkpoint_ns``
META_U64 = struct.Struct(">Q")


class StoreError(Exception):
    """The store could not commit; nothing of the group was stored."""


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


class Slab:
    """One LMDB environment with its named databases (``db[name]``), opened once per process.

    A writable slab creates the databases it lacks; on a new environment it records
    ``schema`` in ``meta`` and runs ``on_create`` in the same transaction, and it refuses an
    environment of another schema.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        names: tuple[bytes, ...],
        *,
        schema: int,
        map_size: int,
        readonly: bool,
        on_create: Callable[[Slab, lmdb.Transaction], None] | None = None,
    ) -> None:
        os.makedirs(path, exist_ok=True)
        self.path = os.fspath(path)
        self.readonly = readonly
        self.env = lmdb.open(
            self.path,
            map_size=map_size,
            max_dbs=len(names) + 2,
            sync=True,
            metasync=True,
            writemap=False,
            map_async=False,
            readonly=readonly,
            lock=True,
        )
        self.resize_lock = ResizeLock(self.env)
        self.txn = self.resize_lock.txn
        self.view = self.resize_lock.view
        self.db: dict[bytes, Any] = {}
        if readonly:
            missing = []
            for name in names:
                try:
                    self.db[name] = self.env.open_db(name, create=False)
                except lmdb.NotFoundError:
                    missing.append(name.decode())
            if missing:
                self.env.close()
                raise StoreError(
                    f"the store in {self.path} lacks the tables {', '.join(missing)} of this"
                    " version: run uptally serve (or any writing uptally command) on it once"
                )
            return
        with self.txn(write=True) as txn:
            for name in names:
                self.db[name] = self.env.open_db(name, txn=txn)
            stored = txn.get(b"schema", db=self.db[b"meta"])
            if stored is None:
                txn.put(b"schema", ID_VALUE.pack(schema), db=self.db[b"meta"])
                if on_create is not None:
                    on_create(self, txn)
            elif ID_VALUE.unpack(stored)[0] != schema:
                raise StoreError(f"store schema {ID_VALUE.unpack(stored)[0]} is not supported")

    def write(self, work: Callable[[lmdb.Transaction], T]) -> T:
        """Run ``work`` in one write transaction; on a full map, grow it and run it again."""
        while True:
            try:
                with self.txn(write=True) as txn:
                    return work(txn)
            except lmdb.MapFullError:
                self.resize_lock.resize(grow=True)
            except lmdb.Error as exc:
                raise StoreError(str(exc)) from exc

    def entries(self, name: bytes) -> int:
        """How many entries the database ``name`` holds."""
        with self.txn() as txn:
            return int(txn.stat(self.db[name])["entries"])

    def map_used(self) -> float:
        """The share of the LMDB map in use (it grows when full)."""
        with self.txn():
            info, stat = self.env.info(), self.env.stat()
        return float((info["last_pgno"] + 1) * stat["psize"] / info["map_size"])

    def clear_stale_readers(self) -> int:
        """Free the reader slots of processes that died holding a read transaction (a killed
        dashboard, say); until then LMDB cannot reuse the pages their snapshot pins, and the
        file grows. Returns how many were cleared."""
        return int(self.env.reader_check())

    def close(self) -> None:
        self.env.close()


def next_in_sequence(slab: Slab, txn: lmdb.Transaction, sequence: bytes) -> int:
    """The next id of ``sequence``, a counter in ``meta`` (``window_seq``, ``incident_seq``,
    ...): ids start at 1 and are never reused, so a deleted record's id never names another."""
    meta = slab.db[b"meta"]
    raw = txn.get(sequence, db=meta)
    next_id = (META_U64.unpack(raw)[0] if raw else 0) + 1
    txn.put(sequence, META_U64.pack(next_id), db=meta)
    return next_id


def prefix_scan(
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


def last_id(txn: lmdb.Transaction, db: Any, key: struct.Struct) -> int:
    """The greatest id of ``db``, whose keys are ``key`` (one id); 0 if it is empty."""
    cursor = txn.cursor(db=db)
    return int(key.unpack(cursor.key())[0]) if cursor.last() else 0
