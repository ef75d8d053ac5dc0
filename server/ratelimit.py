"""Per-tenant frame rate limits."""

from __future__ import annotations

import math
import time


class RateLimiter:
    """A frame token bucket per tenant that may run into debt.

    A batch is admitted while the bucket is not empty and takes all its frames, possibly
    overdrawing it; later batches wait (429) until the debt is repaid, and the long-run rate
    equals the plan's. Batches of one tenant read and decoded at once all passed the check
    before any took its frames: each takes them only if the bucket is still not empty, so
    they cannot overdraw it together, one batch beyond the bucket at most.
    """

    def __init__(self) -> None:
        self._buckets: dict[int, tuple[float, float]] = {}  # tenant -> (tokens, at)

    def _level(self, tenant_id: int, rate: float, burst: float, now: float) -> float:
        tokens, at = self._buckets.get(tenant_id, (burst, now))
        return min(burst, tokens + (now - at) * rate)

    def retry_after(self, tenant_id: int, rate: float, burst: float) -> int | None:
        """Seconds to wait, or None if a batch may be admitted now."""
        now = time.monotonic()
        tokens = self._level(tenant_id, rate, burst, now)
        if tokens > 0:
            return None
        return max(1, math.ceil((1 - tokens) / rate))

    def take(self, tenant_id: int, frames: int, rate: float, burst: float) -> int | None:
        """Take a decoded batch's frames; or, if batches decoded beside it emptied the bucket
        meanwhile, take nothing and return the seconds to wait."""
        wait = self.retry_after(tenant_id, rate, burst)
        if wait is None:
            now = time.monotonic()
            self._buckets[tenant_id] = (self._level(tenant_id, rate, burst, now) - frames, now)
        return wait
