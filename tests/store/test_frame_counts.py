"""Accepted frames counted per quarter hour by their own time, for billing's local days:
exact across a zone's midnight, not counted for a resent batch, nor again when the log is
replayed after a crash."""

from __future__ import annotations

from datetime import date

import msgpack
import numpy as np
import pytest

from core.batch import QUARTER_NS, quarter_counts
from core.store import Store
from core.times import NS_PER_S
from core.zones import day_bounds

#: 2026-03-01T00:00Z
T0 = 1_772_323_200


def body(seq: int, times: list[int], device: str = "d") -> bytes:
    return msgpack.packb({"gateway": "gw", "seq": seq, "frames": [[device, t] for t in times]})


def test_quarter_counts_split_a_batch_at_each_quarter_hour() -> None:
    ts = [(T0 + s) * NS_PER_S for s in (0, 899, 900, 901, 2700)]
    q = T0 * NS_PER_S // QUARTER_NS
    assert quarter_counts(np.array(ts)) == {q: 2, q + 1: 2, q + 3: 1}


def test_frames_are_counted_by_the_local_day_they_fall_in(tmp_path, engine) -> None:
    # Kathmandu is +05:45: its 2026-03-01 runs from 02-28 18:15Z to 03-01 18:15Z
    with Store(tmp_path / "db", engine=engine) as store:
        tenant = store.add_tenant("acme", tz="Asia/Kathmandu")
        day = day_bounds(date(2026, 3, 1), "Asia/Kathmandu")
        start_s = day[1] // NS_PER_S
        now = (start_s + 600) * NS_PER_S
        # 3 frames in the last 15 minutes of the local day, 2 after its end
        assert (
            store.ingest(
                tenant.id, body(1, [start_s - 900, start_s - 60, start_s - 1]), now
            ).accepted
            == 3
        )
        assert store.ingest(tenant.id, body(2, [start_s, start_s + 300]), now).accepted == 2
        assert store.ingest(tenant.id, body(2, [start_s, start_s + 300]), now).duplicate  # resent
        assert store.frames_between(tenant.id, *day) == 3
        assert store.frames_between(tenant.id, day[1], day[1] + QUARTER_NS) == 2
        with pytest.raises(ValueError, match="quarter hours"):
            store.frames_between(tenant.id, day[0] + 1, day[1])
        path = store.path
    # reopened without a checkpoint: the log is replayed, the counts are not added again
    with Store(path, engine=engine) as store:
        assert store.frames_between(tenant.id, day[0], day[1] + QUARTER_NS) == 5
