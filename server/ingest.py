"""``POST /v1/ingest``: the gateway contract of docs/wire-format.md.

Order of checks: token (401/403), content type and encoding (415), rate (429), load (503 when
``max_inflight`` requests are already being read, decoded or committed), size (413), gzip
(400/413), decoding (400/413), rate again (429 if the tenant's batches decoded meanwhile
emptied the bucket). From decoding on, the batch takes the one data path of
``server/pipeline.py``: the answer waits for its durable commit (503 if the store failed:
nothing of the batch was stored).
"""

from __future__ import annotations

import asyncio
import time
import zlib

import msgpack
from aiohttp import web

from server.auth import authenticate
from server.errors import ApiError
from server.pipeline import ingest_batch, rate_limited
from server.state import STATE, ServerState

MSGPACK_TYPES = frozenset({"application/msgpack", "application/x-msgpack"})


async def read_body(request: web.Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes ``limit`` bytes."""
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "body_too_large", f"body is over the limit of {limit} bytes")
    chunks = []
    size = 0
    async for chunk in request.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "body_too_large", f"body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def gunzip(data: bytes, limit: int) -> bytes:
    """Decompress gzip (any number of members) without ever holding more than ``limit``
    bytes of output: a gzip bomb is refused after ``limit + 1`` bytes."""
    out = bytearray()
    while data:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            out += inflater.decompress(data, limit + 1 - len(out))
        except zlib.error as exc:
            raise ApiError(400, "bad_gzip", f"body is not valid gzip: {exc}") from exc
        if len(out) > limit:
            raise ApiError(
                413, "body_too_large", f"decompressed body is over the limit of {limit} bytes"
            )
        if not inflater.eof:
            raise ApiError(400, "bad_gzip", "gzip body is truncated")
        data = inflater.unused_data
    return bytes(out)


def wants_msgpack(accept: str) -> bool:
    """Whether an ``Accept`` header asks for msgpack over JSON: a msgpack type with a q above
    0 and above ``application/json``'s (or equal to it and listed first). Media types are
    compared without regard to case; wildcards ask for neither, and JSON stays the default."""
    best: dict[str, tuple[float, int]] = {}
    for pos, item in enumerate(accept.split(",")):
        kind, *params = (part.strip() for part in item.split(";"))
        kind = kind.lower()
        if kind in MSGPACK_TYPES:
            kind = "msgpack"
        elif kind != "application/json":
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if kind not in best or q > best[kind][0]:
            best[kind] = (q, -pos)
    mp = best.get("msgpack", (0.0, 0))
    return mp[0] > 0 and mp > best.get("application/json", (0.0, 1))


def respond(request: web.Request, body: dict[str, object], status: int = 200) -> web.Response:
    if wants_msgpack(request.headers.get("Accept", "")):
        return web.Response(
            body=msgpack.packb(body), status=status, content_type="application/msgpack"
        )
    return web.json_response(body, status=status)


async def ingest(request: web.Request) -> web.Response:
    state: ServerState = request.app[STATE]
    started = time.perf_counter()
    try:
        return await _ingest(request, state)
    except ApiError as exc:
        state.metrics.batches.labels(exc.code).inc()
        raise
    finally:  # every answer, refusals included
        state.metrics.ack_seconds.observe(time.perf_counter() - started)


async def _ingest(request: web.Request, state: ServerState) -> web.Response:
    config, store = state.config, state.store
    token = await authenticate(request, store, state.pool)
    if token.scope != "ingest" or token.tenant_id is None:
        raise ApiError(403, "forbidden", "this token may not ingest")
    tenant_id = token.tenant_id
    if tenant_id not in store.tenants:  # added by another process since
        await asyncio.get_running_loop().run_in_executor(state.pool, store.refresh_tenants)
    tenant = store.tenants[tenant_id]
    if request.content_type not in MSGPACK_TYPES:
        raise ApiError(415, "unsupported_media_type", "Content-Type must be application/msgpack")
    # every Content-Encoding header counts: two of them list two codings
    encoding = ", ".join(request.headers.getall("Content-Encoding", ["identity"])).strip().lower()
    if encoding not in ("identity", "gzip"):
        raise ApiError(415, "unsupported_encoding", "Content-Encoding must be gzip or absent")
    tier = config.tier(tenant.plan)
    wait = state.limiter.retry_after(tenant_id, tier.rate_fps, tier.burst_frames)
    if wait is not None:
        raise rate_limited(tier, wait)
    if state.inflight >= config.max_inflight:
        raise ApiError(
            503,
            "overloaded",
            f"the server holds {state.inflight} requests already; retry later",
            headers={"Retry-After": str(config.retry_after_s)},
        )
    state.inflight += 1
    try:
        body = await read_body(request, config.max_body)
        if encoding == "gzip":
            body = await asyncio.get_running_loop().run_in_executor(
                state.pool, gunzip, body, config.max_body
            )
        result = await ingest_batch(state, tenant_id, tier, body, time.time_ns())
    finally:
        state.inflight -= 1
    return respond(request, result.as_dict())
