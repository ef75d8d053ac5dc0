"""SIGKILL in the middle of a month close: nothing of it stays, and the rerun issues the same
invoices, with the same gapless numbers, as a close that was never killed.

200 tenants with subscriptions and a few frames each. ``uptally close-month`` runs in a
subprocess with the test hook ``UPTALLY_TEST_CLOSE_PAUSE_S``, which makes it sleep inside its
write transaction once it has stored its first invoice; the test kills it there (and once
more after a random delay), then reruns it and compares with a copy of the store closed
without a kill.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import msgpack
import pytest

from core.billing.subscriptions import Change, Start
from core.store import Store
from core.store.store import CLOSE_PAUSE_ENV
from core.times import NS_PER_S
from tests.support.hourly import DAY_S, month_s

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TENANTS = 200
START, END = month_s(2025, 3, "UTC")
TIERS = ("basic", "standard", "premium")


def seed(data: Path) -> None:
    rng = random.Random(1313)
    with Store(data) as store:
        for i in range(TENANTS):
            tenant = store.add_tenant(f"t{i:03d}", tax_rate=str(rng.choice((0, 7, 19))))
            store.add_subscription_event(
                tenant.id,
                Start(date(2025, 2, 1 + i % 28), TIERS[i % 3], trial_days=rng.choice((0, 0, 40))),
            )
            if i % 4 == 0:
                store.add_subscription_event(
                    tenant.id, Change(date(2025, 3, 1 + i % 31), TIERS[(i + 1) % 3])
                )
            at = START + rng.randrange(30) * DAY_S + 3600
            frames = [[f"d{k}", at + 60 * k] for k in range(rng.randrange(1, 6))]
            body = msgpack.packb({"gateway": "gw", "frames": frames})
            assert store.ingest(tenant.id, body, (at + 600) * NS_PER_S).accepted == len(frames)
        store.checkpoint()


def close(data: Path, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "uptally.cli", "close-month", "2025-03", "--data", str(data)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def issued(data: Path) -> list[dict]:
    with Store(data) as store:
        out = store.month_invoices(2025, 3)
        for record in out:
            record.pop("issued_ns")
        return out


def assert_nothing_closed(data: Path) -> None:
    with Store(data) as store:
        assert store.closed_months() == {}
        assert all(not store.invoices(t) for t in store.tenants)
        assert all(t.closed_before_ns == 0 for t in store.tenants.values())
        assert store.kept_mrr(1).mrr == {}


def test_a_close_killed_midway_leaves_nothing_and_reruns_the_same(tmp_path) -> None:
    data, clean = tmp_path / "db", tmp_path / "clean"
    seed(data)
    shutil.copytree(data, clean)
    started = time.perf_counter()
    reference = close(clean)
    out, err = reference.communicate(timeout=60)
    assert reference.returncode == 0, err
    took = time.perf_counter() - started
    assert out.startswith(f"2025-03 closed: {TENANTS} invoices issued")

    # killed inside the transaction, after its first invoice was stored
    paused = close(data, **{CLOSE_PAUSE_ENV: "60"})
    assert paused.stderr is not None
    line = paused.stderr.readline()
    assert line.startswith("close-month: paused after INV-"), line
    paused.send_signal(signal.SIGKILL)
    paused.communicate(timeout=30)
    assert paused.returncode == -signal.SIGKILL
    assert_nothing_closed(data)

    # killed after a random delay, wherever the close then is
    killed = close(data)
    time.sleep(random.Random().uniform(0.2, max(0.3, took * 0.8)))
    killed.send_signal(signal.SIGKILL)
    killed.communicate(timeout=30)
    if killed.returncode == -signal.SIGKILL:
        assert_nothing_closed(data)

    rerun = close(data)
    out, err = rerun.communicate(timeout=60)
    assert rerun.returncode == 0, err
    got, want = issued(data), issued(clean)
    year = time.gmtime().tm_year
    assert [r["number"] for r in got] == [f"INV-{year}-{n:06d}" for n in range(1, TENANTS + 1)]
    assert [r["tenant"] for r in got] == list(range(1, TENANTS + 1))
    assert got == want
