"""The evaluator: every ``evaluate_interval_s``, one pass over each tenant
(:func:`core.watch.evaluate`), its plans applied by the writer thread in one transaction
with their events, and the webhook deliverer woken.

A pass runs in a process of its own (``spawn``ed on the first pass), over a read-only store
of the same directory: it reads the stored slots only (the day blocks of the last
checkpoint), the incidents and the tenants' settings, as the dashboard does. So it never
holds the server's GIL, which the event loop, the decoding threads and the writer pass
between them for every acknowledgement; the server only hands it each tenant's memory and
its gateways' last batches, and stores the plans that come back. A pass that fails is logged
and tried again at the next tick (a worker that died is started again): the memory of what
was announced only advances with a committed plan.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from core import watch
from core.incidents import Incident
from core.store import Store
from core.tiers import Tier
from core.watch import Plan, WatchMemory
from server.writer import Writer

log = logging.getLogger("uptally.watch")


class Watcher:
    """``in_process`` runs passes in a thread of the server instead (tests of the rules
    that want no second process)."""

    def __init__(
        self,
        store: Store,
        writer: Writer,
        interval_s: float,
        *,
        start_grace_s: float = 0.0,
        on_events: Callable[[], None] | None = None,
        tiers: Mapping[str, Tier] | None = None,
        in_process: bool = False,
    ) -> None:
        self.store = store
        self.writer = writer
        self.interval_s = interval_s
        self.start_grace_s = start_grace_s
        self.on_events = on_events
        self.tiers = dict(tiers) if tiers is not None else dict(store.tenant_table.tiers)
        self.in_process = in_process
        self.memory: dict[int, WatchMemory] = {}
        self._stored: dict[int, dict[str, object]] = {}  # the memory records as stored
        self.passes = 0
        self.last_pass_s = 0.0
        self._pool: Executor | None = None
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
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def _executor(self) -> Executor:
        if self._pool is None:
            if self.in_process:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="uptally-watch")
            else:
                self._pool = ProcessPoolExecutor(
                    1,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_open_reader,
                    initargs=(self.store.path, self.tiers),
                )
        return self._pool

    async def _run(self) -> None:
        await asyncio.sleep(self.start_grace_s)
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.run_once()
            except BrokenProcessPool:
                log.error("the evaluator's process died; a new one takes the next pass")
                self._pool = None
            except Exception:
                log.exception("an evaluation pass failed; the next tick tries again")

    async def run_once(self, now_ns: int | None = None) -> int:
        """One pass over every tenant, its changes stored in one transaction; returns how
        many tenants changed anything (incidents or events)."""
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        plans = []
        pool = self._executor()
        for tenant_id in list(self.store.tenants):
            memory = self._memory(tenant_id)
            seen = dict(self.store.gateway_seen.get(tenant_id, {}))
            resumed = dict(self.store.gateway_resumed.get(tenant_id, {}))
            args = (tenant_id, now_ns, memory, seen, resumed, self.store.opened_ns)
            if self.in_process:
                plan = await loop.run_in_executor(pool, _plan_over, self.store, *args)
            else:
                plan = await loop.run_in_executor(pool, _plan, *args)
            plans.append(plan)
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

    def _memory(self, tenant_id: int) -> WatchMemory:
        memory = self.memory.get(tenant_id)
        if memory is None:
            memory = WatchMemory.from_record(self.store.watch_memory(tenant_id))
            self._stored[tenant_id] = memory.to_record()
        return memory


# --- the evaluator's process -------------------------------------------------------------

_reader: Store | None = None
#: per tenant, the incidents read so far by id: only those that may still change (open, or
#: reaching past the look-back) are read again, and new ones from the greatest id on
_known: dict[tuple[str, int], dict[int, Incident]] = {}  # by (store path, tenant)


def _open_reader(path: str, tiers: Mapping[str, Tier]) -> None:
    global _reader
    _reader = Store(path, readonly=True, tiers=tiers)


def _plan(
    tenant_id: int,
    now_ns: int | None,
    memory: WatchMemory,
    seen: Mapping[str, int],
    resumed: Mapping[str, int],
    started_ns: int,
) -> Plan:
    assert _reader is not None, "the evaluator's process has no store"
    _reader.refresh_changed_tenants()  # tenants added, zones and tiers changed
    return _plan_over(_reader, tenant_id, now_ns, memory, seen, resumed, started_ns)


def _plan_over(
    store: Store,
    tenant_id: int,
    now_ns: int | None,
    memory: WatchMemory,
    seen: Mapping[str, int],
    resumed: Mapping[str, int],
    started_ns: int,
) -> Plan:
    now = time.time_ns() if now_ns is None else now_ns
    tenant = store.tenants[tenant_id]
    # the look-back of the pass itself, which an open incident stretches: an incident that
    # ended within it but before the last pass's slots is still needed
    everything = _incidents(store, tenant_id)
    incidents = watch.relevant(everything, watch.look_back(tenant, now, memory, everything))
    return watch.evaluate(
        store,
        tenant,
        now,
        memory,
        incidents,
        gateway_seen=seen,
        gateway_resumed=resumed,
        started_ns=started_ns,
    )


def _incidents(store: Store, tenant_id: int) -> list[Incident]:
    """The tenant's incidents as stored now, without reading its whole history each pass:
    those once known closed and long ended cannot change (only staff's notes can, which a
    pass does not read), so only the others and the new ones are read."""
    known = _known.get((store.path, tenant_id))
    if known is None:
        known = _known[(store.path, tenant_id)] = {i.id: i for i in store.incidents(tenant_id)}
        return list(known.values())
    horizon = time.time_ns() - 2 * watch.MAX_LOOK_NS
    again = [i.id for i in known.values() if i.is_open or i.end_ns < 0 or i.end_ns > horizon]
    for incident in store.incidents_by_id(tenant_id, again):
        known[incident.id] = incident
    for incident in store.incidents(tenant_id, after=max(known, default=0)):
        known[incident.id] = incident
    return list(known.values())
