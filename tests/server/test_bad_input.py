"""Hostile input against a real server process: each gets its wire-format answer, nothing is
stored, and the server's memory stays bounded."""

from __future__ import annotations

import asyncio
import gzip
import io
import struct
import time

import aiohttp
import msgpack
import pytest

from core.store import Store
from server.testing import ProcessServer, provision, rss_mib

pytestmark = pytest.mark.slow

T = int(time.time()) - 60


def gzip_bomb(size: int) -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9) as f:
        chunk = b"\x00" * (1 << 20)
        for _ in range(size >> 20):
            f.write(chunk)
    return out.getvalue()


def deep(n: int) -> bytes:
    return b"\x91" * n + b"\xc0"


def cases() -> list[tuple[str, bytes, dict[str, str], int]]:
    good_header = b"\x82\xa7gateway\xa2gw\xa6frames"
    return [
        ("truncated", msgpack.packb({"gateway": "gw", "frames": [["a", T]]})[:-3], {}, 400),
        ("10^8 array header", good_header + b"\xdd" + struct.pack(">I", 10**8) + b"\x90", {}, 413),
        ("5,000-deep frame", good_header + b"\x91" + deep(5_000), {}, 200),
        ("5,000-deep junk key", b"\x83\xa4junk" + deep(5_000) + good_header[1:] + b"\x90", {}, 200),
        (
            "non-string keys",
            good_header + b"\x91\x82\x01\xa1a\x02\xce" + struct.pack(">I", T),
            {},
            200,
        ),
        (
            "ext type 5 as ts",
            good_header + b"\x91\x92\xa1a\xd6\x05" + struct.pack(">I", T),
            {},
            200,
        ),
        (
            "NaN and inf",
            msgpack.packb({"gateway": "gw", "frames": [["a", float("nan")], ["b", float("inf")]]}),
            {},
            200,
        ),
        ("wrong field types", msgpack.packb({"gateway": 5, "frames": []}), {}, 400),
        ("gzip bomb", gzip_bomb(256 << 20), {"Content-Encoding": "gzip"}, 413),
        ("zstd bomb", b"\x28\xb5\x2f\xfd" + b"\x00" * 1000, {"Content-Encoding": "zstd"}, 415),
        ("oversized body", b"\x00" * (17 << 20), {}, 413),
        ("json content type", b"{}", {"Content-Type": "application/json"}, 415),
    ]


def test_hostile_input_answers_and_stores_nothing(tmp_path) -> None:
    data = tmp_path / "db"
    setup = provision(data, {"acme": "standard"})
    server = ProcessServer(data)
    token = setup.ingest["acme"]

    async def send(body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
        h = {"Authorization": f"Bearer {token}", "Content-Type": "application/msgpack", **headers}
        async with aiohttp.ClientSession() as s:
            try:
                async with s.post(server.url + "/v1/ingest", data=io.BytesIO(body), headers=h) as r:
                    return r.status, await r.json(content_type=None)
            except aiohttp.ClientError:  # the server may cut an oversized upload short
                return 413, {"error": "connection closed"}

    async def attack() -> list[tuple[str, int, int, dict[str, object]]]:
        out = []
        for _ in range(3):
            for name, body, headers, expected in cases():
                status, answer = await send(body, headers)
                out.append((name, expected, status, answer))
        return out

    try:
        baseline = rss_mib(server.proc.pid)
        results = asyncio.run(attack())
        after = rss_mib(server.proc.pid)
        assert server.terminate() == 0
    finally:
        server.kill()
    for name, expected, status, answer in results:
        assert status == expected, (name, status, answer)
        if status == 200:
            assert answer["accepted"] == 0, (name, answer)
        else:
            assert set(answer) == {"error", "detail"} or answer["error"] == "connection closed"
    # the largest bodies are 16 MiB and are held at most a few at a time
    assert after - baseline < 160, f"server RSS grew from {baseline:.0f} to {after:.0f} MiB"
    with Store(data) as store:
        store.checkpoint()
        tenant_id = store.tenant("acme").id
        assert store.device_ids(tenant_id) == []
        assert list(store.day_blocks(tenant_id, 0, 2**32 - 1)) == []
