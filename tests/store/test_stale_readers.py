"""A reader killed while holding a read transaction does not make the file grow for ever."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import msgpack
import pytest

from core.store import Store
from server.testing import REPO

pytestmark = pytest.mark.slow

READER = """
import sys, time
from core.store import Store
store = Store(sys.argv[1], readonly=True)
txn = store.env.begin()          # a snapshot held open...
txn.get(b"schema", db=store.slab.db[b"meta"])
print("holding", flush=True)
time.sleep(600)                  # ...until SIGKILL
"""

NOW_S = 1_795_348_800


def churn(store: Store, tenant_id: int, rounds: int, start: int) -> None:
    """Rewrite the same day blocks over and over (each checkpoint frees the old pages)."""
    for r in range(start, start + rounds):
        frames = [[f"dev-{i:04d}", NOW_S - 3_000 + r, 0] for i in range(2_000)]
        store.ingest(
            tenant_id, msgpack.packb({"gateway": "g", "seq": r, "frames": frames}), NOW_S * 10**9
        )
        store.checkpoint(NOW_S * 10**9)


def test_killed_reader_does_not_grow_the_file(tmp_path) -> None:
    path = tmp_path / "db"
    with Store(path) as store:
        tenant = store.add_tenant("acme")
        churn(store, tenant.id, 5, 0)
        reader = subprocess.Popen(
            [sys.executable, "-c", READER, str(path)], cwd=REPO, stdout=subprocess.PIPE
        )
        try:
            assert reader.stdout is not None and reader.stdout.readline() == b"holding\n"
            os.kill(reader.pid, signal.SIGKILL)
            reader.wait(10)
        finally:
            if reader.stdout is not None:
                reader.stdout.close()
        churn(store, tenant.id, 20, 5)
        settled = os.path.getsize(path / "data.mdb")
        churn(store, tenant.id, 80, 25)
        grown = os.path.getsize(path / "data.mdb")
        # with the dead reader's snapshot pinned, each round would add its pages for good
        assert grown <= settled * 1.25, (settled, grown)
