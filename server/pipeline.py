"""One batch's way in: decode → rate → writer → commit → apply, each once.

:func:`ingest_batch` is the whole data path after a transport's own checks (for HTTP:
token, media type, early rate and load checks, size and gzip in ``server/ingest.py``). The
HTTP handler calls it, and so will a message-log consumer: the same refusals, the same
metrics, the same durable commit before anything is answered. Nothing here runs an LMDB
transaction on the event loop: decoding runs in the decode pool and the commit, with the
rollups' apply after it, in the single writer thread.
"""

from __future__ import annotations

import asyncio

from core import ingest
from core.errors import BatchError
from core.store import CommitResult, StoreError
from core.tiers import Tier
from server.errors import ApiError
from server.state import ServerState


def rate_limited(tier: Tier, wait: int) -> ApiError:
    return ApiError(
        429,
        "rate_limited",
        f"over the plan's {tier.rate_fps:g} frames/s",
        headers={"Retry-After": str(wait)},
    )


async def ingest_batch(
    state: ServerState, tenant_id: int, tier: Tier, body: bytes, now_ns: int
) -> CommitResult:
    """Decode ``body`` for the tenant, take its frames from the tenant's rate, commit it
    durably and count it; raises ``ApiError`` (400/413 refused, 429, 503 store) otherwise,
    and then nothing of the batch is stored."""
    store, config = state.store, state.config
    rollup = store.rollups[tenant_id]
    closed_before_ns = store.tenants[tenant_id].closed_before_ns
    try:
        batch = await asyncio.get_running_loop().run_in_executor(
            state.pool,
            lambda: ingest.decode(
                rollup, body, now_ns, closed_before_ns=closed_before_ns, limits=config.limits
            ),
        )
    except BatchError as exc:
        raise ApiError(exc.status, exc.code, exc.detail) from exc
    wait = state.limiter.take(tenant_id, batch.n_frames, tier.rate_fps, tier.burst_frames)
    if wait is not None:  # other batches of the tenant, decoded meanwhile, emptied the bucket
        raise rate_limited(tier, wait)
    try:
        result = await state.writer.submit(tenant_id, batch)
    except (StoreError, OSError) as exc:
        raise ApiError(
            503,
            "store_unavailable",
            f"the store could not commit: {exc}",
            headers={"Retry-After": str(config.retry_after_s)},
        ) from exc
    m = state.metrics
    if result.duplicate:
        m.duplicates.inc()
        m.batches.labels("duplicate").inc()
    else:
        m.batches.labels("accepted").inc()
        m.frames_accepted.inc(result.accepted)
        m.frame_warnings.inc(result.warnings)
        for reason, n in batch.reject_counts().items():
            m.frames_rejected.labels(reason).inc(n)
        if result.rejected > batch.rejected:  # new devices over the cap, turned away at commit
            m.frames_rejected.labels("device_cap").inc(result.rejected - batch.rejected)
    return result
