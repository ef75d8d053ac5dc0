"""The LMDB store (see ``core/store/store.py`` until it is split into tables)."""

from core.store.store import (
    _U32,
    DEVSTATE_DTYPE,
    NS_PER_MS,
    NS_PER_S,
    SCHEMA_VERSION,
    TOKEN_SCOPES,
    CommitResult,
    Drained,
    Prepared,
    ResizeLock,
    Store,
    StoreError,
    Tenant,
    Token,
    UnknownTenant,
    empty_devstate,
)

__all__ = [
    "_U32",
    "DEVSTATE_DTYPE",
    "NS_PER_MS",
    "NS_PER_S",
    "SCHEMA_VERSION",
    "TOKEN_SCOPES",
    "CommitResult",
    "Drained",
    "Prepared",
    "ResizeLock",
    "Store",
    "StoreError",
    "Tenant",
    "Token",
    "UnknownTenant",
    "empty_devstate",
]
