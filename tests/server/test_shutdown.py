"""SIGTERM while gateways are posting: every acknowledged batch is stored."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import numpy as np
import pytest

from core.store import Store
from server.client import GatewayClient
from server.testing import ProcessServer, provision

pytestmark = pytest.mark.slow


def test_sigterm_during_load_loses_no_acknowledged_batch(tmp_path) -> None:
    data = tmp_path / "db"
    setup = provision(data, {"acme": "standard"})
    server = ProcessServer(data, UPTALLY_CHECKPOINT_INTERVAL_S="0.5")
    t0 = (int(time.time()) // 60 - 100) * 60
    acked: dict[int, list[int]] = {}
    stop_at = time.monotonic() + 1.5

    async def gateway(g: int) -> None:
        acked[g] = []
        async with GatewayClient(
            server.url, setup.ingest["acme"], f"gw-{g}", max_attempts=1
        ) as client:
            for k in range(90):
                if time.monotonic() > stop_at + 5:
                    return
                frames = [[f"gw{g}-dev{i}", t0 + 60 * k] for i in range(200)]
                try:
                    answer = await client.send(frames)
                except (TimeoutError, aiohttp.ClientError, Exception):
                    return  # the server went away: not acknowledged
                assert answer["accepted"] == 200
                acked[g].append(k)

    async def load() -> None:
        tasks = [asyncio.create_task(gateway(g)) for g in range(6)]
        await asyncio.sleep(max(0.0, stop_at - time.monotonic()))
        server.proc.send_signal(15)  # SIGTERM mid-load
        await asyncio.gather(*tasks)

    try:
        asyncio.run(load())
        assert server.proc.wait(60) == 0, server.output()
    finally:
        server.kill()
    total_acked = sum(len(v) for v in acked.values())
    assert total_acked > 0, "no batch was acknowledged before SIGTERM: the test proved nothing"
    with Store(data) as store:
        tenant = store.tenant("acme")
        store.checkpoint()
        index = {d: i for i, d in enumerate(store.device_ids(tenant.id))}
        blocks = {day: block for day, block, _ in store.day_blocks(tenant.id, 0, 2**32 - 1)}
        for g, ks in acked.items():
            for k in ks:
                slot = (t0 + 60 * k) // 60
                block = blocks[slot // 1440]
                devs = np.array([index[f"gw{g}-dev{i}"] for i in range(200)], np.int64)
                cov, _ = block.rows(devs)
                bit = slot % 1440
                assert ((cov[:, bit >> 3] >> (bit & 7)) & 1).all(), (g, k)
