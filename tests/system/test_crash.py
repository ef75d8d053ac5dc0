"""SIGKILL at random moments, many times: every acknowledged batch is stored exactly once.

Gateways keep resending a batch (same seq) until it is acknowledged, across server deaths,
as real gateways do. A killer SIGKILLs the server at random moments and starts it again. At
the end, per-device frame counts and uptime must equal a reference computed here, without the
server, from the batches the gateways were told were committed.
"""

from __future__ import annotations

import asyncio
import random
import time

import numpy as np
import pytest

from core import query
from core.store import Store
from server.client import GatewayClient
from server.testing import ProcessServer, provision

pytestmark = pytest.mark.slow

KILLS = 10
GATEWAYS = 4
BATCHES = 200
PACE_S = 0.03  # between a gateway's batches, so that the run outlasts the kills
DEVICES_PER_GATEWAY = 50


def plan(t0: int, rng: random.Random) -> dict[int, list[list[list[object]]]]:
    """Each gateway's batches: every device reports once a minute, a few minutes missing."""
    out: dict[int, list[list[list[object]]]] = {}
    for g in range(GATEWAYS):
        batches = []
        for k in range(BATCHES):
            frames: list[list[object]] = []
            for i in range(DEVICES_PER_GATEWAY):
                if rng.random() < 0.03:
                    continue  # a missed heartbeat: a gap in uptime
                status = 4 if rng.random() < 0.01 else 0
                frames.append([f"gw{g}/dev{i:03d}", t0 + 60 * k + rng.randrange(60), status])
            batches.append(frames)
        out[g] = batches
    return out


def reference(acked: list[list[list[object]]], slot_s: int = 60, heartbeat_s: int = 60):
    """Frames per device and up slots per device, straight from the acknowledged frames."""
    frames: dict[str, int] = {}
    covered: dict[str, set[int]] = {}
    faults: dict[str, set[int]] = {}
    for batch in acked:
        for device, ts, status in batch:
            frames[device] = frames.get(device, 0) + 1
            if status:
                faults.setdefault(device, set()).add(ts // slot_s)
            else:
                first, last = ts // slot_s, (ts + heartbeat_s - 1) // slot_s
                covered.setdefault(device, set()).update(range(first, last + 1))
    up = {d: len(covered.get(d, set()) - faults.get(d, set())) for d in frames}
    return frames, up


def test_sigkill_many_times_loses_nothing_acknowledged(tmp_path) -> None:
    rng = random.Random(20261122)
    data = tmp_path / "db"
    setup = provision(data, {"acme": "standard"})
    t0 = (int(time.time()) // 86_400 * 86_400) - 86_400 + 3_600  # yesterday 01:00 UTC
    batches = plan(t0, rng)
    acked: list[list[list[object]]] = []
    servers = [ProcessServer(data, UPTALLY_CHECKPOINT_INTERVAL_S="0.3")]
    port = servers[0].port

    async def gateway(g: int) -> None:
        async with GatewayClient(
            servers[0].url,
            setup.ingest["acme"],
            f"gw-{g}",
            seq=0,
            max_attempts=400,
            base_delay=0.02,
            max_delay=0.2,
            timeout=10,
        ) as client:
            for frames in batches[g]:
                answer = await client.send(frames)
                assert answer["accepted"] == len(frames)
                acked.append(frames)
                await asyncio.sleep(PACE_S)

    async def killer(gateways: asyncio.Future[list[None]]) -> int:
        kills = 0
        while kills < KILLS and not gateways.done():
            await asyncio.sleep(rng.uniform(0.05, 0.4))
            servers[-1].kill()  # SIGKILL
            kills += 1
            servers.append(ProcessServer(data, port=port, UPTALLY_CHECKPOINT_INTERVAL_S="0.3"))
        return kills

    async def run() -> int:
        gateways = asyncio.gather(*(gateway(g) for g in range(GATEWAYS)))
        kills = await killer(gateways)
        await gateways
        return kills

    try:
        kills = asyncio.run(run())
        assert servers[-1].terminate() == 0
    finally:
        for server in servers:
            server.kill()
    assert kills == KILLS, f"the gateways finished after {kills} kills: make the run longer"
    assert len(acked) == GATEWAYS * BATCHES

    frames_ref, up_ref = reference(acked)
    with Store(data) as store:
        store.checkpoint()
        tenant = store.tenant("acme")
        ids = store.device_ids(tenant.id)
        assert sorted(ids) == sorted(frames_ref)
        stored = np.zeros(len(ids), np.int64)
        for _, _, stats in store.day_blocks(tenant.id, 0, 2**32 - 1):
            stored[: len(stats)] += stats["frames"][: len(ids)]
        assert dict(zip(ids, stored.tolist(), strict=True)) == frames_ref
        end = (t0 + 60 * BATCHES + 3_600) * 10**9
        table = query.uptime(store, tenant.id, (t0 - 3_600) * 10**9, end, time.time_ns())
        assert dict(zip(ids, table.up.tolist(), strict=True)) == up_ref
