"""Every error answer is JSON ``{"error": code, "detail": text}``.

Handlers raise :class:`ApiError`; :func:`error_middleware` renders it, and renders aiohttp's
own HTTP errors (unknown route, wrong method, body too large) the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

log = logging.getLogger("uptally.server")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, detail: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = dict(headers or {})


def error_body(
    status: int, code: str, detail: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.json_response({"error": code, "detail": detail}, status=status, headers=headers)


_AIOHTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    400: "bad_request",
}

_BODY_HEADERS = {"content-type", "content-length", "content-encoding"}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_body(exc.status, exc.code, exc.detail, exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _AIOHTTP_CODES.get(exc.status, "error")
        # keep what the answer means (Allow on a 405), not how aiohttp's text body was framed
        headers = {k: v for k, v in exc.headers.items() if k.lower() not in _BODY_HEADERS}
        return error_body(exc.status, code, exc.reason, headers)
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return error_body(500, "internal", "internal server error")
