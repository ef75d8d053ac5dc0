"""Webhook delivery: the :class:`Deliverer` POSTs the outbox's pending deliveries.

One asyncio task with one ``aiohttp.ClientSession``. It reads the pending deliveries at its
start (a restart picks up what the last run left, the attempt a SIGKILL interrupted among
them) and again every ``poll_s`` or when :meth:`Deliverer.wake` is called; it POSTs each due
delivery (the event's body as stored, a fresh timestamp and signature per attempt, the same
``X-Uptally-Delivery`` every time), with at most ``concurrency`` in flight and at most one
per delivery. Every attempt is recorded, once it has returned, through the writer thread
(``Store.record_attempt``); reads go to the read pool, never LMDB on the event loop.

The store is the truth and this task's schedule a hint: before each attempt the delivery is
read again, so one delivered, given up or rescheduled meanwhile (by another process, or by a
stale poll) is not sent. Delivery is at least once: a server killed after a POST and before
its record sends it again after the restart, under the same delivery id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from concurrent.futures import Executor

import aiohttp

from core import __version__
from core.store import Store
from core.times import NS_PER_S
from core.webhooks import (
    BACKOFF_S,
    MAX_ATTEMPTS,
    TIMEOUT_S,
    Attempt,
    Delivery,
    Endpoint,
    next_delay_s,
    sign,
)
from server.writer import Writer

log = logging.getLogger("uptally.webhooks")

#: the longest error text kept with an attempt
MAX_ERROR = 200


class Deliverer:
    """Sends the outbox's pending deliveries; see the module docstring.

    ``start`` (a coroutine) and ``stop`` run on the server's event loop; :meth:`wake` may be
    called from any thread (the writer's, where events are emitted, included).
    """

    def __init__(
        self,
        store: Store,
        writer: Writer,
        read_pool: Executor,
        *,
        backoff_s: float = BACKOFF_S,
        timeout_s: float = TIMEOUT_S,
        max_attempts: int = MAX_ATTEMPTS,
        concurrency: int = 8,
        poll_s: float = 1.0,
    ) -> None:
        self.store = store
        self.writer = writer
        self.read_pool = read_pool
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.concurrency = concurrency
        self.poll_s = poll_s
        #: attempts made, deliveries delivered and given up since the start (for /metrics)
        self.attempts = self.delivered = self.failed = 0
        self._due: dict[int, int] = {}  # delivery id -> when due (ns, wall clock)
        self._inflight: dict[int, asyncio.Task[None]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._kick: asyncio.Event | None = None
        self._reload = True  # read the pending set before the next round
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    # --- running ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the HTTP session and start the task; the first round reads what is pending."""
        self._loop = asyncio.get_running_loop()
        self._kick = asyncio.Event()
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout_s),
            connector=aiohttp.TCPConnector(limit=self.concurrency),
            cookie_jar=aiohttp.DummyCookieJar(),
            headers={"User-Agent": f"Uptally-Webhooks/{__version__}"},
        )
        self._task = asyncio.create_task(self._run(), name="uptally-deliverer")

    async def stop(self) -> None:
        """Stop sending: attempts in flight are abandoned unrecorded, so they are made again
        after the next start (under the same delivery id). Call it before the writer stops."""
        tasks = [t for t in (self._task, *self._inflight.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()

    def wake(self) -> None:
        """Ask for prompt delivery: the pending set is read again and what is due is sent now,
        not at the next poll. Safe from any thread, and before :meth:`start` (a no-op)."""
        self._reload = True
        loop, kick = self._loop, self._kick
        if loop is None or kick is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(kick.set)

    @property
    def scheduled(self) -> int:
        """Deliveries this task knows to be pending, in flight or waiting."""
        return len(self._due) + len(self._inflight)

    async def _run(self) -> None:
        assert self._kick is not None
        next_poll = 0.0
        while True:
            if self._reload or time.monotonic() >= next_poll:
                self._reload = False
                next_poll = time.monotonic() + self.poll_s
                try:
                    await self._refresh()
                except Exception as exc:  # the store is busy or gone: try again next poll
                    log.error("reading the pending webhook deliveries failed: %s", exc)
            self._launch_due()
            wait = next_poll - time.monotonic()
            if self._due and len(self._inflight) < self.concurrency:
                wait = min(wait, (min(self._due.values()) - time.time_ns()) / NS_PER_S)
            self._kick.clear()
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._kick.wait(), wait)
            else:
                await asyncio.sleep(0)

    async def _refresh(self) -> None:
        loop = asyncio.get_running_loop()
        pending = await loop.run_in_executor(self.read_pool, self.store.pending_deliveries)
        stored = {delivery.id: delivery.next_ns for delivery in pending}
        for delivery_id in list(self._due):
            if delivery_id not in stored:  # delivered or given up elsewhere
                del self._due[delivery_id]
        for delivery_id, next_ns in stored.items():
            if delivery_id not in self._due and delivery_id not in self._inflight:
                self._due[delivery_id] = next_ns

    def _launch_due(self) -> None:
        now = time.time_ns()
        due = sorted((at, i) for i, at in self._due.items() if at <= now)
        for _, delivery_id in due:
            if len(self._inflight) >= self.concurrency:
                return
            del self._due[delivery_id]
            task = asyncio.create_task(self._deliver(delivery_id))
            self._inflight[delivery_id] = task

    # --- one attempt -----------------------------------------------------------------------

    async def _deliver(self, delivery_id: int) -> None:
        try:
            await self._attempt(delivery_id)
        except asyncio.CancelledError:
            raise
        except Exception:  # kept pending in the store: the next poll picks it up again
            log.exception("webhook delivery dlv_%d failed unexpectedly", delivery_id)
        finally:
            self._inflight.pop(delivery_id, None)
            if self._kick is not None:
                self._kick.set()

    async def _attempt(self, delivery_id: int) -> None:
        loop = asyncio.get_running_loop()
        found = await loop.run_in_executor(self.read_pool, self.store.outgoing, delivery_id)
        if found is None:
            return
        delivery, endpoint, body = found
        if delivery.state != "pending" or endpoint is None:
            return  # delivered or given up meanwhile (a deleted endpoint fails its own)
        if delivery.next_ns > time.time_ns():  # rescheduled meanwhile: not due yet
            self._due[delivery_id] = delivery.next_ns
            return
        attempt = await self._post(endpoint, delivery, body)
        self.attempts += 1
        made = len(delivery.attempts) + 1
        next_ns = 0
        if attempt.status is not None and 200 <= attempt.status < 300:
            state = "delivered"
        elif made >= self.max_attempts:
            state = "failed"
        else:
            state = "pending"
            delay_ns = round(next_delay_s(made, self.backoff_s) * NS_PER_S)
            next_ns = time.time_ns() + delay_ns
        stored = await self.writer.call(
            lambda: self.store.record_attempt(delivery_id, attempt, state, next_ns)
        )
        assert isinstance(stored, Delivery)
        if stored.state == "pending":
            self._due[delivery_id] = stored.next_ns
        elif stored.state == "delivered":
            self.delivered += 1
        else:
            self.failed += 1
            log.warning(
                "webhook delivery %s to endpoint %d failed after %d attempts: %s",
                stored.name,
                stored.endpoint_id,
                len(stored.attempts),
                stored.error,
            )

    async def _post(self, endpoint: Endpoint, delivery: Delivery, body: bytes) -> Attempt:
        assert self._session is not None
        at_ns = time.time_ns()
        timestamp = at_ns // NS_PER_S
        headers = {
            "Content-Type": "application/json",
            "X-Uptally-Timestamp": str(timestamp),
            "X-Uptally-Signature": sign(endpoint.secret, timestamp, body),
            "X-Uptally-Delivery": delivery.name,
        }
        started = time.perf_counter()
        status: int | None = None
        error = ""
        try:
            async with self._session.post(
                endpoint.url, data=body, headers=headers, allow_redirects=False
            ) as response:
                status = response.status  # the answer; its body is not read
        except TimeoutError:
            error = f"no answer in {self.timeout_s:g} s"
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            error = _describe(exc)
        took_ms = round((time.perf_counter() - started) * 1000)
        if status is not None and not 200 <= status < 300:
            error = f"HTTP {status}"
        return Attempt(at_ns, status, error[:MAX_ERROR], took_ms)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
