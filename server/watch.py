"""The evaluator: every ``evaluate_interval_s``, one pass over each tenant
(:func:`core.watch.evaluate`) in a thread of its own, its plan applied by the writer thread
in one transaction with its events, and the webhook deliverer woken.

It reads the stored slots only (the day blocks of the last checkpoint), so a pass costs the
ingest path nothing but the GIL it shares; its writes are one small transaction per tenant
that changed, between the writer's groups. A pass that fails is logged and tried again at
the next tick: the memory of what was announced only advances with a committed plan.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from core import watch
from core.store import Store
from core.watch import WatchMemory
from server.writer import Writer

log = logging.getLogger("uptally.watch")


class Watcher:
    def __init__(
        self,
        store: Store,
        writer: Writer,
        interval_s: float,
        *,
        start_grace_s: float = 0.0,
        on_events: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.writer = writer
        self.interval_s = interval_s
        self.start_grace_s = start_grace_s
        self.on_events = on_events
        self.memory: dict[int, WatchMemory] = {}
        self._stored: dict[int, dict[str, object]] = {}  # the memory records as stored
        self.passes = 0
        self.last_pass_s = 0.0
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="uptally-watch")
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._pool.shutdown(wait=True)

    async def _run(self) -> None:
        await asyncio.sleep(self.start_grace_s)
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.run_once()
            except Exception:
                log.exception("an evaluation pass failed; the next tick tries again")

    async def run_once(self, now_ns: int | None = None) -> int:
        """One pass over every tenant, its changes stored in one transaction; returns how
        many tenants changed anything (incidents or events)."""
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        plans = []
        for tenant_id in list(self.store.tenants):
            plans.append(await loop.run_in_executor(self._pool, self._evaluate, tenant_id, now_ns))
        # stored: what changed, and the memory that changed (the states seen and the time of
        # the pass are kept in this process only; a restart looks back from the last stored)
        dirty = [
            p
            for p in plans
            if p.changes_anything or p.memory.to_record() != self._stored.get(p.tenant_id)
        ]
        if dirty:
            now = dirty[0].now_ns
            rows = [(p.tenant_id, p.ops, p.memory.to_record(), p.events) for p in dirty]
            await self.writer.call(lambda: self.store.apply_watch(rows, now))
            for p in dirty:
                self._stored[p.tenant_id] = p.memory.to_record()
        for p in plans:
            self.memory[p.tenant_id] = p.memory  # only once what it announced is stored
        self.passes += 1
        self.last_pass_s = time.perf_counter() - started
        changed = sum(p.changes_anything for p in plans)
        if changed and self.on_events is not None:
            self.on_events()
        return changed

    def _evaluate(self, tenant_id: int, now_ns: int | None) -> watch.Plan:
        store = self.store
        memory = self.memory.get(tenant_id)
        if memory is None:
            record = store.watch_memory(tenant_id)
            memory = WatchMemory.from_record(record)
            self._stored[tenant_id] = memory.to_record()
        now = time.time_ns() if now_ns is None else now_ns
        tenant = store.tenants[tenant_id]
        # the look-back of the pass itself, which an open incident stretches: an incident
        # that ended within it but before the last pass's slots is still needed
        everything = store.incidents(tenant_id)
        incidents = watch.relevant(everything, watch.look_back(tenant, now, memory, everything))
        return watch.evaluate(
            store,
            tenant,
            now,
            memory,
            incidents,
            gateway_seen=store.gateway_seen.get(tenant_id, {}),
            gateway_resumed=store.gateway_resumed.get(tenant_id, {}),
            started_ns=store.opened_ns,
        )
