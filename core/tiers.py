"""Service tiers: what a tenant's tier allows, what it promises and what it costs.

A tier is domain, not a server setting: the store resolves a tenant's device cap and
heartbeat from its tier's name, the ingest server its rate limit, and nothing copies them
into the tenant. Beside those limits a tier holds the SLA it promises (uptime target, credit
bands, incident targets, support hours) and its prices (base fee, device brackets, included
frames and overage, minimum, annual discount, all in one currency), as the service contract
(``service-v1.md``, "Tiers") defines them.

Tiers come from the shipped defaults, overridden or added to by the ``[tiers.NAME]`` tables
of an operator's TOML file (``[plans.NAME]`` is the older name of the same table); the
file's ``[upstream]`` table states the platform vendor's own guarantee, and a tier promising
more is flagged (:class:`Catalog`). ``docs/operations.md`` ("Service tiers") describes every
key. Percentages are :class:`~decimal.Decimal`, never floats: a TOML float is refused where a
percentage belongs, and attainment is compared with the thresholds exactly.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any, Literal

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MIN_PER_DAY = 24 * 60

_HOURS = re.compile(
    r"([A-Z][a-z]{2})(?:-([A-Z][a-z]{2}))? ([0-9]{2}):([0-9]{2})-([0-9]{2}):([0-9]{2})"
)


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


@dataclass(frozen=True)
class SupportHours:
    """When support is staffed, in the tenant's time zone: the same hours, from minute
    ``start_min`` of the day to ``end_min`` (exclusive; 1440 is the midnight that ends the
    day), on each weekday of ``days`` (0 = Monday). The days are one run of the week, which
    may wrap past Sunday (Fri, Sat, Sun, Mon)."""

    days: frozenset[int]
    start_min: int
    end_min: int

    def __post_init__(self) -> None:
        days = self.days
        if not (days and all(type(d) is int and 0 <= d <= 6 for d in days)):
            raise ValueError(f"days must be weekdays 0..6 (0 = Monday), not {sorted(days)}")
        if sum((d - 1) % 7 not in days for d in days) > 1:
            raise ValueError(f"days must be one run of the week, not {sorted(days)}")
        ends = (self.start_min, self.end_min)
        if not (all(type(m) is int for m in ends) and 0 <= ends[0] < ends[1] <= MIN_PER_DAY):
            raise ValueError(
                f"hours must start before they end, within a day (0..1440), not {ends}"
                " (hours past midnight are not supported)"
            )

    @classmethod
    def parse(cls, text: object) -> SupportHours:
        """``"24x7"``, ``"<Day>-<Day> HH:MM-HH:MM"`` or ``"<Day> HH:MM-HH:MM"``: days ``Mon``
        to ``Sun``, a range may wrap (``Fri-Mon``), the end time is exclusive and ``24:00``
        is the midnight that ends the day."""
        usage = f'must be "24x7" or like "Mon-Fri 08:00-18:00" or "Sat 10:00-14:00", not {text!r}'
        if text == "24x7":
            return cls(frozenset(range(7)), 0, MIN_PER_DAY)
        match = _HOURS.fullmatch(text) if isinstance(text, str) else None
        if not match:
            raise ValueError(usage)
        first_day, last_day, h1, m1, h2, m2 = match.groups()
        for day in (first_day, last_day):
            if day is not None and day not in WEEKDAYS:
                raise ValueError(f"{day!r} is not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun)")
        first = WEEKDAYS.index(first_day)
        last = first if last_day is None else WEEKDAYS.index(last_day)
        if last_day is not None and last == first:
            raise ValueError(f"{first_day}-{last_day} is ambiguous: give one day as {first_day!r}")
        minutes = []
        for hh, mm in ((h1, m1), (h2, m2)):
            if int(mm) > 59 or int(hh) > 24 or (hh == "24" and mm != "00"):
                raise ValueError(f"{hh}:{mm} is not a time of day (00:00..24:00)")
            minutes.append(int(hh) * 60 + int(mm))
        days = frozenset((first + i) % 7 for i in range((last - first) % 7 + 1))
        return cls(days, minutes[0], minutes[1])

    @property
    def text(self) -> str:
        """The canonical spelling: ``"24x7"`` for every minute of the week, else the days from
        the first of the run (``Mon-Sun`` for the whole week) and the hours."""
        if len(self.days) == 7 and (self.start_min, self.end_min) == (0, MIN_PER_DAY):
            return "24x7"
        first = next((d for d in sorted(self.days) if (d - 1) % 7 not in self.days), 0)
        last = (first + len(self.days) - 1) % 7
        days = WEEKDAYS[first] if first == last else f"{WEEKDAYS[first]}-{WEEKDAYS[last]}"
        return f"{days} {_clock(self.start_min)}-{_clock(self.end_min)}"

    def covers(self, weekday: int, minute: int) -> bool:
        """Whether minute ``minute`` (0..1439) of a day of weekday ``weekday`` is staffed."""
        return weekday in self.days and self.start_min <= minute < self.end_min


@dataclass(frozen=True)
class AlertRules:
    """When the watching raises an alert (``[tiers.NAME.alerts]``, overridable per tenant).

    ``quiet_grace_s``: a device is quiet when no frame came for its heartbeat plus this;
    ``battery_below``: percent, a device's last battery strictly below it (0: never);
    ``gateway_silent_heartbeats``: a gateway is silent after this many of its devices'
    heartbeats without an accepted batch; ``cap_levels``: percents of the device cap whose
    crossing is an alert (none without a cap); ``fault``, ``sla_at_risk``: whether a device
    reporting a fault, and a month whose projection lies below the target, raise alerts."""

    quiet_grace_s: int = 120
    battery_below: Decimal = Decimal("20")
    gateway_silent_heartbeats: int = 5
    cap_levels: tuple[int, ...] = (80, 90, 100)
    fault: bool = True
    sla_at_risk: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "quiet_grace_s": self.quiet_grace_s,
            "battery_below": str(self.battery_below),
            "gateway_silent_heartbeats": self.gateway_silent_heartbeats,
            "cap_levels": list(self.cap_levels),
            "fault": self.fault,
            "sla_at_risk": self.sla_at_risk,
        }


@dataclass(frozen=True)
class DevicePrice:
    """The price of a device-month, in brackets of ``(up_to, price)``: devices up to
    ``up_to`` (inclusive, counting from 1) at ``price`` minor units, the last bracket
    (``up_to`` None) for every device beyond. ``graduated`` prices each device at the bracket
    it falls in; ``volume`` prices all devices at the bracket their total falls in."""

    mode: Literal["graduated", "volume"]
    brackets: tuple[tuple[int | None, int], ...]

    def __post_init__(self) -> None:
        if self.mode not in ("graduated", "volume"):
            raise ValueError(f'mode must be "graduated" or "volume", not {self.mode!r}')
        if not self.brackets:
            raise ValueError("brackets must hold at least one bracket")
        previous = 0
        for i, (up_to, price) in enumerate(self.brackets):
            last = i == len(self.brackets) - 1
            if last != (up_to is None):
                raise ValueError("every bracket but the last has an up_to, the last none")
            if up_to is not None and not (type(up_to) is int and up_to > previous):
                raise ValueError(f"up_to must be integers above 0, increasing, not {up_to!r}")
            if not (type(price) is int and price >= 0):
                raise ValueError(f"a price must be an integer 0 or more, not {price!r}")
            previous = up_to or previous


def _d(text: str) -> Decimal:
    return Decimal(text)


@dataclass(frozen=True)
class Tier:
    """What a service tier allows, promises and costs. The defaults are the shipped
    ``standard`` tier, so that a new tier given only a rate is a standard one with that rate.

    Percentages (``uptime_target``, the bands, ``annual_discount``) are Decimal percent;
    ``credit_bands`` are ``(below, credit_percent)`` pairs, the band nearest the target
    first; prices are integers of minor units of ``currency``."""

    rate_fps: float = 50_000.0
    burst_s: float = 2.0
    device_cap: int = 0
    heartbeat_s: int = 60
    uptime_target: Decimal = _d("99.5")
    credit_bands: tuple[tuple[Decimal, Decimal], ...] = (
        (_d("99.5"), _d("10")),
        (_d("99.0"), _d("25")),
        (_d("95.0"), _d("50")),
    )
    response_target_min: int = 60
    resolve_target_min: int = 480
    #: consecutive down slots that open a device incident
    min_outage: int = 5
    alerts: AlertRules = AlertRules()
    support_hours: SupportHours = SupportHours.parse("Mon-Sat 07:00-20:00")
    base_fee: int = 19_900
    device_price: DevicePrice = DevicePrice("graduated", ((100, 300), (1000, 250), (None, 200)))
    included_frames: int = 50_000_000
    overage_per_1000: int = 1
    minimum: int = 0
    annual_discount: Decimal = _d("12.5")
    currency: str = "USD"

    @property
    def burst_frames(self) -> float:
        """The rate bucket's size, in frames."""
        return self.rate_fps * self.burst_s

    def band(self, attainment: Fraction | Decimal | None) -> tuple[Decimal, Decimal] | None:
        """The credit band a month of ``attainment`` percent earns, or None: of the bands
        whose ``below`` the attainment lies strictly below, the one of the highest credit
        (of equal credits, the lowest ``below``). No attainment earns none."""
        if attainment is None:
            return None
        exact = _exact(attainment)
        applying = [b for b in self.credit_bands if exact < Fraction(b[0])]
        return min(applying, key=lambda b: (-b[1], b[0]), default=None)

    def credit_percent(self, attainment: Fraction | Decimal | None) -> Decimal:
        """The credit, in percent, a month of ``attainment`` percent earns (0 without a band)."""
        band = self.band(attainment)
        return Decimal(0) if band is None else band[1]

    def met(self, attainment: Fraction | Decimal | None) -> bool:
        """Whether a month of ``attainment`` percent meets the target: at or above it. A month
        without attainment (no counted slot) is met."""
        return attainment is None or _exact(attainment) >= Fraction(self.uptime_target)


