"""The single writer: one thread owns every LMDB write transaction.

Requests hand their decoded batches to :meth:`Writer.submit` and wait. The thread takes
whatever batches are waiting (up to ``max_group``), commits them as one fsync'd transaction
(``Store.commit``) and only then resolves each request's future: group commit, so one fsync
serves many requests. Between groups it checkpoints the live state every
``checkpoint_interval_s``: it drains the live state between two groups, a second thread merges
and encodes the day blocks while commits go on, and this thread writes them in one short
transaction. If a commit fails, every request of that group gets the error and
nothing of the group is stored.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from core.batch import Batch
from core.store import CommitResult, Prepared, Store

log = logging.getLogger("uptally.writer")


@dataclass
class _Item:
    tenant_id: int
    batch: Batch
    future: asyncio.Future[CommitResult]
    loop: asyncio.AbstractEventLoop


@dataclass
class GroupStats:
    """What the last groups looked like (read by /metrics)."""

    groups: int = 0
    batches: int = 0
    commit_seconds: float = 0.0
    checkpoints: int = 0
    last_checkpoint_seconds: float = 0.0


@dataclass
class _Call:
    """A write other than a commit (a maintenance window, a device's site): run by the
    writer thread between groups, so every write transaction of the server is its."""

    fn: Callable[[], object]
    future: asyncio.Future[object]
    loop: asyncio.AbstractEventLoop


_STOP = object()

#: Told of every committed group: how many batches it held and how long its commit took (s).
GroupObserver = Callable[[int, float], None]


class Writer:
    def __init__(
        self,
        store: Store,
        *,
        max_group: int = 512,
        checkpoint_interval_s: float = 5.0,
        on_group: GroupObserver | None = None,
    ) -> None:
        self.store = store
        self.max_group = max_group
        self.checkpoint_interval_s = checkpoint_interval_s
        self.stats = GroupStats()
        self._queue: queue.SimpleQueue[_Item | _Call | object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="uptally-writer", daemon=True)
        self._observers: list[GroupObserver] = [on_group] if on_group else []
        self._checkpointer = ThreadPoolExecutor(1, thread_name_prefix="uptally-checkpoint")
        self._pending: Future[Prepared] | None = None
        self._started = 0.0

    def start(self) -> None:
        self._thread.start()

    def submit(self, tenant_id: int, batch: Batch) -> asyncio.Future[CommitResult]:
        """Queue a batch; the future resolves once it is durably committed (or failed)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[CommitResult] = loop.create_future()
        self._queue.put(_Item(tenant_id, batch, future, loop))
        return future

    def call(self, fn: Callable[[], object]) -> asyncio.Future[object]:
        """Queue ``fn`` for the writer thread; the future has its result (or exception)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[object] = loop.create_future()
        self._queue.put(_Call(fn, future, loop))
        return future

    def stop(self) -> None:
        """Finish every queued batch, checkpoint, and end the thread."""
        self._queue.put(_STOP)
        self._thread.join()

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    def _run(self) -> None:
        last_checkpoint = time.monotonic()
        stopping = False
        while not stopping:
            if self._pending is not None:
                timeout = 0.005  # look for the prepared checkpoint soon
            else:
                timeout = max(0.0, last_checkpoint + self.checkpoint_interval_s - time.monotonic())
            try:
                first = self._queue.get(timeout=timeout)
            except queue.Empty:
                first = None
            group: list[_Item] = []
            calls: list[_Call] = []
            for item in self._drain(first):
                if item is _STOP:
                    stopping = True
                elif isinstance(item, _Call):
                    calls.append(item)
                else:
                    assert isinstance(item, _Item)
                    group.append(item)
            if group:
                self._commit(group)
            for call in calls:
                self._call(call)
            if self._pending is not None and (self._pending.done() or stopping):
                self._finish_checkpoint()
            if stopping:
                self._checkpoint_now()
            elif self._pending is None and (
                time.monotonic() - last_checkpoint >= self.checkpoint_interval_s
            ):
                self._start_checkpoint()
                last_checkpoint = time.monotonic()
        self._checkpointer.shutdown(wait=True)

    def _call(self, call: _Call) -> None:
        try:
            result = call.fn()
        except BaseException as exc:  # noqa: BLE001 - the caller hears of it
            call.loop.call_soon_threadsafe(_set_exception, call.future, exc)
        else:
            call.loop.call_soon_threadsafe(_set_result, call.future, result)

    def _start_checkpoint(self) -> None:
        """Drain the live state now (between commits) and merge it in the background."""
        self._started = time.perf_counter()
        try:
            drained = self.store.drain_checkpoint(time.time_ns())
        except Exception as exc:
            log.error("checkpoint drain failed: %s", exc)
            return
        self._pending = self._checkpointer.submit(self.store.prepare_checkpoint, drained)

    def _finish_checkpoint(self) -> None:
        """Write the prepared blocks: one short transaction on this thread."""
        pending, self._pending = self._pending, None
        assert pending is not None
        try:
            self.store.write_checkpoint(pending.result())
        except Exception as exc:  # the live state was rebuilt from the log: retried later
            log.error("checkpoint failed: %s", exc)
            return
        self.stats.checkpoints += 1
        self.stats.last_checkpoint_seconds = time.perf_counter() - self._started

    def _checkpoint_now(self) -> None:
        self._start_checkpoint()
        if self._pending is not None:
            self._finish_checkpoint()

    def _drain(self, first: object) -> list[object]:
        items = [] if first is None else [first]
        while len(items) < self.max_group:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return items

    def _commit(self, group: list[_Item]) -> None:
        started = time.perf_counter()
        try:
            results = self.store.commit([(item.tenant_id, item.batch) for item in group])
        except BaseException as exc:  # noqa: BLE001 - every waiter must hear of it
            log.error("commit of %d batches failed: %s", len(group), exc)
            for item in group:
                item.loop.call_soon_threadsafe(_set_exception, item.future, exc)
            return
        took = time.perf_counter() - started
        self.stats.groups += 1
        self.stats.batches += len(group)
        self.stats.commit_seconds = took
        for observer in self._observers:
            observer(len(group), took)
        for item, result in zip(group, results, strict=True):
            item.loop.call_soon_threadsafe(_set_result, item.future, result)


def _set_result(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():
        future.set_result(result)


def _set_exception(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
