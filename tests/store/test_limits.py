"""Store limits: a tiny map that must grow, and a full disk (a small tmpfs of our own)."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from core.store import Store
from server.client import GatewayClient, GatewayError
from server.testing import provision, server_config, thread_server

pytestmark = pytest.mark.slow


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """A 6 MiB tmpfs mounted for this test (the suite runs as root, as CI does)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def frames(g: int, k: int, t0: int) -> list[list[object]]:
    """500 frames of 500 new devices: device records are permanent, so the store grows."""
    return [
        [f"gw{g}-b{k}-dev{i:04d}-{'x' * 40}", t0 + 60 * (k % 100), 0, 50, -60] for i in range(500)
    ]


async def send_all(
    url: str, token: str, batches: int, t0: int, start: int = 0, gateway: int = 0
) -> tuple[list[int], list[int]]:
    """Send batches once each (no retries); returns the ks acknowledged and those refused 503."""
    acked, refused = [], []
    async with GatewayClient(url, token, f"gw-{gateway}", seq=start, max_attempts=1) as client:
        for k in range(start, start + batches):
            if len(refused) >= 10:
                break  # the disk is full: enough seen
            try:
                answer = await client.send(frames(gateway, k, t0))
            except GatewayError as exc:
                assert exc.status == 503, exc
                refused.append(k)
                continue
            except aiohttp.ClientError:
                refused.append(k)
                continue
            assert answer["accepted"] == 500
            acked.append(k)
    return acked, refused


def stored(store: Store, tenant: str) -> int:
    tenant_id = store.tenant(tenant).id
    return sum(int(s["frames"].sum()) for _, _, s in store.day_blocks(tenant_id, 0, 2**32 - 1))


def test_tiny_map_keeps_acknowledging_and_counts_stay_exact(tmp_path) -> None:
    data = tmp_path / "db"
    setup = provision(data, {"acme": "standard"})
    t0 = int(time.time()) - 7_000
    config = server_config(data, map_size=64 << 10, checkpoint_interval_s=0.1)
    with thread_server(config) as server:
        acked, refused = asyncio.run(send_all(server.url, setup.ingest["acme"], 60, t0))
        assert not refused and len(acked) == 60
        map_size = server.state.store.env.info()["map_size"]
    assert map_size > 64 << 10
    with Store(data) as store:
        store.checkpoint()
        assert stored(store, "acme") == 60 * 500


def test_full_disk_answers_503_never_2xx_and_reads_back_after(small_disk) -> None:
    data = small_disk / "db"
    setup = provision(data, {"acme": "standard"})
    t0 = int(time.time()) - 7_000
    config = server_config(data, map_size=256 << 10, checkpoint_interval_s=0.2)
    with thread_server(config) as server:
        acked, refused = asyncio.run(send_all(server.url, setup.ingest["acme"], 400, t0))
        assert refused, "the disk never filled up: the test proved nothing"
        assert acked, "nothing was acknowledged before the disk filled up"
        # free space: the same tmpfs, grown
        subprocess.run(["mount", "-o", "remount,size=256m", str(small_disk)], check=True)
        more, refused_after = asyncio.run(
            send_all(server.url, setup.ingest["acme"], 20, t0, start=10_000, gateway=1)
        )
        assert more and not refused_after
    with Store(data) as store:
        store.checkpoint()
        tenant_id = store.tenant("acme").id
        assert stored(store, "acme") == (len(acked) + len(more)) * 500
        ids = set(store.device_ids(tenant_id))
        for g, ks in ((0, acked), (1, more)):
            assert all(f"gw{g}-b{k}-dev0000-{'x' * 40}" in ids for k in ks)
