"""The LMDB store: one environment holding every tenant, a small generic layer and tables.

* :mod:`core.store.slab`: the environment, its named databases, map growth, the
  :class:`ResizeLock` every transaction is begun through, the key structs and prefix scans.
* Tables over it, each owning its databases (the layout is in ``docs/storage.md``):
  :mod:`~core.store.tenants` (``tenants``, ``tenant_names``), :mod:`~core.store.tokens`
  (``tokens``, ``token_hashes``), :mod:`~core.store.devices` (``devices``, ``device_ids``,
  ``firmware``, ``gateways``, ``gateway_ids``), :mod:`~core.store.log` (``log``, ``dedupe``,
  ``dedupe_age``), :mod:`~core.store.checkpoints` (``days``, ``daystats``, ``devstate``,
  the checkpoint's cut in ``meta``) and :mod:`~core.store.outbox` (``endpoints``, ``events``,
  ``deliveries``, ``pending_deliveries``: the webhook outbox) and :mod:`~core.store.billing`
  (``subscriptions``, ``invoices``, ``invoice_numbers``, ``closed_months``, ``month_mrr``).
* :class:`Store` (:mod:`core.store.store`) composes them: the writes that span tables
  (commit, checkpoint, registration) are its, and it is what the server, the dashboard and
  the CLI use.

Every write transaction of a running server is its writer thread's, so every table shares
one durability story: a table to come (SLA, incidents, alerts, subscriptions, invoices) is
one more class over the same slab, owning its named databases, written only by the writer
thread, and read through short read transactions anywhere.
"""

from core.store.checkpoints import DEVSTATE_DTYPE, Drained, Prepared, empty_devstate
from core.store.log import CommitResult
from core.store.slab import ResizeLock, StoreError
from core.store.store import SCHEMA_VERSION, Store
from core.store.tenants import Tenant, UnknownDevice, UnknownTenant
from core.store.tokens import TOKEN_SCOPES, Token
from core.times import NS_PER_MS, NS_PER_S

__all__ = [
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
    "UnknownDevice",
    "UnknownTenant",
    "empty_devstate",
]