def _exact(value: object) -> Fraction:
    """An attainment as an exact fraction; a float (or anything inexact) is refused."""
    if isinstance(value, Fraction):
        return value
    if isinstance(value, Decimal) and value.is_finite():
        return Fraction(value)
    if type(value) is int:
        return Fraction(value)
    raise TypeError(f"attainment must be an exact Fraction or finite Decimal, not {value!r}")


DEFAULT_TIER = "standard"

DEFAULT_TIERS: Mapping[str, Tier] = {
    "standard": Tier(),
    "basic": Tier(
        rate_fps=5_000.0,
        device_cap=1_000,
        uptime_target=_d("99.0"),
        credit_bands=((_d("99.0"), _d("10")), (_d("95.0"), _d("25"))),
        response_target_min=240,
        resolve_target_min=1440,
        support_hours=SupportHours.parse("Mon-Fri 08:00-18:00"),
        base_fee=4_900,
        device_price=DevicePrice("graduated", ((100, 200), (None, 150))),
        included_frames=5_000_000,
        overage_per_1000=2,
        minimum=0,
        annual_discount=_d("10"),
    ),
    "premium": Tier(
        rate_fps=500_000.0,
        uptime_target=_d("99.9"),
        credit_bands=(
            (_d("99.9"), _d("10")),
            (_d("99.5"), _d("25")),
            (_d("99.0"), _d("50")),
            (_d("95.0"), _d("100")),
        ),
        response_target_min=15,
        resolve_target_min=240,
        support_hours=SupportHours.parse("24x7"),
        base_fee=99_900,
        device_price=DevicePrice("volume", ((1000, 180), (10_000, 140), (None, 100))),
        included_frames=500_000_000,
        overage_per_1000=1,
        minimum=250_000,
        annual_discount=_d("15"),
    ),
}


