"""Server configuration: a TOML file, then ``UPTALLY_*`` environment overrides.

Every setting is documented in ``docs/operations.md``. Example::

    [server]
    host = "127.0.0.1"
    port = 8080
    data = "data"

    [ingest]
    max_body = 16777216
    checkpoint_interval_s = 5.0

    [tiers.standard]
    rate_fps = 50000     # frames per second, sustained
    burst_s = 2.0        # bucket size, in seconds of rate
    uptime_target = "99.5"

    [upstream]
    uptime_guarantee = "99.95"

    [webhooks]
    backoff_s = 60.0     # the contract's values; tests shorten them
    timeout_s = 10.0
    max_attempts = 8

    [billing]
    invoice_prefix = "INV"

    [revenue]
    arr_multiple = "5"   # a decimal string or an integer, never a float

    [costs]              # core.billing.revenue.parse_costs; none: costs are not known
    currency = "USD"
    per_device_month = "12.5"

``[tiers.NAME]`` (or its older name ``[plans.NAME]``) and ``[upstream]`` are read by
:func:`core.tiers.parse_catalog`, ``[costs]`` by :func:`core.billing.revenue.parse_costs`;
each names the bad key of a refused file.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from core.billing.revenue import CostModel, parse_costs
from core.ingest import Limits
from core.store.store import PREFIX
from core.tiers import (
    DEFAULT_TIERS,
    KINDS,
    Catalog,
    Tier,
    decimal_of,
    parse_catalog,
    table,
    tier_of,
    typed,
)
from core.times import S_PER_DAY
from core.webhooks import BACKOFF_S, MAX_ATTEMPTS, TIMEOUT_S


@dataclass(frozen=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 8080
    data: str = "data"
    map_size: int = 1 << 30
    max_body: int = 16 << 20
    max_frames: int = 100_000
    max_future_skew_s: int = 300
    max_backfill_s: int = 7 * S_PER_DAY
    dedupe_window_s: int = S_PER_DAY
    checkpoint_interval_s: float = 5.0
    max_group: int = 512
    decode_threads: int = 2
    read_threads: int = 2
    retry_after_s: int = 1
    max_inflight: int = 256
    access_log: bool = False
    switch_interval_s: float = 0.0001
    #: ``[watch]``: how often the evaluator passes over every tenant, and how long after a
    #: start it waits first (so that gateways' buffered batches are in before it judges)
    evaluate_interval_s: float = 10.0
    watch_start_grace_s: float = 300.0
    tiers: Mapping[str, Tier] = field(default_factory=lambda: dict(DEFAULT_TIERS))
    #: the platform vendor's monthly uptime guarantee, percent (``[upstream]``), if stated
    upstream: Decimal | None = None
    #: ``[webhooks]``: the wait after a delivery's first failed attempt (then doubling), how
    #: long an endpoint has to answer, attempts at most. The defaults are the service
    #: contract's (1 min, 10 s, 8); only tests shorten them.
    webhook_backoff_s: float = float(BACKOFF_S)
    webhook_timeout_s: float = float(TIMEOUT_S)
    webhook_max_attempts: int = MAX_ATTEMPTS
    #: ``[billing]``: the prefix of the invoice numbers a close issues (``uptally
    #: close-month --config`` and ``POST /v1/months/{YYYY-MM}/close`` without one)
    invoice_prefix: str = "INV"
    #: ``[revenue]``: valuation = ARR x this multiple (a decimal, never a float)
    arr_multiple: Decimal = Decimal(5)
    #: ``[costs]``: what serving costs (``parse_costs``); None when the file gives none, and
    #: the revenue figures then have no cost or margin
    costs: CostModel | None = None

    def tier(self, name: str) -> Tier:
        return tier_of(self.tiers, name)

    @property
    def catalog(self) -> Catalog:
        """The tiers and the upstream guarantee, which flags the tiers promising more."""
        return Catalog(self.tiers, self.upstream)

    @property
    def limits(self) -> Limits:
        """What one batch may hold (``[ingest]``)."""
        return Limits(self.max_frames, self.max_future_skew_s, self.max_backfill_s)

    @classmethod
    def load(cls, path: str | None = None, env: Mapping[str, str] | None = None) -> Config:
        """Defaults, then the TOML file's values, then ``UPTALLY_<NAME>`` variables."""
        values: dict[str, Any] = {}
        money: dict[str, Any] = {}  # [billing], [revenue], [costs]: checked as parsed
        catalog = Catalog()
        if path:
            with open(path, "rb") as file:
                doc = tomllib.load(file)
            sections = {
                "server",
                "ingest",
                "store",
                "watch",
                "plans",
                "tiers",
                "upstream",
                "webhooks",
                "billing",
                "revenue",
                "costs",
            }
            unknown = set(doc) - sections
            if unknown:
                raise ValueError(f"unknown sections: {', '.join(sorted(unknown))}")
            for section in ("server", "ingest", "store", "watch"):
                values.update(table(section, doc.get(section, {})))
            values.update(_webhooks(table("webhooks", doc.get("webhooks", {}))))
            money.update(_billing(table("billing", doc.get("billing", {}))))
            money.update(_revenue(table("revenue", doc.get("revenue", {}))))
            if "costs" in doc:
                money["costs"] = parse_costs(doc["costs"])
            catalog = parse_catalog(doc)
        unknown = set(values) - ({f.name for f in dataclasses.fields(cls)} - _NOT_SETTINGS)
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
        defaults = cls()
        values = {
            k: _in_range(k, k, typed(k, v, type(getattr(defaults, k)))) for k, v in values.items()
        }
        env = os.environ if env is None else env
        for f in dataclasses.fields(cls):
            name = f"UPTALLY_{f.name.upper()}"
            raw = env.get(name)
            if raw is None or f.name in _NOT_SETTINGS:
                continue
            value = _from_env(name, raw, type(getattr(defaults, f.name)))
            values[f.name] = _in_range(name, f.name, value)
        return cls(tiers=catalog.tiers, upstream=catalog.upstream, **money, **values)


