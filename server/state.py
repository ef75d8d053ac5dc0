"""What the handlers share: one typed app key to one state object."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from aiohttp import web

from core.store import Store
from server.config import Config
from server.metrics import Metrics
from server.ratelimit import RateLimiter
from server.watch import Watcher
from server.webhooks import Deliverer
from server.writer import Writer


@dataclass
class ServerState:
    config: Config
    store: Store
    writer: Writer
    metrics: Metrics
    pool: ThreadPoolExecutor  # decoding for ingest
    read_pool: ThreadPoolExecutor  # queries of the read API
    limiter: RateLimiter
    #: sends the webhook outbox; whoever emits events calls ``deliverer.wake()``
    deliverer: Deliverer
    #: ingest requests past their checks and not yet answered (the event loop's own count)
    inflight: int = 0
    watcher: Watcher | None = None


STATE: web.AppKey[ServerState] = web.AppKey("state", ServerState)
CONFIG: web.AppKey[Config] = web.AppKey("config", Config)
