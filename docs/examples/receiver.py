"""A receiver of Uptally webhooks: checks the signature and the timestamp, then handles each
delivery once (Uptally delivers at least once: the same X-Uptally-Delivery may come again).

    UPTALLY_WEBHOOK_SECRET=whsec_... python receiver.py --port 9000

Standard library only. Keep the delivery ids you handled in your database in production (this
sample keeps them in memory), and answer fast: a 2xx within 10 s, or Uptally tries again.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: how far the X-Uptally-Timestamp may lie from this machine's clock, seconds
TOLERANCE_S = 300


def verify(
    secret: str,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now_s: float | None = None,
    tolerance_s: float = TOLERANCE_S,
) -> bool:
    """True if ``signature`` is ``sha256=`` and the hex HMAC-SHA256, keyed by the endpoint's
    secret, of ``"<timestamp>.<body>"``, and ``timestamp`` (Unix seconds) is recent."""
    if not timestamp or not signature or not timestamp.isascii() or not timestamp.isdigit():
        return False
    now_s = time.time() if now_s is None else now_s
    if abs(now_s - int(timestamp)) > tolerance_s:
        return False  # an old request replayed, or a clock far off
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    expected = "sha256=" + digest.hexdigest()
    # constant time: never compare signatures with ==
    return hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace"))


class Receiver(ThreadingHTTPServer):
    """An HTTP server that calls ``handle(event)`` once per delivery it verified."""

    def __init__(
        self, address: tuple[str, int], secret: str, handle: Callable[[dict[str, Any]], None]
    ) -> None:
        super().__init__(address, Handler)
        self.secret = secret
        self.handle = handle
        self.handled: set[str] = set()  # delivery ids; in production: a table with a key
        self.lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:  # the name http.server calls
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        timestamp = self.headers.get("X-Uptally-Timestamp")
        signature = self.headers.get("X-Uptally-Signature")
        delivery = self.headers.get("X-Uptally-Delivery", "")
        if not verify(self.server.secret, timestamp, signature, body):
            return self.answer(401)  # not from Uptally, or replayed: not retried usefully
        with self.server.lock:  # one delivery handled once, even if it comes twice at once
            if delivery in self.server.handled:
                return self.answer(204)  # a retry of what was handled: just acknowledge
            try:
                self.server.handle(json.loads(body))
            except Exception:
                return self.answer(500)  # not handled: Uptally tries again later
            self.server.handled.add(delivery)
        self.answer(204)

    def answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet; log to your own logger instead


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    args = parser.parse_args()
    secret = os.environ["UPTALLY_WEBHOOK_SECRET"]

    def handle(event: dict[str, Any]) -> None:
        print(event["created_at"], event["tenant"], event["type"], json.dumps(event["data"]))

    Receiver((args.host, args.port), secret, handle).serve_forever()


if __name__ == "__main__":
    main()
