"""Two client tenants with distinct fleets and every kind of token, for isolation tests."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import msgpack

from core.rollup import RollupPy
from core.store import Store

HOURS = 6
#: Devices per tenant; names carry the tenant's name so a leak is easy to spot in any text.
FLEETS = {"acme": ["acme-door-1", "acme-door-2", "acme-hvac-1"], "globex": ["globex-cam-1"]}
#: (device, first minute, minutes) without frames: each tenant's one outage.
GAPS = {"acme": ("acme-door-2", 60, 30), "globex": ("globex-cam-1", 120, 45)}


@dataclass
class Seeded:
    data: Path
    now_s: int
    read: dict[str, str]
    ingest: dict[str, str]
    staff: str
    read_ids: dict[str, int]  # token ids, to revoke


def seed(data: Path, engine: type[RollupPy] | None = None) -> Seeded:
    """HOURS of minute frames for both fleets, checkpointed, and their tokens."""
    now_s = int(time.time())
    start = now_s - HOURS * 3600 + 30
    if start % 60 == 0:  # frames mid-slot: one at a slot's very start covers no more of the next
        start += 1
    read, ingest, read_ids = {}, {}, {}
    with Store(data, engine=engine) as store:
        for name, fleet in FLEETS.items():
            tenant = store.add_tenant(name)
            gap_device, gap_start, gap_minutes = GAPS[name]
            frames = [
                [device, start + minute * 60, 0, 90.0, -70]
                for minute in range(HOURS * 60)
                for device in fleet
                if not (device == gap_device and gap_start <= minute < gap_start + gap_minutes)
            ]
            body = msgpack.packb({"gateway": f"{name}-gw", "seq": 1, "frames": frames})
            assert store.ingest(tenant.id, body).accepted == len(frames)
            ingest[name] = store.add_token(tenant.id, "ingest")[0]
            secret, token = store.add_token(tenant.id, "read")
            read[name], read_ids[name] = secret, token.id
        staff = store.add_token(None, "staff")[0]
        store.checkpoint()
    return Seeded(data, now_s, read, ingest, staff, read_ids)


def revoke(data: Path, token_id: int) -> None:
    """``uptally token revoke``, in its own process as in the field (LMDB opens a store once
    per process, so a test's reader and this writer could not share one anyway)."""
    subprocess.run(
        [sys.executable, "-m", "uptally", "token", "revoke", str(token_id), "--data", str(data)],
        check=True,
        capture_output=True,
    )


def write_elsewhere(data: Path, code: str) -> None:
    """Run ``code`` with ``store`` a writer on ``data``, in another process."""
    script = f"from core.store import Store\nwith Store({str(data)!r}) as store:\n"
    script += "".join(f"    {line}\n" for line in code.strip().splitlines())
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
