"""Server configuration: a TOML file, then ``UPTALLY_*`` environment overrides.

Every setting is documented in ``docs/operations.md``. Example::

    [server]
    host = "127.0.0.1"
    port = 8080
    data = "data"

    [ingest]
    max_body = 16777216
    checkpoint_interval_s = 5.0

    [plans.standard]
    rate_fps = 50000     # frames per second, sustained
    burst_s = 2.0        # bucket size, in seconds of rate
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Plan:
    """What a service tier allows (the SLA issue adds targets and prices)."""

    rate_fps: float = 50_000.0
    burst_s: float = 2.0
    device_cap: int = 0
    heartbeat_s: int = 60


DEFAULT_PLANS = {
    "standard": Plan(),
    "basic": Plan(rate_fps=5_000.0, device_cap=1_000),
    "premium": Plan(rate_fps=500_000.0),
}


@dataclass(frozen=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 8080
    data: str = "data"
    map_size: int = 1 << 30
    max_body: int = 16 << 20
    max_frames: int = 100_000
    max_future_skew_s: int = 300
    max_backfill_s: int = 7 * 86_400
    dedupe_window_s: int = 86_400
    checkpoint_interval_s: float = 5.0
    max_group: int = 512
    decode_threads: int = 2
    read_threads: int = 2
    retry_after_s: int = 1
    max_inflight: int = 256
    access_log: bool = False
    switch_interval_s: float = 0.0001
    plans: Mapping[str, Plan] = field(default_factory=lambda: dict(DEFAULT_PLANS))

    def plan(self, name: str) -> Plan:
        return self.plans.get(name) or self.plans.get("standard") or Plan()

    @classmethod
    def load(cls, path: str | None = None, env: Mapping[str, str] | None = None) -> Config:
        """Defaults, then the TOML file's values, then ``UPTALLY_<NAME>`` variables."""
        values: dict[str, Any] = {}
        plans = dict(DEFAULT_PLANS)
        if path:
            with open(path, "rb") as file:
                doc = tomllib.load(file)
            for section in ("server", "ingest", "store"):
                values.update(doc.get(section, {}))
            for name, settings in doc.get("plans", {}).items():
                plans[name] = Plan(**settings)
        env = os.environ if env is None else env
        for f in dataclasses.fields(cls):
            raw = env.get(f"UPTALLY_{f.name.upper()}")
            if raw is None or f.name == "plans":
                continue
            kind = type(getattr(cls(), f.name))
            values[f.name] = raw.lower() in ("1", "true", "yes") if kind is bool else kind(raw)
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
        return cls(plans=plans, **values)
