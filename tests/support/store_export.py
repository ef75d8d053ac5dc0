"""A canonical export of what a store holds for a tenant, to compare two stores in tests."""

from __future__ import annotations

import numpy as np

from core.dayblock import STATS_DTYPE as _STATS
from core.store import Store


def export(store: Store, tenant_id: int) -> dict[str, object]:
    """Everything stored for a tenant, keyed by device id rather than by index.

    Device indexes are handed out in order of arrival, so two stores that received the same
    frames in another order number their devices differently; keyed by id, their records
    must be byte-for-byte the same. Firmware ids are replaced by their strings likewise.
    """
    ids = store.device_ids(tenant_id)
    fw_names = store.firmware_names(tenant_id)
    days: dict[tuple[str, int], tuple[bytes, bytes, bytes]] = {}
    for day, block, stats in store.day_blocks(tenant_id, 0, 2**32 - 1):
        devs = np.arange(block.n, dtype=np.int64)
        cov, fault = block.rows(devs)
        for dev in devs:
            row = stats[dev].copy()
            if row["frames"] == 0 and not cov[dev].any() and not fault[dev].any():
                continue
            fw = fw_names[int(row["fw_last"])]
            row["fw_last"] = 0
            days[(ids[dev], day)] = (
                cov[dev].tobytes(),
                fault[dev].tobytes(),
                row.tobytes() + fw.encode(),
            )
    state = store.devstate(tenant_id)
    devices = {}
    for dev, device_id in enumerate(ids):
        row = state[dev].copy()
        fw = fw_names[int(row["fw_last"])]
        row["fw_last"] = 0
        devices[device_id] = row.tobytes() + fw.encode()
    return {"days": days, "devices": devices}


def uptime_part(exported: dict[str, object]) -> dict[str, object]:
    """The part of an export that depends only on the set of frames (not on deliveries):
    bitmaps and the min/last values, without the delivery counters."""
    days = {}
    for key, (cov, fault, stats) in exported["days"].items():  # type: ignore[attr-defined]
        row = np.frombuffer(stats[: _STATS.itemsize], dtype=_STATS).copy()
        for name in ("frames", "fault_frames", "rssi_n", "rssi_sum"):
            row[name] = 0
        days[key] = (cov, fault, row.tobytes() + stats[_STATS.itemsize :])
    return {"days": days, "devices": exported["devices"]}
