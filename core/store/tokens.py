"""The tokens table: ``tokens`` (id -> record) and ``token_hashes`` (SHA-256 -> id).

Only the SHA-256 of a secret is stored. Every lookup reads the store, so a revocation by
another process takes effect at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import lmdb
import msgpack

from core.store.slab import ID_VALUE, TOKEN_KEY, Slab, last_id

TOKEN_SCOPES = ("ingest", "read", "staff")


def check_scope(tenant_id: int | None, scope: str) -> None:
    """A ValueError unless ``scope`` is one of :data:`TOKEN_SCOPES` and the token belongs to
    a tenant exactly when it is not a staff token."""
    if scope not in TOKEN_SCOPES:
        raise ValueError(f"scope must be one of {', '.join(TOKEN_SCOPES)}")
    if (scope == "staff") != (tenant_id is None):
        raise ValueError("staff tokens belong to no tenant; others to exactly one")


@dataclass
class Token:
    """An API credential. Only the SHA-256 of the secret is stored, with a short prefix of
    the secret for people to recognise it by."""

    id: int
    tenant_id: int | None
    scope: str  # "ingest", "read" (one tenant) or "staff" (every tenant)
    prefix: str
    digest: bytes
    created_ns: int
    revoked_ns: int = 0

    def may_read(self, tenant_id: int) -> bool:
        """Staff read every tenant; a tenant's read token reads only that tenant; an ingest
        token reads nothing. The read API and the dashboard both ask this."""
        return self.scope == "staff" or (self.scope == "read" and self.tenant_id == tenant_id)

    def to_record(self) -> bytes:
        return msgpack.packb(
            [self.tenant_id, self.scope, self.prefix, self.digest, self.created_ns, self.revoked_ns]
        )

    @classmethod
    def from_record(cls, token_id: int, data: bytes) -> Token:
        return cls(token_id, *msgpack.unpackb(data))


class TokenTable:
    """Creates, revokes and looks up tokens; holds nothing in memory."""

    def __init__(self, slab: Slab) -> None:
        self.slab = slab

    def add(self, tenant_id: int | None, scope: str) -> tuple[str, Token]:
        """A new token of ``scope``: its secret (shown once) and its record. The caller has
        checked that the tenant exists."""
        check_scope(tenant_id, scope)
        secret = "upt_" + secrets.token_urlsafe(32)
        digest = hashlib.sha256(secret.encode()).digest()

        def work(txn: lmdb.Transaction) -> Token:
            tokens = self.slab.db[b"tokens"]
            token_id = last_id(txn, tokens, TOKEN_KEY) + 1
            token = Token(token_id, tenant_id, scope, secret[4:12], digest, time.time_ns())
            txn.put(TOKEN_KEY.pack(token_id), token.to_record(), db=tokens)
            txn.put(digest, ID_VALUE.pack(token_id), db=self.slab.db[b"token_hashes"])
            return token

        return secret, self.slab.write(work)

    def revoke(self, token_id: int) -> Token:
        def work(txn: lmdb.Transaction) -> Token:
            tokens = self.slab.db[b"tokens"]
            raw = txn.get(TOKEN_KEY.pack(token_id), db=tokens)
            if raw is None:
                raise KeyError(f"no token {token_id}")
            token = Token.from_record(token_id, bytes(raw))
            token.revoked_ns = token.revoked_ns or time.time_ns()
            txn.put(TOKEN_KEY.pack(token_id), token.to_record(), db=tokens)
            return token

        return self.slab.write(work)

    def all(self) -> list[Token]:
        with self.slab.txn() as txn:
            return [
                Token.from_record(TOKEN_KEY.unpack(key)[0], bytes(value))
                for key, value in txn.cursor(db=self.slab.db[b"tokens"])
            ]

    def authenticate(self, secret: str) -> Token | None:
        """The live token with this secret, or None (unknown or revoked). Secrets are ASCII:
        anything else (HTTP header bytes beyond it arrive as surrogates) matches none."""
        if not secret.isascii():
            return None
        digest = hashlib.sha256(secret.encode()).digest()
        with self.slab.txn() as txn:
            raw_id = txn.get(digest, db=self.slab.db[b"token_hashes"])
            if raw_id is None:
                return None
            raw = txn.get(bytes(raw_id), db=self.slab.db[b"tokens"])
        if raw is None:
            return None
        token = Token.from_record(ID_VALUE.unpack(bytes(raw_id))[0], bytes(raw))
        if not hmac.compare_digest(token.digest, digest) or token.revoked_ns:
            return None
        return token