def tier_of(tiers: Mapping[str, Tier], name: str) -> Tier:
    """The tier called ``name``; a name no longer defined (a tier removed from the file)
    falls back to ``standard``, then to the built-in default."""
    return tiers.get(name) or tiers.get(DEFAULT_TIER) or Tier()


@dataclass(frozen=True)
class Catalog:
    """The tiers in force and the platform vendor's own monthly uptime guarantee
    (``[upstream] uptime_guarantee``, percent; None when the file states none). A tier whose
    target lies above the guarantee is flagged wherever tiers are shown: an integrator's SLA
    must sit inside its vendor's."""

    tiers: Mapping[str, Tier] = field(default_factory=lambda: dict(DEFAULT_TIERS))
    upstream: Decimal | None = None

    def tier(self, name: str) -> Tier:
        """The tier called ``name``, falling back as :func:`tier_of` says."""
        return tier_of(self.tiers, name)

    def above_upstream(self, name: str) -> bool:
        """Whether the tier called ``name`` promises more than the vendor guarantees (never,
        without a guarantee; a target equal to it is inside it)."""
        return self.upstream is not None and self.tier(name).uptime_target > self.upstream

    def flagged(self) -> list[str]:
        """The names of the tiers that promise more than the vendor guarantees, sorted."""
        return sorted(name for name in self.tiers if self.above_upstream(name))


