"""Revenue figures (``docs/service.md``, "Revenue figures", "Decided edges: Revenue"): MRR
and ARR, the month's movements, retention and logo churn, revenue per device, valuation,
costs and margin, and the what-if that checks a price at volume before it is quoted.

MRR of a tenant at a month's end uses the state on the month's last local day and the
month's billable devices: max(discounted ``base`` + ``devices``, ``minimum``) at a full
month, each line rounded as on an invoice; 0 in a trial and after a cancel. The figures
over a portfolio take the month-end MRR kept with each closed month (:class:`TenantMonths`),
so a tier file edited later never rewrites the past. Every figure is per currency: nothing
here adds two currencies, each answer is a mapping from currency to its figure.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from fractions import Fraction
from typing import Any, Literal

from core.billing.invoice import (
    count,
    exact,
    minimum_line,
    money,
    overage_line,
    recurring_lines,
    round_half_up,
)
from core.billing.subscriptions import History, Term, days_in_month, state_on
from core.tiers import Tier, decimal_of, table

Month = tuple[int, int]
MovementKind = Literal["new", "reactivation", "expansion", "contraction", "churn"]
SECONDS_PER_DAY = 86_400


def previous_month(year: int, month: int, back: int = 1) -> Month:
    """The month ``back`` months before ``year``-``month``."""
    index = year * 12 + (month - 1) - back
    return index // 12, index % 12 + 1


# --- MRR ------------------------------------------------------------------------------------


def full_month_mrr(tier: Tier, term: Term, devices: int) -> int:
    """The recurring charges of a full month: max(discounted base + devices lines, minimum),
    each line rounded as on an invoice (lines 1, 2 and 4 at full month)."""
    base, device_lines = recurring_lines("", tier, term, devices, Fraction(1), "")
    recurring = base.amount + sum(li.amount for li in device_lines)
    return max(recurring, money("minimum", tier.minimum))


def month_end_mrr(
    subscription: History, tiers: Mapping[str, Tier], year: int, month: int, devices: int
) -> int:
    """A tenant's MRR at the end of local month ``year``-``month``: at the tier and term of
    its last local day and the month's ``devices`` billable devices; 0 when it is not
    subscribed that day (a cancel dated the 1st of the next month is next month's churn) or
    the day is a trial day."""
    last_day = date(year, month, days_in_month(year, month))
    state = state_on(subscription, last_day)
    if state is None or state.trial:
        return 0
    return full_month_mrr(tiers[state.tier], state.term, count("devices", devices))


def arr(mrr: int) -> int:
    """ARR = 12 × MRR."""
    return 12 * money("mrr", mrr)


@dataclass(frozen=True)
class TenantMonths:
    """One tenant's month-end figures, as kept with its closed months: ``mrr`` and billable
    ``devices`` by (year, month); a month absent has MRR 0 and no devices."""

    tenant: str
    currency: str
    mrr: Mapping[Month, int]
    devices: Mapping[Month, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Z]{3}", self.currency):
            raise ValueError(f"currency must be an ISO 4217 code, not {self.currency!r}")
        for key, value in self.mrr.items():
            if money(f"mrr of {key}", value) < 0:
                raise ValueError(f"mrr of {key} must be 0 or more, not {value}")
        for key, value in self.devices.items():
            count(f"devices of {key}", value)

    def at(self, year: int, month: int) -> int:
        return self.mrr.get((year, month), 0)

    def ever_before(self, year: int, month: int) -> bool:
        """Whether any month end before ``year``-``month`` had MRR above 0."""
        return any(value > 0 and key < (year, month) for key, value in self.mrr.items())


def mrr_total(portfolio: Iterable[TenantMonths], year: int, month: int) -> dict[str, int]:
    """The portfolio's MRR at the end of a month, per currency (currencies with a tenant)."""
    out: dict[str, int] = {}
    for tenant in portfolio:
        out[tenant.currency] = out.get(tenant.currency, 0) + tenant.at(year, month)
    return out


# --- movements ------------------------------------------------------------------------------


def movement(tenant: TenantMonths, year: int, month: int) -> tuple[MovementKind | None, int]:
    """The tenant's movement in a month and its size (0 and None when its MRR held): from
    its MRR at the previous month's end to this month's end."""
    before = tenant.at(*previous_month(year, month))
    now = tenant.at(year, month)
    if before == now:
        return None, 0
    if before == 0:
        return ("reactivation" if tenant.ever_before(year, month) else "new"), now
    if now == 0:
        return "churn", before
    return ("expansion", now - before) if now > before else ("contraction", before - now)


@dataclass(frozen=True)
class Movements:
    """A month's MRR movements of one currency; churn and contraction are positive sizes.
    ``tenants_at_start``: tenants with MRR at the start; ``churned``: those that churned."""

    currency: str
    start: int = 0
    new: int = 0
    reactivation: int = 0
    expansion: int = 0
    contraction: int = 0
    churn: int = 0
    end: int = 0
    tenants_at_start: int = 0
    churned: int = 0

    @property
    def reconciles(self) -> bool:
        """start + new + reactivation + expansion − contraction − churn = end, exactly."""
        moved = self.new + self.reactivation + self.expansion - self.contraction - self.churn
        return self.start + moved == self.end

    @property
    def logo_churn(self) -> Fraction | None:
        """Tenants churned ÷ tenants with MRR at the start; None when none had."""
        return Fraction(self.churned, self.tenants_at_start) if self.tenants_at_start else None

    def to_json(self) -> dict[str, Any]:
        return {
            "currency": self.currency,
            "start": self.start,
            "new": self.new,
            "reactivation": self.reactivation,
            "expansion": self.expansion,
            "contraction": self.contraction,
            "churn": self.churn,
            "end": self.end,
            "tenants_at_start": self.tenants_at_start,
            "churned": self.churned,
            "logo_churn": percent_shown(self.logo_churn),
        }


def movements(portfolio: Iterable[TenantMonths], year: int, month: int) -> dict[str, Movements]:
    """The month's movements per currency, over every tenant of the portfolio."""
    sums: dict[str, dict[str, int]] = {}
    before_month = previous_month(year, month)
    for tenant in portfolio:
        row = sums.setdefault(tenant.currency, {"start": 0, "end": 0})
        before = tenant.at(*before_month)
        row["start"] += before
        row["end"] += tenant.at(year, month)
        row["tenants_at_start"] = row.get("tenants_at_start", 0) + (before > 0)
        kind, size = movement(tenant, year, month)
        if kind is not None:
            row[kind] = row.get(kind, 0) + size
            row["churned"] = row.get("churned", 0) + (kind == "churn")
    return {currency: Movements(currency, **row) for currency, row in sorted(sums.items())}


# --- retention, churn, per device, valuation ------------------------------------------------


@dataclass(frozen=True)
class Retention:
    """Net and gross revenue retention of one currency over ``months`` months to a month's
    end: of the tenants with MRR at the end of the month ``months`` before (``cohort``),
    their MRR now (``now``; gross caps each at its MRR then: ``kept``) ÷ their MRR then."""

    currency: str
    cohort: int
    then: int
    now: int
    kept: int

    @property
    def net(self) -> Fraction | None:
        return Fraction(self.now, self.then) if self.then else None

    @property
    def gross(self) -> Fraction | None:
        return Fraction(self.kept, self.then) if self.then else None

    def to_json(self) -> dict[str, Any]:
        return {
            "currency": self.currency,
            "cohort": self.cohort,
            "nrr": percent_shown(self.net),
            "grr": percent_shown(self.gross),
        }


def retention(
    portfolio: Iterable[TenantMonths], year: int, month: int, months: int = 12
) -> dict[str, Retention]:
    """Retention per currency over ``months`` months to the end of ``year``-``month``
    (currencies with a tenant; ``net`` and ``gross`` are None for an empty cohort)."""
    then_month = previous_month(year, month, months)
    rows: dict[str, list[int]] = {}
    for tenant in portfolio:
        row = rows.setdefault(tenant.currency, [0, 0, 0, 0])
        then = tenant.at(*then_month)
        if then > 0:
            now = tenant.at(year, month)
            row[0] += 1
            row[1] += then
            row[2] += now
            row[3] += min(now, then)
    return {c: Retention(c, *row) for c, row in sorted(rows.items())}


def logo_churn(
    portfolio: Iterable[TenantMonths], year: int, month: int
) -> dict[str, Fraction | None]:
    """Tenants churned in the month ÷ tenants with MRR at its start, per currency."""
    return {c: m.logo_churn for c, m in movements(portfolio, year, month).items()}


def percent_shown(ratio: Fraction | None) -> str | None:
    """An exact ratio as a percent with one decimal, rounded down (1.05375 → ``105.3``)."""
    if ratio is None:
        return None
    tenths = math.floor(ratio * 1000)
    sign = "-" if tenths < 0 else ""
    return f"{sign}{abs(tenths) // 10}.{abs(tenths) % 10}"


def revenue_per_device(
    portfolio: Iterable[TenantMonths], year: int, month: int
) -> dict[str, Fraction | None]:
    """Average MRR per billable device at a month's end, per currency: Σ MRR ÷ Σ devices of
    the tenants of that currency, exact (minor units); None without a device."""
    sums: dict[str, list[int]] = {}
    for tenant in portfolio:
        row = sums.setdefault(tenant.currency, [0, 0])
        row[0] += tenant.at(year, month)
        row[1] += tenant.devices.get((year, month), 0)
    return {c: (Fraction(m, d) if d else None) for c, (m, d) in sorted(sums.items())}


def valuation(arr_minor: int, multiple: Decimal | int | Fraction) -> int:
    """ARR × a configured multiple, rounded half-up to a minor unit."""
    return round_half_up(money("arr", arr_minor) * exact("multiple", multiple))


# --- costs, margin, the what-if -------------------------------------------------------------

_COST_KEYS = ("currency", "per_device_month", "per_million_frames", "per_tenant_month")


@dataclass(frozen=True)
class CostModel:
    """What serving costs, in minor units of ``currency`` (fractions of a unit allowed):
    per billable device-month, per million accepted frames, and fixed per tenant-month."""

    currency: str
    per_device_month: Decimal = Decimal(0)
    per_million_frames: Decimal = Decimal(0)
    per_tenant_month: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Z]{3}", self.currency):
            raise ValueError(f"costs.currency must be an ISO 4217 code, not {self.currency!r}")
        for key in _COST_KEYS[1:]:
            value = getattr(self, key)
            if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
                raise ValueError(f"costs.{key} must be a Decimal 0 or more, not {value!r}")

    def cost(self, devices: int, frames: int, tenant_months: int = 1) -> int:
        """The cost of ``devices`` device-months, ``frames`` frames and ``tenant_months``
        tenant-months, exact, rounded half-up once."""
        exact_cost = (
            count("devices", devices) * Fraction(self.per_device_month)
            + count("frames", frames) * Fraction(self.per_million_frames) / 1_000_000
            + count("tenant_months", tenant_months) * Fraction(self.per_tenant_month)
        )
        return round_half_up(exact_cost)


