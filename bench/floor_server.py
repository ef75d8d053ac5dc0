"""The HTTP floor of the e2e benchmark: aiohttp on uvloop doing no work at all.

``POST /v1/ingest`` reads the whole body, finds the frame count in the ``frames`` array header
(no decoding, no judging, no store) and answers as the real server does; ``/healthz`` and
``/metrics`` answer as the e2e bench expects. Run against the same load generator in the same
run, it shows how many requests per second this machine's HTTP stack carries before Uptally
does anything, which bounds what the real server can reach here.

Usage: ``python -m bench.floor_server PORT`` (listens on 127.0.0.1 until SIGTERM).
"""

from __future__ import annotations

import struct
import sys

import msgpack
import uvloop
from aiohttp import web

FRAMES_KEY = b"\xa6frames"


def frame_count(body: bytes) -> int:
    """The item count of the array after the first ``frames`` key, or 0."""
    at = body.find(FRAMES_KEY)
    if at < 0 or at + 7 >= len(body):
        return 0
    head = at + len(FRAMES_KEY)
    b = body[head]
    if 0x90 <= b <= 0x9F:
        return b & 0x0F
    if b == 0xDC:
        return int(struct.unpack_from(">H", body, head + 1)[0])
    if b == 0xDD:
        return int(struct.unpack_from(">I", body, head + 1)[0])
    return 0


async def ingest(request: web.Request) -> web.Response:
    n = frame_count(await request.read())
    answer = {"accepted": n, "rejected": 0, "warnings": 0, "duplicate": False, "errors": []}
    return web.Response(body=msgpack.packb(answer), content_type="application/msgpack")


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "engine": "floor"})


async def metrics(request: web.Request) -> web.Response:
    return web.Response(text="")


def make_app() -> web.Application:
    app = web.Application(client_max_size=64 << 20)
    app.router.add_post("/v1/ingest", ingest)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    return app


def main() -> None:
    port = int(sys.argv[1])
    web.run_app(
        make_app(),
        host="127.0.0.1",
        port=port,
        print=None,
        access_log=None,
        loop=uvloop.new_event_loop(),
    )


if __name__ == "__main__":
    main()
