"""Overload: a tenant flooding at ten times its rate limit gets 429 with Retry-After, and
another tenant's acknowledgement latency barely moves.

The flooding gateway runs in its own process, as a real one would, so it does not share the
measuring client's event loop. Alone and flooded phases alternate every 25 requests: this
machine's fsync latency drifts over seconds, and only short interleaved phases let both sides
see the same drift (A/A runs of this design, with the flood idle, showed 0.88-1.10 at 1,000
requests a side; at 2,500 a side flooded runs showed 0.98-1.06; at 3,000 a side, 1.02-1.09).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from multiprocessing.synchronize import Event

import aiohttp
import msgpack
import numpy as np
import pytest

from core.rollup import NO_EXTENSIONS
from server.testing import ProcessServer, provision

pytestmark = pytest.mark.slow

FRAMES = 100  # per calm batch
# The flooding tenant is on a basic plan (5,000 frames/s) and sends ten times that in the
# 1,000-frame batches gateways usually send: 50 requests a second, of which one in ten is
# admitted. The Python twin decodes some 50 times slower, holding the GIL, so its flood is
# scaled down tenfold in frames (500 frames/s, 100-frame batches) and stays at 50 requests
# a second with one in ten admitted, so that what it is allowed costs the server alike.
FLOOD_LIMIT_FPS = 500 if NO_EXTENSIONS else 5_000
FLOOD_FRAMES = 100 if NO_EXTENSIONS else 1_000
# The promise: the calm tenant's p99 grows by less than 20 %. It holds for the Cython engine.
# The Python twin decodes holding the GIL, so even the flood's refused requests (parsed, their
# token checked, answered 429 on the event loop) wait on it and make it wait: with every
# flood request refused, the twin's calm p99 grew 16-19 % in three runs of 1,000 requests a
# side, and CI saw 32 % once. The twin is held to 50 % (docs/reliability.md).
P99_GROWTH = 1.5 if NO_EXTENSIONS else 1.2
# alone and flooded phases alternate quickly, so drift (disk, neighbours) hits both alike;
# 3,000 requests a side put the p99 on the 30 slowest, not on a few stragglers
ROUNDS = 120
PER_PHASE = 25
CONFIG = f"""
[plans.flood]
rate_fps = {FLOOD_LIMIT_FPS}
burst_s = 1.0