def parse_costs(value: object) -> CostModel:
    """The ``[costs]`` table of a TOML file: ``currency`` (ISO 4217) and, in minor units as
    decimal strings or integers (a TOML float is refused), ``per_device_month``,
    ``per_million_frames``, ``per_tenant_month`` (each 0 when left out)."""
    settings = table("costs", value)
    unknown = sorted(set(settings) - set(_COST_KEYS))
    if unknown:
        raise ValueError(f"unknown settings: {', '.join(f'costs.{k}' for k in unknown)}")
    if "currency" not in settings:
        raise ValueError('costs.currency is missing (the ISO 4217 code of the costs, "USD")')
    amounts = {}
    for key in _COST_KEYS[1:]:
        if key in settings:
            amounts[key] = decimal_of(f"costs.{key}", settings[key])
            if amounts[key] < 0:
                raise ValueError(f"costs.{key} must be 0 or more, not {settings[key]!r}")
    currency = settings["currency"]
    if not (type(currency) is str and re.fullmatch(r"[A-Z]{3}", currency)):
        raise ValueError(f"costs.currency must be an ISO 4217 code like USD, not {currency!r}")
    return CostModel(currency, **amounts)


def margin(revenue: int, cost: int) -> int:
    """Revenue − cost, minor units of one currency."""
    return money("revenue", revenue) - money("cost", cost)


