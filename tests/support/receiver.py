"""A webhook receiver on 127.0.0.1 for tests: it answers each POST as told, keeps what it got
(headers, body, its own clock at arrival) and lets a test await the n-th arrival."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

#: an answer that never comes (until the receiver stops): the sender's timeout must end it
HANG = -1


@dataclass
class Hit:
    at: float  # the receiver's monotonic clock when the request arrived
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def delivery(self) -> str:
        return self.headers["X-Uptally-Delivery"]


class Receiver:
    """``answer(n, hit)`` gives the status of the n-th request (from 0), or :data:`HANG`."""

    def __init__(self, answer: Callable[[int, Hit], int] = lambda n, hit: 200) -> None:
        self.answer = answer
        self.hits: list[Hit] = []
        self._arrived = asyncio.Condition()
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def _handle(self, request: web.Request) -> web.Response:
        hit = Hit(time.monotonic(), request.path, dict(request.headers), await request.read())
        n = len(self.hits)
        async with self._arrived:
            self.hits.append(hit)
            self._arrived.notify_all()
        status = self.answer(n, hit)
        if status == HANG:
            await self._release.wait()
            status = 200
        return web.Response(status=status, text="ok")

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/{path:.*}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self._release.set()
        assert self._runner is not None
        await self._runner.cleanup()

    async def wait_for(self, count: int, timeout: float = 20.0) -> list[Hit]:
        """The first ``count`` hits, once they have arrived (TimeoutError after ``timeout``)."""
        await self.wait_until(lambda hits: len(hits) >= count, timeout)
        return self.hits[:count]

    async def wait_until(self, done: Callable[[list[Hit]], bool], timeout: float = 20.0) -> None:
        """Return once ``done(hits)`` holds, checked at each arrival."""
        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(lambda: done(self.hits)), timeout)