# --- the TOML file ---------------------------------------------------------------------------

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


def _known(name: str, settings: Mapping[str, Any], keys: set[str]) -> None:
    unknown = sorted(set(settings) - keys)
    if unknown:
        raise ValueError(f"unknown settings: {', '.join(f'{name}.{k}' for k in unknown)}")


#: A plain decimal: digits, an optional fraction, a minus sign only to be refused by range
#: (no "+", exponent, "NaN", "inf", underscores or spaces).
_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


def decimal_of(name: str, value: object) -> Decimal:
    """A decimal of the file: a string like ``"99.9"`` or an integer, never a float."""
    usage = f'{name} must be a decimal string like "99.9" or an integer, not'
    if type(value) is float:
        raise ValueError(f"{usage} the float {value!r}")
    if type(value) is int:
        return Decimal(value)
    if type(value) is str and _DECIMAL.fullmatch(value):
        return Decimal(value)
    raise ValueError(f"{usage} {value!r}")


def percent_of(name: str, value: object) -> Decimal:
    """A percentage of the file, in 0..100."""
    percent = decimal_of(name, value)
    if not 0 <= percent <= 100:
        raise ValueError(f"{name} must lie in 0..100, not {value!r}")
    return percent


def integer_of(name: str, value: object, low: int = 0) -> int:
    """An integer of the file (not a bool, not a float with no fraction), ``low`` or more."""
    if type(value) is not int:
        raise ValueError(f"{name} must be an integer, not {value!r}")
    if value < low:
        raise ValueError(f"{name} must be {low} or more, not {value!r}")
    return value


def _above_zero(name: str, value: object) -> float:
    number: float = typed(name, value, float)
    if not number > 0:
        raise ValueError(f"{name} must be above 0, not {value!r}")
    return number


def _bands(name: str, value: object) -> tuple[tuple[Decimal, Decimal], ...]:
    if not isinstance(value, list):
        raise ValueError(f"{name} must be a list of [below, credit_percent] pairs, not {value!r}")
    bands: dict[Decimal, Decimal] = {}
    for i, band in enumerate(value):
        if not (isinstance(band, list) and len(band) == 2):
            raise ValueError(f"{name}[{i}] must be a [below, credit_percent] pair, not {band!r}")
        below = percent_of(f"{name}[{i}].below", band[0])
        if below in bands:
            raise ValueError(f"{name}[{i}] is a second band below {below}")
        bands[below] = percent_of(f"{name}[{i}].credit_percent", band[1])
    return tuple(sorted(bands.items(), reverse=True))


def _support_hours(name: str, value: object) -> SupportHours:
    try:
        return SupportHours.parse(value)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