#: ``[webhooks]`` keys, and the fields they set (``UPTALLY_WEBHOOK_BACKOFF_S`` and so on)
_WEBHOOK_KEYS = {"backoff_s", "timeout_s", "max_attempts"}


def _webhooks(section: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(section) - _WEBHOOK_KEYS)
    if unknown:
        raise ValueError(f"unknown settings: {', '.join(f'webhooks.{k}' for k in unknown)}")
    return {f"webhook_{key}": value for key, value in section.items()}


def _billing(section: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(section) - {"invoice_prefix"})
    if unknown:
        raise ValueError(f"unknown settings: {', '.join(f'billing.{k}' for k in unknown)}")
    if "invoice_prefix" not in section:
        return {}
    prefix = section["invoice_prefix"]
    if not (type(prefix) is str and PREFIX.fullmatch(prefix)):
        raise ValueError(
            "billing.invoice_prefix must be 1-16 of A-Z, 0-9 and -, starting with a letter or"
            f" digit, not {prefix!r}"
        )
    return {"invoice_prefix": prefix}


def _revenue(section: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(section) - {"arr_multiple"})
    if unknown:
        raise ValueError(f"unknown settings: {', '.join(f'revenue.{k}' for k in unknown)}")
    if "arr_multiple" not in section:
        return {}
    multiple = decimal_of("revenue.arr_multiple", section["arr_multiple"])
    if multiple < 0:
        raise ValueError(f"revenue.arr_multiple must be 0 or more, not {section['arr_multiple']!r}")
    return {"arr_multiple": multiple}


#: Fields of their own sections (``[tiers]``, ``[upstream]``, ``[billing]``, ``[revenue]``,
#: ``[costs]``), neither keys of ``[server]``, ``[ingest]`` or ``[store]`` nor environment
#: variables.
_NOT_SETTINGS = {"tiers", "upstream", "invoice_prefix", "arr_multiple", "costs"}


def _from_env(name: str, raw: str, kind: type) -> Any:
    if kind is bool:
        if raw.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return raw.lower() in ("1", "true", "yes", "on")
    else:
        try:
            return kind(raw)
        except ValueError:
            pass
    raise ValueError(f"{name} must be {KINDS[kind]}, not {raw!r}")


#: Bounds of the settings that have them: a count of 0 would refuse every request for ever
#: (503 at max_inflight = 0, 413 at max_body = 0), an interval of 0 spins or fails at start.
_BOUNDS: dict[str, tuple[int, float]] = {
    "port": (0, 65_535),
    "map_size": (1, math.inf),
    "max_body": (1, math.inf),
    "max_frames": (1, math.inf),
    "max_future_skew_s": (0, math.inf),
    "max_backfill_s": (0, math.inf),
    "dedupe_window_s": (0, math.inf),
    "max_group": (1, math.inf),
    "decode_threads": (1, math.inf),
    "read_threads": (1, math.inf),
    "retry_after_s": (1, math.inf),
    "max_inflight": (1, math.inf),
    "webhook_max_attempts": (1, math.inf),
    "watch_start_grace_s": (0, math.inf),
}
_ABOVE_ZERO = {
    "checkpoint_interval_s",
    "switch_interval_s",
    "webhook_backoff_s",
    "webhook_timeout_s",
    "evaluate_interval_s",
}


def _in_range(name: str, key: str, value: Any) -> Any:
    """``value`` of setting ``key`` (given as ``name``: the TOML key or the variable), if it
    lies in the setting's bounds."""
    if key in _BOUNDS:
        low, high = _BOUNDS[key]
        if not low <= value <= high:
            bounds = f"{low} or more" if high == math.inf else f"{low}..{high}"
            raise ValueError(f"{name} must be {bounds}, not {value!r}")
    elif key in _ABOVE_ZERO and not 0 < value < math.inf:
        raise ValueError(f"{name} must be a finite number above 0, not {value!r}")
    return value
