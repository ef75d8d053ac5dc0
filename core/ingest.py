"""A batch's way in, as far as the domain goes: decode it for a tenant under the limits.

The data path is handler → decode → rate → writer → commit → apply, each once. Decoding is
the engine's work on the request's thread, not the store's: it reads the tenant's rollup (its
interner and clock rules) and never an LMDB transaction, so it runs in any pool. The server's
``server/pipeline.py`` takes it from there (rate, the single writer, the answer); the store's
synchronous ``Store.ingest`` (tools, tests, the demo) calls the same function.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.batch import Batch
from core.times import S_PER_DAY

if TYPE_CHECKING:
    from core.rollup import RollupPy


@dataclass(frozen=True)
class Limits:
    """What a batch may hold (docs/wire-format.md, "Limits"); the defaults are the server's."""

    max_frames: int = 100_000
    max_future_skew_s: int = 300
    max_backfill_s: int = 7 * S_PER_DAY


DEFAULT_LIMITS = Limits()


def decode(
    rollup: RollupPy,
    body: bytes,
    now_ns: int,
    *,
    closed_before_ns: int = 0,
    limits: Limits = DEFAULT_LIMITS,
) -> Batch:
    """Decode and judge one batch for the tenant whose ``rollup`` this is, ready to commit;
    raises ``BatchError`` if it is refused whole. ``closed_before_ns`` is the tenant's month
    close: frames before it are refused."""
    batch = rollup.decode(
        body,
        now_ns,
        max_frames=limits.max_frames,
        max_future_skew_s=limits.max_future_skew_s,
        max_backfill_s=limits.max_backfill_s,
        closed_before_ns=closed_before_ns,
    )
    return batch.prepare()