def _brackets(name: str, value: object) -> tuple[tuple[int | None, int], ...]:
    usage = "a list of { up_to = N, price = P } tables, the last without up_to"
    if not (isinstance(value, list) and value):
        raise ValueError(f"{name} must be {usage}, not {value!r}")
    brackets: list[tuple[int | None, int]] = []
    for i, bracket in enumerate(value):
        key = f"{name}[{i}]"
        if not isinstance(bracket, dict):
            raise ValueError(f"{key} must be a table {{ up_to = N, price = P }}, not {bracket!r}")
        _known(key, bracket, {"up_to", "price"})
        if "price" not in bracket:
            raise ValueError(f"{key}.price is missing")
        price = integer_of(f"{key}.price", bracket["price"])
        last = i == len(value) - 1
        if last:
            if "up_to" in bracket:
                raise ValueError(f"{key}.up_to must be left out: the last bracket has no end")
            brackets.append((None, price))
            continue
        if "up_to" not in bracket:
            raise ValueError(f"{key}.up_to is missing: only the last bracket has no end")
        previous = brackets[-1][0] if brackets else 0
        up_to = integer_of(f"{key}.up_to", bracket["up_to"], low=1)
        if previous is not None and up_to <= previous:
            raise ValueError(f"{key}.up_to must be above the previous bracket's {previous}")
        brackets.append((up_to, price))
    return tuple(brackets)


def _device_price(name: str, value: object, base: DevicePrice) -> DevicePrice:
    settings = table(name, value)
    _known(name, settings, {"mode", "tiers"})
    mode = settings.get("mode", base.mode)
    if mode not in ("graduated", "volume"):
        raise ValueError(f'{name}.mode must be "graduated" or "volume", not {mode!r}')
    brackets = base.brackets
    if "tiers" in settings:
        brackets = _brackets(f"{name}.tiers", settings["tiers"])
    return DevicePrice(mode, brackets)


def _flag(name: str, value: object) -> bool:
    return bool(typed(name, value, bool))


def _cap_levels(name: str, value: object) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise ValueError(f"{name} must be a list of percents like [80, 90, 100], not {value!r}")
    levels = tuple(integer_of(f"{name}[{i}]", v, low=1) for i, v in enumerate(value))
    if list(levels) != sorted(set(levels)) or any(v > 100 for v in levels):
        raise ValueError(f"{name} must be ascending, distinct percents 1..100, not {value!r}")
    return levels


_ALERT_PARSERS: dict[str, Any] = {
    "quiet_grace_s": lambda n, v: integer_of(n, v, low=0),
    "battery_below": lambda n, v: percent_of(n, v),
    "gateway_silent_heartbeats": lambda n, v: integer_of(n, v, low=1),
    "cap_levels": _cap_levels,
    "fault": _flag,
    "sla_at_risk": _flag,
}


def parse_alert_rules(name: str, value: object, base: AlertRules) -> AlertRules:
    """An ``alerts`` table (a tier's, or a tenant's overrides) over ``base``, key by key; a
    ValueError names the bad key in full."""
    settings = table(name, value)
    _known(name, settings, set(_ALERT_PARSERS))
    values = {k: _ALERT_PARSERS[k](f"{name}.{k}", v) for k, v in settings.items()}
    return dataclasses.replace(base, **values)


def _currency(name: str, value: object) -> str:
    if not (type(value) is str and re.fullmatch(r"[A-Z]{3}", value)):
        raise ValueError(
            f'{name} must be an ISO 4217 code of three capitals like "USD", not {value!r}'
        )
    return value


