"""Service tiers: what a tenant's tier allows (rate limit, device cap, heartbeat).

A tier is domain, not a server setting: the store resolves a tenant's device cap and
heartbeat from its tier's name, the ingest server its rate limit, and nothing copies them
into the tenant. Tiers come from the shipped defaults, replaced or added to by the ``[plans]``
tables of an operator's TOML file (``docs/operations.md``); the SLA and billing issues add
targets and prices here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Tier:
    """What a service tier allows."""

    rate_fps: float = 50_000.0
    burst_s: float = 2.0
    device_cap: int = 0
    heartbeat_s: int = 60

    @property
    def burst_frames(self) -> float:
        """The rate bucket's size, in frames."""
        return self.rate_fps * self.burst_s


DEFAULT_TIER = "standard"

DEFAULT_TIERS: Mapping[str, Tier] = {
    "standard": Tier(),
    "basic": Tier(rate_fps=5_000.0, device_cap=1_000),
    "premium": Tier(rate_fps=500_000.0),
}


def tier_of(tiers: Mapping[str, Tier], name: str) -> Tier:
    """The tier called ``name``; a name no longer defined (a tier removed from the file)
    falls back to ``standard``, then to the built-in default."""
    return tiers.get(name) or tiers.get(DEFAULT_TIER) or Tier()


KINDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def typed(name: str, value: object, kind: type) -> Any:
    """A TOML value of the setting's type; an integer counts as a number, nothing else
    converts (``access_log = "false"`` is refused, not taken for true)."""
    if kind is float and type(value) is int:
        return float(value)
    if type(value) is not kind:
        raise ValueError(f"{name} must be {KINDS[kind]}, not {value!r}")
    return value


def table(name: str, value: object) -> dict[str, Any]:
    """A TOML table, or a ValueError naming it."""
    if not isinstance(value, dict):
        raise ValueError(f"[{name}] must be a table")
    return value


def parse_tier(name: str, settings: Mapping[str, Any]) -> Tier:
    """One ``[plans.NAME]`` table as a tier; a ValueError names the bad key."""
    defaults = Tier()
    unknown = set(settings) - {f.name for f in dataclasses.fields(Tier)}
    if unknown:
        raise ValueError(f"unknown settings in [plans.{name}]: {', '.join(sorted(unknown))}")
    tier = Tier(
        **{
            k: typed(f"plans.{name}.{k}", v, type(getattr(defaults, k)))
            for k, v in settings.items()
        }
    )
    if not (tier.rate_fps > 0 and tier.burst_s > 0):
        raise ValueError(f"[plans.{name}] rate_fps and burst_s must be above 0")
    if tier.device_cap < 0 or tier.heartbeat_s <= 0:
        raise ValueError(f"[plans.{name}] device_cap must be 0 or more, heartbeat_s above 0")
    return tier


def parse_tiers(plans: object) -> dict[str, Tier]:
    """The shipped tiers with those of a TOML file's ``[plans]`` table added or replaced."""
    tiers = dict(DEFAULT_TIERS)
    for name, settings in table("plans", plans).items():
        tiers[name] = parse_tier(name, table(f"plans.{name}", settings))
    return tiers


def load_tiers(path: str | None) -> dict[str, Tier]:
    """The tiers in force for a config file (``None``: the shipped defaults)."""
    if not path:
        return dict(DEFAULT_TIERS)
    import tomllib

    with open(path, "rb") as file:
        return parse_tiers(tomllib.load(file).get("plans", {}))
