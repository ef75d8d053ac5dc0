"""The checkpoint tables: day blocks (``days``, ``daystats``), ``devstate`` and the cut.

``days`` and ``daystats`` ((tenant, day) -> bitmap block, stats block) hold what checkpoints
folded in; ``devstate`` (tenant -> rows of :data:`DEVSTATE_DTYPE`, dense by device index)
the devices' lifecycle settings and merged latest values. ``meta``'s ``checkpoint_lsn`` is the
last log record the blocks hold, ``checkpoint_ns`` the wall-clock time of that cut.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import lmdb
import numpy as np
import numpy.typing as npt

from core.dayblock import (
    STATS_DTYPE,
    BitmapBlock,
    DayDelta,
    decode_bitmaps,
    empty_stats,
    merge_bitmaps,
    merge_stats,
)
from core.store.slab import DAY_KEY, META_U64, TENANT_KEY, Slab, prefix_scan
from core.times import MS_PER_DAY

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


#: (db, key, value) puts of one merged tenant-day
DayPuts = list[tuple[bytes, bytes, bytes]]


class CheckpointTable:
    """Reads and merges the day blocks and ``devstate``; the store's writer writes them."""

    def __init__(self, slab: Slab) -> None:
        self.slab = slab

    def start(self, txn: lmdb.Transaction, now_ns: int) -> None:
        """Mark a new store: nothing of it is in its day blocks yet, nor missing from them."""
        txn.put(b"checkpoint_ns", META_U64.pack(now_ns), db=self.slab.db[b"meta"])

    def lsn(self, txn: lmdb.Transaction) -> int:
        """The last log record the day blocks hold."""
        raw = txn.get(b"checkpoint_lsn", db=self.slab.db[b"meta"])
        return META_U64.unpack(raw)[0] if raw else 0

    def complete_until_ns(self) -> int:
        """The last checkpoint's cut (read each time; see ``Store.blocks_complete_until_ns``)."""
        with self.slab.txn() as txn:
            raw = txn.get(b"checkpoint_ns", db=self.slab.db[b"meta"])
        return META_U64.unpack(raw)[0] if raw else 2**63 - 1  # a store from before: no bound

    def record_cut(self, txn: lmdb.Transaction, lsn: int, at_ns: int) -> None:
        txn.put(b"checkpoint_lsn", META_U64.pack(lsn), db=self.slab.db[b"meta"])
        txn.put(b"checkpoint_ns", META_U64.pack(at_ns), db=self.slab.db[b"meta"])

    # --- devstate ---------------------------------------------------------------------------

    def raw_devstate(self, txn: lmdb.Transaction, tenant_id: int) -> bytes | None:
        raw = txn.get(TENANT_KEY.pack(tenant_id), db=self.slab.db[b"devstate"])
        return None if raw is None else bytes(raw)

    def devstate(self, txn: lmdb.Transaction, tenant_id: int, n: int) -> npt.NDArray[np.void]:
        """The tenant's stored rows (a copy), at least ``n`` (defaults past the stored)."""
        raw = txn.get(TENANT_KEY.pack(tenant_id), db=self.slab.db[b"devstate"])
        stored = np.frombuffer(raw, DEVSTATE_DTYPE) if raw else empty_devstate(0)
        if len(stored) >= n:
            return stored.copy()
        out = empty_devstate(n)
        out[: len(stored)] = stored
        return out

    def put_devstate(
        self, txn: lmdb.Transaction, tenant_id: int, state: npt.NDArray[np.void]
    ) -> None:
        txn.put(TENANT_KEY.pack(tenant_id), state.tobytes(), db=self.slab.db[b"devstate"])

    def devstate_rows(self, tenant_id: int, idx: npt.NDArray[np.int64]) -> npt.NDArray[np.void]:
        """The stored rows of devices ``idx`` (valid indexes), read out of the map without
        copying every device's; defaults for devices past the stored rows."""
        out = empty_devstate(len(idx))
        with self.slab.view() as txn:
            raw = txn.get(TENANT_KEY.pack(tenant_id), db=self.slab.db[b"devstate"])
            if raw is not None:  # a view into the map, valid inside this transaction only
                stored = np.frombuffer(raw, DEVSTATE_DTYPE)
                have = idx < len(stored)
                out[have] = stored[idx[have]]
        return out

    def merged_devstate(
        self,
        txn: lmdb.Transaction,
        tenant_id: int,
        deltas: list[DayDelta],
        n: int,
        fw_rank: npt.NDArray[np.int64],
    ) -> tuple[bytes | None, npt.NDArray[np.void]]:
        """The stored ``devstate`` value and its rows (at least ``n``) with days folded in."""
        seen = self.raw_devstate(txn, tenant_id)
        state = self.devstate(txn, tenant_id, n)
        for delta in deltas:
            merge_devstate(state, delta, fw_rank)
        return seen, state

    # --- day blocks -------------------------------------------------------------------------

    def merge_day(
        self,
        txn: lmdb.Transaction,
        tenant_id: int,
        delta: DayDelta,
        slots_per_day: int,
        fw_rank: npt.NDArray[np.int64],
    ) -> DayPuts:
        """The new bitmap and stats blocks of one tenant-day: stored ones merged with a delta."""
        key = DAY_KEY.pack(tenant_id, delta.day)
        raw = txn.get(key, db=self.slab.db[b"days"])
        bitmaps, n = merge_bitmaps(
            bytes(raw) if raw else None, delta.dev, delta.cov, delta.fault, slots_per_day
        )
        raw = txn.get(key, db=self.slab.db[b"daystats"])
        stats = empty_stats(n)
        if raw:
            old = np.frombuffer(raw, STATS_DTYPE)
            stats[: len(old)] = old
        stats[delta.dev] = merge_stats(stats[delta.dev], delta.stats, fw_rank)
        return [(b"days", key, bitmaps), (b"daystats", key, stats.tobytes())]

    def put(self, txn: lmdb.Transaction, puts: DayPuts) -> None:
        for db, key, value in puts:
            txn.put(key, value, db=self.slab.db[db])

    def day_blocks(
        self, tenant_id: int, first_day: int, last_day: int
    ) -> Iterator[tuple[int, BitmapBlock, npt.NDArray[np.void]]]:
        start = DAY_KEY.pack(tenant_id, max(first_day, 0))
        with self.slab.txn() as txn:
            cursor = txn.cursor(db=self.slab.db[b"days"])
            stats_db = self.slab.db[b"daystats"]
            if not cursor.set_range(start):
                return
            for key, raw in cursor:
                tenant, day = DAY_KEY.unpack(key)
                if tenant != tenant_id or day > last_day:
                    break
                raw_stats = txn.get(key, db=stats_db)
                assert raw_stats is not None, "a day block without its stats block"
                stats = np.frombuffer(raw_stats, STATS_DTYPE)
                yield day, decode_bitmaps(raw), stats

    def day_stats(
        self, tenant_id: int, first_day: int, last_day: int
    ) -> Iterator[tuple[int, npt.NDArray[np.void]]]:
        """The stats blocks alone of days ``first_day..last_day`` (no bitmap is decoded)."""
        start = DAY_KEY.pack(tenant_id, max(first_day, 0))
        with self.slab.txn() as txn:
            cursor = txn.cursor(db=self.slab.db[b"daystats"])
            if not cursor.set_range(start):
                return
            for key, raw in cursor:
                tenant, day = DAY_KEY.unpack(key)
                if tenant != tenant_id or day > last_day:
                    break
                yield day, np.frombuffer(raw, STATS_DTYPE)

    def raw_day(self, tenant_id: int, day: int) -> tuple[bytes | None, bytes | None]:
        key = DAY_KEY.pack(tenant_id, day)
        with self.slab.txn() as txn:
            return txn.get(key, db=self.slab.db[b"days"]), txn.get(
                key, db=self.slab.db[b"daystats"]
            )

    def stored_days(self, tenant_id: int) -> list[int]:
        prefix = TENANT_KEY.pack(tenant_id)
        with self.slab.txn() as txn:
            days = prefix_scan(txn, self.slab.db[b"days"], prefix)
            return [DAY_KEY.unpack(key)[1] for key, _ in days]


def merge_devstate(
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