#: How each key of a tier's table is read: (its full name, the value, the tier it overrides).
_PARSERS: dict[str, Any] = {
    "rate_fps": lambda n, v, t: _above_zero(n, v),
    "burst_s": lambda n, v, t: _above_zero(n, v),
    "device_cap": lambda n, v, t: integer_of(n, v, low=0),
    "heartbeat_s": lambda n, v, t: integer_of(n, v, low=1),
    "uptime_target": lambda n, v, t: percent_of(n, v),
    "credit_bands": lambda n, v, t: _bands(n, v),
    "response_target_min": lambda n, v, t: integer_of(n, v, low=1),
    "resolve_target_min": lambda n, v, t: integer_of(n, v, low=1),
    "min_outage": lambda n, v, t: integer_of(n, v, low=1),
    "alerts": lambda n, v, t: parse_alert_rules(n, v, t.alerts),
    "support_hours": lambda n, v, t: _support_hours(n, v),
    "base_fee": lambda n, v, t: integer_of(n, v),
    "device_price": lambda n, v, t: _device_price(n, v, t.device_price),
    "included_frames": lambda n, v, t: integer_of(n, v),
    "overage_per_1000": lambda n, v, t: integer_of(n, v),
    "minimum": lambda n, v, t: integer_of(n, v),
    "annual_discount": lambda n, v, t: percent_of(n, v),
    "currency": lambda n, v, t: _currency(n, v),
}


def parse_tier(
    name: str, settings: Mapping[str, Any], base: Tier | None = None, section: str = "tiers"
) -> Tier:
    """One ``[tiers.NAME]`` table (``section`` ``plans`` for the older name) as a tier: the
    keys it gives override ``base`` (by default :class:`Tier`'s defaults, the shipped
    standard tier), a nested ``device_price`` key by key. A ValueError names the bad key in
    full (``tiers.gold.uptime_target``)."""
    prefix = f"{section}.{name}"
    _known(prefix, settings, set(_PARSERS))
    base = Tier() if base is None else base
    values = {k: _PARSERS[k](f"{prefix}.{k}", v, base) for k, v in settings.items()}
    tier = dataclasses.replace(base, **values)
    for below, _ in tier.credit_bands:
        if below > tier.uptime_target:
            raise ValueError(
                f"{prefix}.credit_bands: the band below {below} lies above uptime_target"
                f" {tier.uptime_target}, so a month that meets the target would earn credit"
            )
    return tier


def parse_tiers(plans: object = None, tiers: object = None) -> dict[str, Tier]:
    """The shipped tiers with those of a TOML file's ``[plans]`` and ``[tiers]`` tables
    added, or overriding the shipped tier of their name key by key. A name defined in both
    tables is refused."""
    sections = {
        "plans": table("plans", {} if plans is None else plans),
        "tiers": table("tiers", {} if tiers is None else tiers),
    }
    both = sorted(set(sections["plans"]) & set(sections["tiers"]))
    if both:
        raise ValueError(
            f"tier {both[0]!r} is defined twice, as [plans.{both[0]}] and [tiers.{both[0]}]"
            " ([plans] is the older name of [tiers]): keep one"
        )
    result = dict(DEFAULT_TIERS)
    for section, named in sections.items():
        for name, settings in named.items():
            settings = table(f"{section}.{name}", settings)
            result[name] = parse_tier(name, settings, DEFAULT_TIERS.get(name), section)
    return result


def parse_upstream(upstream: object = None) -> Decimal | None:
    """The ``[upstream]`` table's ``uptime_guarantee`` (None when not given)."""
    settings = table("upstream", {} if upstream is None else upstream)
    _known("upstream", settings, {"uptime_guarantee"})
    if "uptime_guarantee" not in settings:
        return None
    return percent_of("upstream.uptime_guarantee", settings["uptime_guarantee"])


def parse_catalog(doc: Mapping[str, Any]) -> Catalog:
    """The catalog of a TOML document: its ``[plans]``, ``[tiers]`` and ``[upstream]``
    tables (other sections are the server's, and left alone here)."""
    return Catalog(
        parse_tiers(doc.get("plans"), doc.get("tiers")), parse_upstream(doc.get("upstream"))
    )


def load_catalog(path: str | None) -> Catalog:
    """The catalog in force for a config file (``None``: the shipped defaults)."""
    if not path:
        return Catalog()
    import tomllib

    with open(path, "rb") as file:
        return parse_catalog(tomllib.load(file))


def load_tiers(path: str | None) -> dict[str, Tier]:
    """The tiers in force for a config file (``None``: the shipped defaults)."""
    return dict(load_catalog(path).tiers)
