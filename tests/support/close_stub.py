"""A stand-in for the server's ``POST /v1/months/{YYYY-MM}/close`` until that route is on
this branch: a tiny aiohttp app on 127.0.0.1, in a thread, that answers the documented
contract (200 ``{"numbers": [...]}``, or ``{"numbers": [], "already_closed": true}``; 409
``{"detail": reason}`` when the month cannot be closed yet; 401/403 for a token that is not
staff). Each close runs ``Store.close_month`` in a child process on the store directory, as
the server's writer would (LMDB opens a path once per process, and the test's own process
holds the dashboard's read-only store).

Once the route is merged, tests use ``server.testing.ProcessServer`` instead.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from aiohttp import web

from server.testing import REPO, free_port

CLOSE = """
import json, sys
from core.store import Store
from core.zones import parse_month

data, month, prefix, secret = sys.argv[1:5]
with Store(data) as store:
    token = store.authenticate(secret)
    if token is None:
        print(json.dumps({"status": 401, "detail": "unknown or revoked token"}))
        raise SystemExit
    if token.scope != "staff":
        print(json.dumps({"status": 403, "detail": "closing a month needs a staff token"}))
        raise SystemExit
    year, number = parse_month(month)
    was_closed = month in store.closed_months()
    try:
        issued = store.close_month(year, number, prefix=prefix)
    except ValueError as exc:
        print(json.dumps({"status": 409, "detail": str(exc)}))
        raise SystemExit
    answer = {"status": 200, "numbers": [r["number"] for r in issued]}
    if was_closed:
        answer["already_closed"] = True
    print(json.dumps(answer))
"""


class CloseStub:
    """The stand-in server; ``url`` to point ``UPTALLY_API`` at, ``requests`` the bodies it
    was sent (month, JSON body, bearer secret)."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.requests: list[tuple[str, dict[str, Any], str]] = []
        self.loop = asyncio.new_event_loop()
        self.runner: web.AppRunner | None = None
        started = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        self.thread.start()
        assert started.wait(30), "the close stub did not start"

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_post("/v1/months/{month}/close", self._close)
        self.runner = web.AppRunner(app)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", self.port)
        self.loop.run_until_complete(site.start())
        started.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self.runner.cleanup())

    async def _close(self, request: web.Request) -> web.Response:
        month = request.match_info["month"]
        body = await request.json() if request.can_read_body else {}
        secret = request.headers.get("Authorization", "").removeprefix("Bearer ")
        self.requests.append((month, body, secret))
        prefix = body.get("prefix") or "INV"
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", CLOSE, str(self.data), month, prefix, secret],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            return web.json_response({"detail": done.stderr.strip()[-500:]}, status=500)
        answer = json.loads(done.stdout)
        status = answer.pop("status")
        return web.json_response(answer, status=status)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)
        self.loop.close()
