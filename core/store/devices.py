"""The devices table: device, firmware and gateway ids of every tenant.

``devices`` ((tenant, index) -> id) and ``device_ids`` (tenant + id -> index), ``firmware``
((tenant, firmware id) -> name, from 1; 0 is none), ``gateways`` ((tenant, gateway id) ->
name, from 1) and ``gateway_ids`` (tenant + name -> gateway id). Ids are dense and never
removed or renumbered, so the table keeps each tenant's list in memory and reads only what
lies past it.

In the writer, the rollups intern devices and firmware first (decoding threads intern
firmware; a commit numbers its new devices) and :meth:`DeviceTable.persist_ids` writes what
was interned since the last commit. A read-only store has no rollups: it follows the ids the
writer (another process) stored with :meth:`DeviceTable.follow`, into these lists only.
"""

from __future__ import annotations

import threading

import lmdb

from core.rollup import RollupPy
from core.store.slab import (
    DEVICE_KEY,
    FIRMWARE_KEY,
    GATEWAY_KEY,
    ID_VALUE,
    TENANT_KEY,
    Slab,
    prefix_scan,
)

#: What one transaction wrote for a tenant: device ids and firmware names, in id order.
Persisted = tuple[list[str], list[str]]


class DeviceTable:
    """Per tenant, the stored device ids by index (``ids``, with ``index`` the other way)
    and firmware names by id from 1 (``firmware``); per (tenant, gateway name) its id."""

    def __init__(self, slab: Slab, rollups: dict[int, RollupPy]) -> None:
        self.slab = slab
        self.rollups = rollups  # the writer's interners, shared with the store
        self.ids: dict[int, list[str]] = {}
        self.index: dict[int, dict[str, int]] = {}
        self.firmware: dict[int, list[str]] = {}
        self.gateways: dict[tuple[int, str], int] = {}
        # Devices are interned only under this lock: by a commit, which numbers a group's new
        # devices before its transaction and interns them after it, by registration, and in
        # a read-only store by following the writer's ids.
        self.admission = threading.Lock()

    def load_gateways(self, txn: lmdb.Transaction) -> None:
        for key, value in txn.cursor(db=self.slab.db[b"gateway_ids"]):
            tenant_id = TENANT_KEY.unpack(key[:4])[0]
            self.gateways[(tenant_id, bytes(key[4:]).decode())] = ID_VALUE.unpack(value)[0]

    def open_tenant(
        self, txn: lmdb.Transaction, tenant_id: int, rollup: RollupPy | None = None
    ) -> None:
        """Read the tenant's ids, and intern them in ``rollup`` (the writer's), if given."""
        prefix = TENANT_KEY.pack(tenant_id)
        ids = [value.decode() for _, value in prefix_scan(txn, self.slab.db[b"devices"], prefix)]
        firmware = [
            value.decode() for _, value in prefix_scan(txn, self.slab.db[b"firmware"], prefix)
        ]
        if rollup is not None:
            for device_id in ids:
                rollup.add_device(device_id)
            for name in firmware:
                rollup.add_firmware(name)
        self.ids[tenant_id] = ids
        self.index[tenant_id] = {device_id: dev for dev, device_id in enumerate(ids)}
        self.firmware[tenant_id] = firmware

    def follow(self, tenant_id: int) -> None:
        """In a read-only store, pick up the device and firmware ids the writer (another
        process) has stored since: dense, so only those past the ones known are read."""
        if not self.slab.readonly:
            return
        ids, index = self.ids[tenant_id], self.index[tenant_id]
        firmware = self.firmware[tenant_id]
        prefix = TENANT_KEY.pack(tenant_id)
        with self.admission, self.slab.txn() as txn:  # two threads must not add the same id
            start = DEVICE_KEY.pack(tenant_id, len(ids))
            for _, value in prefix_scan(txn, self.slab.db[b"devices"], prefix, start):
                ids.append(value.decode())
                index[ids[-1]] = len(ids) - 1  # after the id: an index found is in ``ids``
            start = FIRMWARE_KEY.pack(tenant_id, len(firmware) + 1)
            for _, value in prefix_scan(txn, self.slab.db[b"firmware"], prefix, start):
                firmware.append(value.decode())

    def device_index(self, tenant_id: int, device_id: str) -> int | None:
        """The stored index of a device of the tenant, None if it has none."""
        self.follow(tenant_id)
        return self.index[tenant_id].get(device_id)

    def persist_ids(
        self, txn: lmdb.Transaction, tenant_id: int, admitted: list[str] | None = None
    ) -> Persisted:
        """Write the device ids interned since the last commit and those ``admitted`` by this
        one (to be interned after it, in this order), and the firmware ids interned since the
        last commit: dense, so ranges.

        Decoding threads may intern more firmware while this runs: what was written is
        returned, and only that is marked persisted (:meth:`ids_persisted`) once the
        transaction commits.
        """
        rollup = self.rollups[tenant_id]
        start = len(self.ids[tenant_id])
        start_fw = len(self.firmware[tenant_id])
        if rollup.n_devices == start and rollup.n_firmware == start_fw and not admitted:
            return [], []  # the usual group: no new ids (and no lock taken to find out)
        new_ids = rollup.device_ids(start) + (admitted or [])
        prefix = TENANT_KEY.pack(tenant_id)
        for dev, device_id in enumerate(new_ids, start):
            raw = device_id.encode()
            txn.put(DEVICE_KEY.pack(tenant_id, dev), raw, db=self.slab.db[b"devices"])
            txn.put(prefix + raw, ID_VALUE.pack(dev), db=self.slab.db[b"device_ids"])
        new_fw = rollup.firmware_ids(start_fw)
        for fw, name in enumerate(new_fw, start_fw + 1):
            txn.put(FIRMWARE_KEY.pack(tenant_id, fw), name.encode(), db=self.slab.db[b"firmware"])
        return new_ids, new_fw

    def ids_persisted(self, tenant_id: int, persisted: Persisted) -> None:
        """Mark what :meth:`persist_ids` wrote as stored, once its transaction committed."""
        new_ids, new_fw = persisted
        ids, index = self.ids[tenant_id], self.index[tenant_id]
        for device_id in new_ids:
            ids.append(device_id)
            index[device_id] = len(ids) - 1  # after the id: an index found is in ``ids``
        self.firmware[tenant_id].extend(new_fw)

    def gateway_id(
        self, txn: lmdb.Transaction, tenant_id: int, name: str, new: dict[tuple[int, str], int]
    ) -> int:
        """The id of a tenant's gateway; one not stored yet is stored in ``txn`` and noted in
        ``new`` (added to ``gateways`` once the transaction commits)."""
        key = (tenant_id, name)
        gw = self.gateways.get(key) or new.get(key)
        if gw is None:
            prefix = TENANT_KEY.pack(tenant_id)
            gw = sum(1 for _ in prefix_scan(txn, self.slab.db[b"gateways"], prefix)) + 1
            txn.put(GATEWAY_KEY.pack(tenant_id, gw), name.encode(), db=self.slab.db[b"gateways"])
            txn.put(prefix + name.encode(), ID_VALUE.pack(gw), db=self.slab.db[b"gateway_ids"])
            new[key] = gw
        return gw
