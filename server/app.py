"""The aiohttp application: ``create_app(config)`` and ``serve(config)`` on uvloop."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import uvloop
from aiohttp import web

from core.store import Store
from server import api, billing, hooks, incidents, sla
from server.config import Config
from server.errors import error_middleware
from server.ingest import ingest
from server.metrics import Metrics
from server.openapi import openapi
from server.ratelimit import RateLimiter
from server.state import CONFIG, STATE, ServerState
from server.watch import Watcher
from server.webhooks import Deliverer
from server.writer import Writer

log = logging.getLogger("uptally.server")

#: How the app must be served: gzip bodies are decompressed by the ingest handler with a
#: size limit (a gzip bomb gets 413), never by aiohttp.
RUNNER_KWARGS: dict[str, Any] = {"auto_decompress": False}


async def _store_and_writer(app: web.Application) -> AsyncIterator[None]:
    """Open the store and start the writer, then the webhook deliverer; on shutdown, after
    in-flight requests finished, stop the deliverer, let the writer commit everything queued,
    checkpoint, and close the store."""
    config = app[CONFIG]
    store = Store(
        config.data,
        map_size=config.map_size,
        dedupe_window_s=config.dedupe_window_s,
        tiers=config.tiers,
    )
    # what this start replayed from the log goes into the day blocks before anything else, so
    # that crashes in a row do not pile the log up: the next start replays only what came after
    try:
        store.checkpoint_replayed_log(time.time_ns())
    except Exception as exc:  # as the writer does: the log still holds it, retried later
        log.error("checkpoint of the replayed log failed: %s", exc)
    metrics = Metrics(store)
    writer = Writer(
        store,
        max_group=config.max_group,
        checkpoint_interval_s=config.checkpoint_interval_s,
        on_group=metrics.observe_group,
    )
    pool = ThreadPoolExecutor(config.decode_threads, thread_name_prefix="uptally-decode")
    # reads get threads of their own: a long query must not hold up decoding for ingest
    read_pool = ThreadPoolExecutor(config.read_threads, thread_name_prefix="uptally-read")
    writer.start()
    deliverer = Deliverer(
        store,
        writer,
        read_pool,
        backoff_s=config.webhook_backoff_s,
        timeout_s=config.webhook_timeout_s,
        max_attempts=config.webhook_max_attempts,
    )
    await deliverer.start()
    watcher = Watcher(
        store,
        writer,
        config.evaluate_interval_s,
        start_grace_s=config.watch_start_grace_s,
        on_events=deliverer.wake,
    )
    state = ServerState(config, store, writer, metrics, pool, read_pool, RateLimiter(), deliverer)
    state.watcher = watcher
    metrics.watch(watcher, deliverer)
    app[STATE] = state
    watcher.start()
    log.info("store %s open, %d tenants", config.data, len(store.tenants))
    try:
        yield
    finally:
        await watcher.stop()
        await deliverer.stop()  # before the writer, which records its attempts
        pool.shutdown(wait=True)
        read_pool.shutdown(wait=True)
        writer.stop()
        store.close()
        log.info("store closed")


def create_app(config: Config) -> web.Application:
    app = web.Application(middlewares=[error_middleware], client_max_size=config.max_body)
    app[CONFIG] = config
    app.cleanup_ctx.append(_store_and_writer)
    app.router.add_post("/v1/ingest", ingest)
    app.router.add_get("/v1/tenants", api.tenants)
    app.router.add_get("/v1/tenants/{tenant}/devices", api.devices)
    app.router.add_get("/v1/tenants/{tenant}/uptime", api.uptime)
    app.router.add_get("/v1/tenants/{tenant}/outages", api.outages)
    app.router.add_get("/v1/tiers", sla.tiers)
    app.router.add_get("/v1/tenants/{tenant}/sla", sla.sla)
    app.router.add_get("/v1/tenants/{tenant}/sla/history", sla.sla_history)
    app.router.add_get("/v1/tenants/{tenant}/windows", sla.windows)
    app.router.add_post("/v1/tenants/{tenant}/windows", sla.add_window)
    app.router.add_delete("/v1/tenants/{tenant}/windows/{window}", sla.delete_window)
    app.router.add_get("/v1/tenants/{tenant}/devices/{device}", sla.device_history)
    app.router.add_patch("/v1/tenants/{tenant}/devices/{device}", sla.set_device)
    app.router.add_post("/v1/tenants/{tenant}/devices/{device}/replace", sla.replace_device)
    app.router.add_get("/v1/tenants/{tenant}/webhooks", hooks.endpoints)
    app.router.add_post("/v1/tenants/{tenant}/webhooks", hooks.add_endpoint)
    app.router.add_delete("/v1/tenants/{tenant}/webhooks/{endpoint}", hooks.delete_endpoint)
    app.router.add_post("/v1/tenants/{tenant}/webhooks/{endpoint}/test", hooks.test_endpoint)
    app.router.add_get("/v1/tenants/{tenant}/events", hooks.events)
    app.router.add_get("/v1/tenants/{tenant}/incidents", incidents.incidents)
    app.router.add_get("/v1/tenants/{tenant}/incidents/compliance", incidents.compliance)
    app.router.add_get("/v1/tenants/{tenant}/incidents/{incident}", incidents.incident)
    app.router.add_post(
        "/v1/tenants/{tenant}/incidents/{incident}/acknowledge", incidents.acknowledge
    )
    app.router.add_post("/v1/tenants/{tenant}/incidents/{incident}/resolve", incidents.resolve)
    app.router.add_get("/v1/tenants/{tenant}/alert-rules", incidents.alert_rules)
    app.router.add_put("/v1/tenants/{tenant}/alert-rules", incidents.set_alert_rules)
    app.router.add_get("/v1/tenants/{tenant}/subscription", billing.subscription)
    app.router.add_post("/v1/tenants/{tenant}/subscription", billing.add_subscription_event)
    app.router.add_post("/v1/months/{month}/close", billing.close_month)
    app.router.add_get("/v1/tenants/{tenant}/invoices", billing.invoices)
    app.router.add_get("/v1/tenants/{tenant}/invoices/{number}", billing.invoice)
    app.router.add_get("/v1/revenue", billing.revenue)
    app.router.add_get("/v1/what-if", billing.what_if)
    app.router.add_get("/healthz", api.healthz)
    app.router.add_get("/metrics", api.metrics)
    app.router.add_get("/v1/openapi.json", openapi)
    return app


def serve(config: Config) -> None:
    """Run until SIGTERM/SIGINT: then stop accepting, finish in-flight requests and commits."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # The event loop, the decode threads and the writer hand the GIL to each other several
    # times per request; Python's default 5 ms switch interval would add that much latency.
    sys.setswitchinterval(config.switch_interval_s)
    web.run_app(
        create_app(config),
        host=config.host,
        port=config.port,
        access_log=logging.getLogger("aiohttp.access") if config.access_log else None,
        loop=uvloop.new_event_loop(),
        shutdown_timeout=30.0,
        print=lambda msg: log.info("%s", msg),
        **RUNNER_KWARGS,
    )