[plans.standard]
rate_fps = 1e12
"""
FACTOR = 10  # the flood's rate, in multiples of its plan's limit


def body(gateway: str, seq: int, t0: int, n: int = FRAMES) -> bytes:
    frames = [[f"{gateway}-{i}", t0 + seq % 3_000, 0] for i in range(n)]
    return msgpack.packb({"gateway": gateway, "seq": seq, "frames": frames})


PRE_ENCODED = 4_000  # flood requests built before the test starts (some 1,300 are sent)


async def _response(reader: asyncio.StreamReader) -> tuple[int, str, bool]:
    """Status, Retry-After and whether the server keeps the connection, of one answer."""
    status = int((await reader.readline()).split()[1])
    length, retry, keep = 0, "", True
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        name, value = name.strip().lower(), value.strip()
        if name == "content-length":
            length = int(value)
        elif name == "retry-after":
            retry = value
        elif name == "connection" and value.lower() == "close":
            keep = False
    await reader.readexactly(length)
    return status, retry, keep


def flood(
    port: int,
    token: str,
    t0: int,
    ready: Event,
    active: Event,
    done: Event,
    out: multiprocessing.Queue,
) -> None:
    """A misbehaving gateway in its own process: ten times its limit while ``active`` is set,
    ignoring Retry-After; idle (blocked, not polling) while it is clear. Puts its statuses and
    Retry-After values on ``out`` once ``done`` is set.

    It writes pre-built HTTP/1.1 requests on a plain keep-alive socket: on this 2-core machine
    the flooding client shares the CPU with the server, which a real remote gateway does not,
    so it should cost as little as it can (an aiohttp client cost several times more)."""
    statuses: list[int] = []
    retry_after: list[str] = []
    requests = []
    for seq in range(1, PRE_ENCODED + 1):
        data = body("f", seq, t0, FLOOD_FRAMES)
        head = (
            f"POST /v1/ingest HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/msgpack\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        )
        requests.append(head.encode() + data)
    ready.set()
    interval = FLOOD_FRAMES / (FACTOR * FLOOD_LIMIT_FPS)

    async def burst(i: int) -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        next_at = time.perf_counter()
        try:
            while active.is_set():
                writer.write(requests[i % PRE_ENCODED])
                i += 1
                status, retry, keep = await _response(reader)
                statuses.append(status)
                if status == 429:
                    retry_after.append(retry)
                if not keep:
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                next_at += interval
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
        finally:
            writer.close()
        return i

    i = 0
    while True:
        active.wait()
        if done.is_set():
            break
        i = asyncio.run(burst(i))
    out.put((statuses, retry_after))


def test_flooding_tenant_is_limited_and_others_unaffected(tmp_path) -> None:
    data = tmp_path / "db"
    setup = provision(data, {"calm": "standard", "flood": "flood"})
    config = tmp_path / "uptally.toml"
    config.write_text(CONFIG)
    server = ProcessServer(data, config_path=config)
    url = server.url + "/v1/ingest"
    t0 = int(time.time()) - 3_000
    ctx = multiprocessing.get_context("spawn")
    ready, active, done, out = ctx.Event(), ctx.Event(), ctx.Event(), ctx.Queue()
    flooder = ctx.Process(
        target=flood,
        args=(server.port, setup.ingest["flood"], t0, ready, active, done, out),
        daemon=True,
    )
    flooder.start()
    assert ready.wait(120), "the flooding process did not get ready"

    async def calm(session: aiohttp.ClientSession, n: int, start: int) -> list[float]:
        headers = {
            "Authorization": f"Bearer {setup.ingest['calm']}",
            "Content-Type": "application/msgpack",
        }
        latencies = []
        for seq in range(start, start + n):
            data = body("c", seq, t0)
            began = time.perf_counter()
            async with session.post(url, data=data, headers=headers) as r:
                await r.read()
                assert r.status == 200
            latencies.append(time.perf_counter() - began)
            await asyncio.sleep(0.002)
        return latencies

    async def run() -> tuple[list[float], list[float]]:
        alone: list[float] = []
        flooded: list[float] = []
        async with aiohttp.ClientSession() as session:
            await calm(session, 50, 0)  # warm-up
            seq = 1_000
            for _ in range(ROUNDS):
                alone += await calm(session, PER_PHASE, seq)
                seq += 1_000
                active.set()
                await asyncio.sleep(0.1)
                flooded += await calm(session, PER_PHASE, seq)
                seq += 1_000
                active.clear()
                await asyncio.sleep(0.05)
        return alone, flooded

    try:
        began = time.monotonic()
        alone, flooded = asyncio.run(run())
        elapsed = time.monotonic() - began
        done.set()
        active.set()
        statuses_list, retry_after = out.get(timeout=30)
        flooder.join(30)
        assert server.terminate() == 0
    finally:
        done.set()
        active.set()
        flooder.kill()
        server.kill()
    statuses = np.array(statuses_list)
    p50_alone, p50_flooded = np.percentile(alone, 50), np.percentile(flooded, 50)
    p99_alone, p99_flooded = np.percentile(alone, 99), np.percentile(flooded, 99)
    print(
        f"calm tenant p50/p99 {1000 * p50_alone:.2f}/{1000 * p99_alone:.2f} ms alone, "
        f"{1000 * p50_flooded:.2f}/{1000 * p99_flooded:.2f} ms flooded "
        f"({len(statuses)} flood requests)"
    )
    # the flood is held to its plan: what was admitted fits the rate over the run, plus the
    # bucket and the one batch that may overdraw it; the rest was refused
    admitted = int((statuses == 200).sum()) * FLOOD_FRAMES
    assert admitted <= FLOOD_LIMIT_FPS * elapsed + FLOOD_LIMIT_FPS * 1.0 + FLOOD_FRAMES
    print(f"flood: {admitted} frames admitted in {elapsed:.1f} s")
    assert (statuses == 429).sum() > 0.75 * len(statuses), np.unique(statuses, return_counts=True)
    assert retry_after and all(int(v) >= 1 for v in retry_after)
    assert set(statuses) <= {200, 429}
    assert p99_flooded < P99_GROWTH * p99_alone, (
        f"calm tenant p99 {1000 * p99_alone:.2f} ms alone, {1000 * p99_flooded:.2f} ms flooded"
    )
