"""The lifecycle table: each device's dated lifecycle entries and firmware history.

``lifecycle`` ((tenant, device, at ms, n) -> msgpack {state, by, why, link}) holds what
staff set (``n`` orders entries of one millisecond); ``firmware_history`` ((tenant, device,
at ms) -> firmware name) every firmware change seen in accepted frames, the first one
included, written by the commit that carries it.
"""

from __future__ import annotations

from typing import Any

import lmdb
import msgpack
import numpy as np
import numpy.typing as npt

from core.sla.history import LifecycleEntry
from core.store.slab import (
    DEVICE_KEY,
    FIRMWARE_AT_KEY,
    LIFECYCLE_KEY,
    TENANT_KEY,
    Slab,
    prefix_scan,
)
from core.times import NS_PER_MS


class LifecycleTable:
    def __init__(self, slab: Slab) -> None:
        self.slab = slab

    def add(self, txn: lmdb.Transaction, tenant_id: int, dev: int, entry: LifecycleEntry) -> None:
        db = self.slab.db[b"lifecycle"]
        at_ms = entry.at_ns // NS_PER_MS
        n = 0
        while txn.get(LIFECYCLE_KEY.pack(tenant_id, dev, at_ms, n), db=db) is not None:
            n += 1
        txn.put(
            LIFECYCLE_KEY.pack(tenant_id, dev, at_ms, n), msgpack.packb(entry.to_record()), db=db
        )

    def entries(self, txn: lmdb.Transaction, tenant_id: int) -> dict[int, list[LifecycleEntry]]:
        """Every device's entries, oldest first."""
        out: dict[int, list[LifecycleEntry]] = {}
        prefix = TENANT_KEY.pack(tenant_id)
        for key, value in prefix_scan(txn, self.slab.db[b"lifecycle"], prefix):
            _, dev, at_ms, _ = LIFECYCLE_KEY.unpack(key)
            entry = LifecycleEntry.from_record(at_ms * NS_PER_MS, msgpack.unpackb(value))
            out.setdefault(dev, []).append(entry)
        return out

    def device_entries(
        self, txn: lmdb.Transaction, tenant_id: int, dev: int
    ) -> list[LifecycleEntry]:
        prefix = DEVICE_KEY.pack(tenant_id, dev)
        return [
            LifecycleEntry.from_record(
                LIFECYCLE_KEY.unpack(key)[2] * NS_PER_MS, msgpack.unpackb(value)
            )
            for key, value in prefix_scan(txn, self.slab.db[b"lifecycle"], prefix)
        ]

    # --- firmware --------------------------------------------------------------------------

    def add_firmware(
        self, txn: lmdb.Transaction, tenant_id: int, dev: int, at_ns: int, name: str
    ) -> None:
        key = FIRMWARE_AT_KEY.pack(tenant_id, dev, at_ns // NS_PER_MS)
        txn.put(key, name.encode(), db=self.slab.db[b"firmware_history"])

    def firmware(
        self, txn: lmdb.Transaction, tenant_id: int, dev: int | None = None
    ) -> dict[int, list[tuple[int, str]]]:
        """Firmware changes per device (of ``dev`` only, if given), oldest first."""
        prefix = TENANT_KEY.pack(tenant_id) if dev is None else DEVICE_KEY.pack(tenant_id, dev)
        out: dict[int, list[tuple[int, str]]] = {}
        for key, value in prefix_scan(txn, self.slab.db[b"firmware_history"], prefix):
            _, d, at_ms = FIRMWARE_AT_KEY.unpack(key)
            out.setdefault(d, []).append((at_ms * NS_PER_MS, value.decode()))
        return out


#: a firmware change seen in a batch: (device index, at ns, firmware name id)
FirmwareChange = tuple[int, int, int]


class FirmwareNow:
    """The writer's view of each device's firmware, to date changes as frames arrive: per
    device index, the firmware id in force and since when (ns; -1 never seen).

    A batch is compared in a few vectorised steps; only frames that differ from what is known
    and are newer than its last change are walked in time order. A frame older than a
    device's last change (a backfill) never records a change back.
    """

    def __init__(self, fw: npt.NDArray[np.uint16], since: npt.NDArray[np.int64]) -> None:
        self.fw = fw
        self.since = since

    @classmethod
    def load(cls, history: dict[int, list[tuple[int, str]]], rollup: Any) -> FirmwareNow:
        n = rollup.n_devices
        fw = np.zeros(n, np.uint16)
        since = np.full(n, -1, np.int64)
        names = {name: i for i, name in enumerate(rollup.firmware_ids(), 1)}
        for dev, changes in history.items():
            if dev < n and changes:
                at_ns, name = changes[-1]
                fw[dev], since[dev] = names.get(name, 0), at_ns
        return cls(fw, since)

    def diff(
        self,
        dev: npt.NDArray[Any],
        ts: npt.NDArray[np.int64],
        fw: npt.NDArray[Any],
        pending: dict[int, tuple[int, int]],
    ) -> list[FirmwareChange]:
        """The changes a batch's accepted frames make, given ``pending`` (device -> (fw, at)
        of earlier batches of the same commit), which it updates."""
        if not fw.any():
            return []  # the compact form carries no firmware
        if fw.all():  # the map form, every frame with its firmware
            d, f, t = dev, fw, ts
        else:
            has = fw != 0
            d, f, t = dev[has], fw[has], ts[has]
        if not pending and len(d) and int(d.max()) < len(self.fw):
            # the usual batch: devices it knows, mostly on the firmware they had
            differs = self.fw[d] != f
            if not differs.any():
                return []
        d, f = d.astype(np.int64), f.astype(np.int64)
        inside = d < len(self.fw)
        safe = np.where(inside, d, 0)
        known = np.where(inside, self.fw[safe], 0) if len(self.fw) else np.zeros(len(d), np.int64)
        since = (
            np.where(inside, self.since[safe], -1)
            if len(self.fw)
            else np.full(len(d), -1, np.int64)
        )
        candidate = (known != f) & (t > since)
        if pending:
            candidate |= np.isin(d, np.fromiter(pending, np.int64, len(pending)))
        if not candidate.any():
            return []
        devs = np.unique(d[candidate])
        chosen = np.isin(d, devs)
        d, f, t, known, since = d[chosen], f[chosen], t[chosen], known[chosen], since[chosen]
        changes: list[FirmwareChange] = []
        for i in np.lexsort((t, d)):
            device = int(d[i])
            now_fw, now_at = pending.get(device, (int(known[i]), int(since[i])))
            if int(t[i]) > now_at and int(f[i]) != now_fw:
                pending[device] = (int(f[i]), int(t[i]))
                changes.append((device, int(t[i]), int(f[i])))
        return changes

    def apply(self, pending: dict[int, tuple[int, int]]) -> None:
        """Take in a committed group's changes."""
        if not pending:
            return
        top = max(pending) + 1
        if top > len(self.fw):
            grow = max(top, 2 * len(self.fw)) - len(self.fw)
            self.fw = np.concatenate((self.fw, np.zeros(grow, np.uint16)))
            self.since = np.concatenate((self.since, np.full(grow, -1, np.int64)))
        for device, (fw, at) in pending.items():
            self.fw[device], self.since[device] = fw, at
