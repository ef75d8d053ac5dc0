"""Growing the LMDB map beside open transactions: in this process and from another one.

LMDB may remap its file only while no transaction of the process is open, and a map grown by
another process makes the next ``begin`` fail with ``MapResizedError`` until the new size is
adopted. Both happen in production: the server reads in several threads while its writer
grows the map, and the CLI (or, later, the dashboard) opens the same store beside it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import msgpack

from core.store import Store
from server.testing import REPO

NOW_S = 1_795_348_800  # 2026-11-22 12:00:00 UTC
NOW = NOW_S * 10**9
TINY = 64 << 10


def body(frames: list, seq: int) -> bytes:
    return msgpack.packb({"gateway": "gw", "seq": seq, "frames": frames})


def test_a_map_grown_by_another_process_is_adopted(engine, tmp_path) -> None:
    path = tmp_path / "db"
    with Store(path, map_size=TINY, engine=engine) as s:
        t = s.add_tenant("acme")
        assert s.ingest(t.id, body([["a", NOW_S - 600]], 1), NOW).accepted == 1
        # another process (as the CLI beside a running server) adds tokens until the map has
        # grown several times over
        script = textwrap.dedent(f"""
            from core.store import Store
            with Store({str(path)!r}, map_size={TINY}) as other:
                t = other.tenant("acme")
                secrets = [other.add_token(t.id, "read")[0] for _ in range(3000)]
                print(secrets[-1], other.env.info()["map_size"])
        """)
        out = subprocess.run(
            [sys.executable, "-c", script], cwd=REPO, check=True, capture_output=True, text=True
        ).stdout.split()
        secret, grown = out[0], int(out[1])
        assert grown >= 8 * TINY
        # this process reads and writes on, with the other process's size
        token = s.authenticate(secret)
        assert token is not None and token.tenant_id == t.id
        assert len(s.tokens()) == 3000
        assert s.ingest(t.id, body([["b", NOW_S - 540]], 2), NOW).accepted == 1
        assert s.env.info()["map_size"] >= grown


def test_growth_waits_for_transactions_open_in_other_threads(engine, tmp_path) -> None:
    with Store(tmp_path / "db", map_size=TINY, engine=engine) as s:
        t = s.add_tenant("acme")
        s.ingest(t.id, body([[f"dev-{i}", NOW_S - 600, 0, 50] for i in range(50)], 1), NOW)
        s.checkpoint(NOW)
        blocks = s.day_blocks(t.id, 0, 2**32 - 1)
        day, block, stats = next(blocks)  # a read transaction is open until the loop ends
        size = s.env.info()["map_size"]
        ids = [f"site-{i // 200:03d}/dev-{i:05d}-{'x' * 40}" for i in range(5_000)]
        grower = threading.Thread(target=s.add_devices, args=(t.id, ids))
        grower.start()
        grower.join(0.5)
        assert grower.is_alive(), "the map was resized under an open read transaction"
        assert s.env.info()["map_size"] == size
        assert int(stats["frames"].sum()) == 50 and block.n == 50
        blocks.close()
        grower.join(60)
        assert not grower.is_alive()
        assert s.env.info()["map_size"] > size
        assert len(s.device_ids(t.id)) == 5_050


def test_readers_in_other_threads_survive_growth(engine, tmp_path) -> None:
    with Store(tmp_path / "db", map_size=TINY, engine=engine) as s:
        t = s.add_tenant("acme")
        secret, _ = s.add_token(t.id, "ingest")
        s.add_devices(t.id, [f"dev-{i}" for i in range(100)])
        stop = threading.Event()
        errors: list[BaseException] = []
        reads = [0, 0, 0]

        def read(k: int) -> None:
            # what the server's threads read while its writer commits: tokens on every
            # request, device rows (values viewed in the map) for the read API
            while not stop.is_set():
                try:
                    assert s.authenticate(secret) is not None
                    assert len(s.devstate(t.id, [0, 1, 2])) == 3
                    s.tokens()
                except BaseException as exc:
                    errors.append(exc)
                    return
                reads[k] += 1

        readers = [threading.Thread(target=read, args=(k,)) for k in range(3)]
        switch = sys.getswitchinterval()
        sys.setswitchinterval(1e-5)  # interleave the threads as finely as the GIL allows
        try:
            for r in readers:
                r.start()
            for k in range(60):
                s.add_devices(t.id, [f"site-{k}/dev-{i:05d}" for i in range(2_000)])
        finally:
            stop.set()
            for r in readers:
                r.join(30)
            sys.setswitchinterval(switch)
        assert errors == []
        assert min(reads) > 0
        assert s.env.info()["map_size"] >= 128 * TINY  # grown 7 times or more
        assert len(s.device_ids(t.id)) == 120_100