@dataclass(frozen=True)
class WhatIf:
    """A full month at ``devices`` devices sending one frame per heartbeat: ``revenue``
    (lines 1-4 of its invoice: no credit, no tax), ``mrr``, ``cost`` and ``margin``."""

    term: Term
    currency: str
    devices: int
    heartbeat_s: int
    days: int
    frames: int
    revenue: int
    mrr: int
    cost: int
    margin: int

    @property
    def margin_ratio(self) -> Fraction | None:
        """Margin ÷ revenue, exact; None at no revenue."""
        return Fraction(self.margin, self.revenue) if self.revenue else None


def what_if(
    tier: Tier,
    devices: int,
    heartbeat_s: int,
    costs: CostModel,
    days: int = 30,
    term: Term = "monthly",
) -> WhatIf:
    """Revenue, cost and margin of one tenant on ``tier`` for a full month of ``days``
    days at ``devices`` devices, each sending one frame per ``heartbeat_s`` seconds
    (⌊days × 86400 / heartbeat_s⌋ frames a device), on ``term``. Revenue is the invoice's
    lines 1-4 of that month (base, devices, overage, minimum top-up); the tier's and the
    costs' currency must be one."""
    if tier.currency != costs.currency:
        raise ValueError(f"the tier is priced in {tier.currency}, the costs in {costs.currency}")
    devices = count("devices", devices)
    if type(heartbeat_s) is not int or heartbeat_s < 1:
        raise ValueError(f"heartbeat_s must be an integer 1 or more, not {heartbeat_s!r}")
    if type(days) is not int or not 1 <= days <= 31:
        raise ValueError(f"days must be an integer 1..31, not {days!r}")
    frames = devices * (days * SECONDS_PER_DAY // heartbeat_s)
    base, device_lines = recurring_lines("what-if", tier, term, devices, Fraction(1), "")
    overage = overage_line("what-if", tier, frames)
    first_three = base.amount + sum(li.amount for li in device_lines)
    first_three += 0 if overage is None else overage.amount
    top_up = minimum_line(Fraction(money("minimum", tier.minimum)), first_three, tier.currency)
    revenue = first_three + (0 if top_up is None else top_up.amount)
    cost = costs.cost(devices, frames)
    return WhatIf(
        term=term,
        currency=tier.currency,
        devices=devices,
        heartbeat_s=heartbeat_s,
        days=days,
        frames=frames,
        revenue=revenue,
        mrr=full_month_mrr(tier, term, devices),
        cost=cost,
        margin=revenue - cost,
    )


def what_if_range(
    tier: Tier,
    device_counts: Iterable[int],
    heartbeat_s: int,
    costs: CostModel,
    days: int = 30,
    term: Term = "monthly",
) -> list[WhatIf]:
    """:func:`what_if` at each of ``device_counts`` (``range(100, 10_001, 100)``, say)."""
    return [what_if(tier, n, heartbeat_s, costs, days, term) for n in device_counts]
