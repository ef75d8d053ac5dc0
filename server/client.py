"""A small gateway client: batches frames and sends them with retries that never double-count.

Each batch gets the next ``seq``; a retry resends the *same* bytes with the same ``seq``, so
the server recognises it as a duplicate if an earlier attempt was in fact committed. It
retries 429, 503 and connection errors with exponential backoff (honouring ``Retry-After``),
and never retries any other 4xx: those mean the batch itself is wrong.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiohttp
import msgpack

RETRY_STATUSES = frozenset({429, 503})


class GatewayError(Exception):
    """The server refused the batch (a 4xx other than 429): resending cannot help."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status} {body.get('error')}: {body.get('detail')}")
        self.status = status
        self.body = body


class GatewayClient:
    def __init__(
        self,
        url: str,
        token: str,
        gateway: str,
        *,
        session: aiohttp.ClientSession | None = None,
        seq: int | None = None,
        compress: bool = False,
        max_attempts: int = 10,
        base_delay: float = 0.1,
        max_delay: float = 30.0,
        timeout: float = 30.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.url = url.rstrip("/") + "/v1/ingest"
        self.gateway = gateway
        # a restarted gateway that lost its counter must not reuse old numbers
        self.seq = time.time_ns() if seq is None else seq
        self.compress = compress
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._sleep = sleep
        self._headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/msgpack",
        }
        if compress:
            self._headers["Content-Encoding"] = "gzip"
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session = session
        self._own_session = session is None
        self.retries = 0

    async def __aenter__(self) -> GatewayClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    def encode(self, frames: Sequence[Any], **extra: Any) -> tuple[int, bytes]:
        """The next batch body and its seq (bodies can be prepared ahead of sending)."""
        self.seq += 1
        body = msgpack.packb({"gateway": self.gateway, "seq": self.seq, "frames": frames, **extra})
        return self.seq, gzip.compress(body, 1) if self.compress else body

    async def send(self, frames: Sequence[Any]) -> dict[str, Any]:
        """Send one batch; returns the server's answer once it is durably committed."""
        _, body = self.encode(frames)
        return await self.send_body(body)

    async def send_body(self, body: bytes) -> dict[str, Any]:
        """Send an encoded body, retrying as described in the module docstring."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        delay = self.base_delay
        for attempt in range(1, self.max_attempts + 1):
            wait: float | None = None
            try:
                async with self._session.post(
                    self.url, data=io.BytesIO(body), headers=self._headers, timeout=self._timeout
                ) as response:
                    answer = await _json(response)
                    if response.status == 200:
                        return answer
                    if response.status not in RETRY_STATUSES:
                        raise GatewayError(response.status, answer)
                    wait = _retry_after(response.headers.get("Retry-After"))
                    if attempt == self.max_attempts:
                        raise GatewayError(response.status, answer)
            except (TimeoutError, aiohttp.ClientConnectionError):
                if attempt == self.max_attempts:
                    raise
            self.retries += 1
            jittered = delay * (0.5 + random.random() / 2)
            await self._sleep(max(wait or 0.0, jittered))
            delay = min(delay * 2, self.max_delay)
        raise AssertionError("unreachable")


async def _json(response: aiohttp.ClientResponse) -> dict[str, Any]:
    raw = await response.read()
    if response.content_type == "application/msgpack":
        return dict(msgpack.unpackb(raw))
    try:
        return dict(await response.json(content_type=None))
    except ValueError:
        return {"error": "unreadable", "detail": raw[:200].decode(errors="replace")}


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
