"""A server start replays what the last run committed after its last checkpoint, once."""

from __future__ import annotations

import time

import msgpack

from core.store import Store
from server.testing import provision, server_config, thread_server


def test_a_start_checkpoints_the_log_it_replayed(tmp_path) -> None:
    """``docs/storage.md``: a start replays at most what was committed since the previous
    start's own checkpoint, so crashes in a row do not pile the log up."""
    data = tmp_path / "db"
    provision(data, {"acme": "standard"})
    t = int(time.time()) - 120
    crashed = Store(data)
    tenant = crashed.tenant("acme")
    frames = [["a", t, 0], ["b", t + 30, 0]]
    assert crashed.ingest(tenant.id, msgpack.packb({"gateway": "gw", "seq": 1, "frames": frames}))
    crashed.env.close()  # no checkpoint: as if the server died here
    # a checkpoint interval far beyond the test: only the start itself can have checkpointed
    with thread_server(server_config(data, checkpoint_interval_s=3600.0)) as server:
        store = server.state.store
        assert store.log_records == 0
        assert store.device_ids(tenant.id) == ["a", "b"]
        frames_stored = sum(
            int(stats["frames"].sum()) for _, _, stats in store.day_blocks(tenant.id, 0, 2**32 - 1)
        )
        assert frames_stored == 2
