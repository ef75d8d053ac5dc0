"""The sites table: where each device is, over time.

``first_gateway`` ((tenant, block) -> u32 array of ``FIRST_GATEWAY_BLOCK`` gateway ids, by
device index; 0 for none) remembers the gateway whose batch first carried each device: the
commit that admits a device writes it, so its default site (the gateway's name) costs no
read on the ingest path. ``device_sites`` ((tenant, device, from ms) -> site name) holds the
dated changes staff made.
"""

from __future__ import annotations

from collections.abc import Mapping

import lmdb
import numpy as np
import numpy.typing as npt

from core.sla.history import SiteHistory
from core.store.slab import GATEWAY_BLOCK_KEY, SITE_KEY, TENANT_KEY, Slab, prefix_scan
from core.times import NS_PER_MS

#: devices per ``first_gateway`` value: a commit rewrites one 16 KiB value, not one per device
FIRST_GATEWAY_BLOCK = 4096

#: the longest site name
MAX_SITE_BYTES = 64


def check_site(site: str) -> str:
    site = site.strip()
    if not site or len(site.encode()) > MAX_SITE_BYTES:
        raise ValueError(f"a site name is 1..{MAX_SITE_BYTES} bytes")
    return site


class SiteTable:
    def __init__(self, slab: Slab) -> None:
        self.slab = slab

    def record_first_gateways(
        self, txn: lmdb.Transaction, tenant_id: int, first: Mapping[int, int]
    ) -> None:
        """Store the first gateway of newly admitted devices (device index -> gateway id)."""
        db = self.slab.db[b"first_gateway"]
        blocks: dict[int, list[int]] = {}
        for dev in first:
            blocks.setdefault(dev // FIRST_GATEWAY_BLOCK, []).append(dev)
        for block, devs in blocks.items():
            key = GATEWAY_BLOCK_KEY.pack(tenant_id, block)
            raw = txn.get(key, db=db)
            ids = np.frombuffer(raw, "<u4").copy() if raw else np.zeros(FIRST_GATEWAY_BLOCK, "<u4")
            for dev in devs:
                slot = dev % FIRST_GATEWAY_BLOCK
                if not ids[slot]:
                    ids[slot] = first[dev]
            txn.put(key, ids.tobytes(), db=db)

    def first_gateways(
        self, txn: lmdb.Transaction, tenant_id: int, n: int
    ) -> npt.NDArray[np.uint32]:
        out = np.zeros(n, np.uint32)
        prefix = TENANT_KEY.pack(tenant_id)
        for key, value in prefix_scan(txn, self.slab.db[b"first_gateway"], prefix):
            base = GATEWAY_BLOCK_KEY.unpack(key)[1] * FIRST_GATEWAY_BLOCK
            if base < n:
                ids = np.frombuffer(value, "<u4")
                out[base : min(base + FIRST_GATEWAY_BLOCK, n)] = ids[: n - base]
        return out

    def set_site(
        self, txn: lmdb.Transaction, tenant_id: int, dev: int, at_ns: int, site: str
    ) -> None:
        key = SITE_KEY.pack(tenant_id, dev, at_ns // NS_PER_MS)
        txn.put(key, check_site(site).encode(), db=self.slab.db[b"device_sites"])

    def changes(self, txn: lmdb.Transaction, tenant_id: int) -> dict[int, list[tuple[int, str]]]:
        out: dict[int, list[tuple[int, str]]] = {}
        prefix = TENANT_KEY.pack(tenant_id)
        for key, value in prefix_scan(txn, self.slab.db[b"device_sites"], prefix):
            _, dev, at_ms = SITE_KEY.unpack(key)
            out.setdefault(dev, []).append((at_ms * NS_PER_MS, value.decode()))
        return out

    def history(
        self, txn: lmdb.Transaction, tenant_id: int, n: int, gateway_names: Mapping[int, str]
    ) -> SiteHistory:
        first = self.first_gateways(txn, tenant_id, n)
        return SiteHistory(first, gateway_names, self.changes(txn, tenant_id))
