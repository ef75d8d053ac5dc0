"""Bearer tokens: who may ingest for a tenant, who may read which tenants."""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor

from aiohttp import web

from core.store import Store, Token
from server.errors import ApiError


def bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return None
    return secret.strip()


async def authenticate(request: web.Request, store: Store, pool: Executor) -> Token:
    """The request's live token; raises 401 when missing, unknown or revoked. The token is
    read from the store in ``pool``, never on the event loop."""
    secret = bearer(request)
    token = (
        await asyncio.get_running_loop().run_in_executor(pool, store.authenticate, secret)
        if secret
        else None
    )
    if token is None:
        raise ApiError(
            401,
            "unauthorized",
            "missing, unknown or revoked token" if secret else "missing bearer token",
            headers={"WWW-Authenticate": 'Bearer realm="uptally"'},
        )
    return token


def require_reader(token: Token, tenant_id: int) -> None:
    """403 unless the token may read the tenant (``Token.may_read``)."""
    if not token.may_read(tenant_id):
        raise ApiError(403, "forbidden", "this token may not read this tenant")
