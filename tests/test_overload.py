"""Overload: a tenant flooding at ten times its rate limit gets 429 with Retry-After, and
another tenant's acknowledgement latency barely moves."""

from __future__ import annotations

import asyncio
import io
import time

import aiohttp
import msgpack
import numpy as np
import pytest

from tests.live import ProcessServer, provision

pytestmark = pytest.mark.slow

FLOOD_LIMIT_FPS = 2_000
FRAMES = 100
CONFIG = f"""
[plans.flood]
rate_fps = {FLOOD_LIMIT_FPS}
burst_s = 1.0

[plans.standard]
rate_fps = 1e12
"""


def test_flooding_tenant_is_limited_and_others_unaffected(tmp_path) -> None:
    data = tmp_path / "db"
    setup = provision(data, {"calm": "standard", "flood": "flood"})
    config = tmp_path / "uptally.toml"
    config.write_text(CONFIG)
    server = ProcessServer(data, config_path=config)
    t0 = int(time.time()) - 3_000
    flood_statuses: list[int] = []
    retry_after: set[str] = set()

    def body(gateway: str, seq: int) -> bytes:
        frames = [[f"{gateway}-{i}", t0 + seq % 3_000, 0] for i in range(FRAMES)]
        return msgpack.packb({"gateway": gateway, "seq": seq, "frames": frames})

    async def calm(session: aiohttp.ClientSession, n: int, start: int) -> list[float]:
        headers = {
            "Authorization": f"Bearer {setup.ingest['calm']}",
            "Content-Type": "application/msgpack",
        }
        latencies = []
        for seq in range(start, start + n):
            began = time.perf_counter()
            async with session.post(
                server.url + "/v1/ingest", data=io.BytesIO(body("c", seq)), headers=headers
            ) as r:
                await r.read()
                assert r.status == 200
            latencies.append(time.perf_counter() - began)
            await asyncio.sleep(0.002)
        return latencies

    async def flood(session: aiohttp.ClientSession, stop: asyncio.Event) -> None:
        """A misbehaving gateway: ten times its limit, ignoring Retry-After."""
        headers = {
            "Authorization": f"Bearer {setup.ingest['flood']}",
            "Content-Type": "application/msgpack",
        }
        interval = FRAMES / (10 * FLOOD_LIMIT_FPS)
        seq = 0
        next_at = time.perf_counter()
        while not stop.is_set():
            seq += 1
            async with session.post(
                server.url + "/v1/ingest", data=io.BytesIO(body("f", seq)), headers=headers
            ) as r:
                await r.read()
                flood_statuses.append(r.status)
                if r.status == 429:
                    retry_after.add(r.headers.get("Retry-After", ""))
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))

    async def run() -> tuple[list[float], list[float]]:
        alone: list[float] = []
        flooded: list[float] = []
        async with aiohttp.ClientSession() as session:
            await calm(session, 50, 0)  # warm-up
            seq = 1_000
            for _ in range(3):  # interleaved, so drift hits both sides alike
                alone += await calm(session, 300, seq)
                seq += 1_000
                stop = asyncio.Event()
                flooding = asyncio.create_task(flood(session, stop))
                await asyncio.sleep(0.3)
                flooded += await calm(session, 300, seq)
                seq += 1_000
                stop.set()
                await flooding
        return alone, flooded

    try:
        alone, flooded = asyncio.run(run())
        assert server.terminate() == 0
    finally:
        server.kill()
    statuses = np.array(flood_statuses)
    assert (statuses == 429).sum() > 0.8 * len(statuses), np.unique(statuses, return_counts=True)
    assert set(statuses) <= {200, 429}
    assert retry_after and all(int(v) >= 1 for v in retry_after)
    p99_alone, p99_flooded = np.percentile(alone, 99), np.percentile(flooded, 99)
    assert p99_flooded < 1.2 * p99_alone, (
        f"calm tenant p99 {1000 * p99_alone:.2f} ms alone, {1000 * p99_flooded:.2f} ms flooded"
    )
