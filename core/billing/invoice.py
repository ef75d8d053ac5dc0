"""A month's invoice from its billed spans (``docs/service.md``, "Invoices", "Lines").

Lines come in this order, grouped by kind (within a kind, spans in date order, brackets
ascending):

1. ``base``: one per span, a trial span at 0.
2. ``devices``: per span, one per price bracket holding at least one of the month's billable
   devices (the whole count is priced in every span, then prorated by the span's days).
3. ``overage``: started thousands of frames above ``included_frames`` of the tier billed on
   the month's last billed day, at its price; never prorated. Only when above 0.
4. ``minimum``: the top-up to the prorated minimum when lines 1-3 are below it. Only when
   above 0.
5. ``sla_credit``: minus the credit percent of (lines 1, 2 and 4), whenever the percent of
   the last billed day's tier is above 0.
6. ``tax``: the tenant's rate on lines 1-5; always there, at 0 % too.

Every line's ``amount`` is ``round_half_up(quantity × unit_price × factor)``, computed once
from exact values; ``factor`` is an exact :class:`~fractions.Fraction` (proration times
discount, or a percent), shown as a decimal string by :func:`decimal_text`. Amounts are
``int`` minor units, never floats; the total is the sum of the lines.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any, Literal

from core.billing.money import money_text
from core.billing.subscriptions import Span, Term, days_in_month
from core.tiers import DevicePrice, Tier

LineKind = Literal["base", "devices", "overage", "minimum", "sla_credit", "tax"]
KINDS: tuple[LineKind, ...] = ("base", "devices", "overage", "minimum", "sla_credit", "tax")

#: decimals of a factor that does not terminate (10/31), as shown; amounts use the exact value
FACTOR_PLACES = 10


def exact(name: str, value: object) -> Fraction:
    """An exact rate (Decimal, int or Fraction) as a Fraction; a float or bool is refused."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int | Fraction):
        raise TypeError(f"{name} must be a Decimal, int or Fraction, never {value!r}")
    if isinstance(value, Decimal) and not value.is_finite():
        raise ValueError(f"{name} must be finite, not {value!r}")
    return Fraction(value)


def money(name: str, value: object) -> int:
    """An amount or price of minor units: an int (not a bool, never a float)."""
    if type(value) is not int:
        raise TypeError(f"{name} must be an int of minor units, never {value!r}")
    return value


def count(name: str, value: object) -> int:
    """A count (devices, frames): an int, 0 or more."""
    if type(value) is not int or value < 0:
        raise ValueError(f"{name} must be an integer 0 or more, not {value!r}")
    return value


def round_half_up(value: Fraction | int) -> int:
    """To the nearest integer, halves away from zero (0.5 → 1, −0.5 → −1, −2.5 → −3)."""
    magnitude = math.floor(abs(Fraction(value)) + Fraction(1, 2))
    return -magnitude if value < 0 else magnitude


def decimal_text(value: Fraction, places: int = FACTOR_PLACES) -> str:
    """An exact fraction as a decimal string: all its digits when it terminates (``0.875``,
    ``1``, ``-0.1``), else rounded half-up to ``places`` decimals (10/31 → ``0.3225806452``).
    ``exact_text`` keeps the exact value."""
    den = value.denominator
    for prime in (2, 5):
        while den % prime == 0:
            den //= prime
    if den == 1:  # terminates: the fewest decimals that hold it exactly
        digits = 0
        while (value * 10**digits).denominator != 1:
            digits += 1
    else:
        digits = places
    scaled = round_half_up(value * 10**digits)
    sign = "-" if scaled < 0 else ""
    whole, part = divmod(abs(scaled), 10**digits)
    return f"{sign}{whole}.{part:0{digits}d}" if digits else f"{sign}{whole}"


def exact_text(value: Fraction) -> str:
    """An exact fraction as ``"10/31"`` (``"1"`` when whole)."""
    return str(value)


@dataclass(frozen=True)
class Line:
    kind: LineKind
    description: str
    quantity: int
    unit_price: int
    #: exact: proration × discount for base and devices, a percent for credit and tax
    factor: Fraction
    amount: int

    @property
    def factor_text(self) -> str:
        return decimal_text(self.factor)

    def to_json(self) -> dict[str, Any]:
        """The record's form: ``factor`` as a decimal string (rounded to ten decimals when it
        does not terminate) and ``factor_exact`` as the exact fraction it was computed from."""
        return {
            "kind": self.kind,
            "description": self.description,
            "quantity": self.quantity,
            "unit_price": self.unit_price,
            "factor": self.factor_text,
            "factor_exact": exact_text(self.factor),
            "amount": self.amount,
        }


def line(
    kind: LineKind, description: str, quantity: int, unit_price: int, factor: Fraction
) -> Line:
    """A line whose amount is its exact product, rounded once, half-up."""
    amount = round_half_up(quantity * unit_price * factor)
    return Line(kind, description, quantity, unit_price, factor, amount)


def bracket_counts(price: DevicePrice, devices: int) -> list[tuple[int, int | None, int, int]]:
    """(first device, last device or None, count, price) of each bracket holding at least one
    of ``devices``, ascending. Graduated: each device at the bracket it falls in; volume: all
    of them at the bracket their total falls in."""
    out: list[tuple[int, int | None, int, int]] = []
    below = 0
    for up_to, unit in price.brackets:
        if price.mode == "graduated":
            held = (devices if up_to is None else min(devices, up_to)) - below
            if held > 0:
                out.append((below + 1, up_to, held, unit))
        elif devices > below and (up_to is None or devices <= up_to):
            out.append((below + 1, up_to, devices, unit))
        below = below if up_to is None else up_to
    return out


def discount(tier: Tier, term: Term) -> Fraction:
    """The factor an annual term takes off base and devices (1 on a monthly term)."""
    if term == "annual":
        return 1 - exact("annual_discount", tier.annual_discount) / 100
    return Fraction(1)


def recurring_lines(
    tier_name: str, tier: Tier, term: Term, devices: int, proration: Fraction, label: str
) -> tuple[Line, list[Line]]:
    """The ``base`` line and the ``devices`` lines of one span (or a full month: proration
    1) at the span's tier and term: factor = proration × discount, 0 for a trial."""
    factor = proration * discount(tier, term)
    terms = f"{tier_name}, {term}{', ' + label if label else ''}"
    base = line("base", f"Base fee ({terms})", 1, money("base_fee", tier.base_fee), factor)
    device_lines = []
    for first, last, held, unit in bracket_counts(tier.device_price, devices):
        reach = f"{first}+" if last is None else f"{first}-{last}"
        what = f"Devices {reach}, {tier.device_price.mode} ({terms})"
        device_lines.append(line("devices", what, held, money("device price", unit), factor))
    return base, device_lines


def overage_line(tier_name: str, tier: Tier, frames: int) -> Line | None:
    """Started thousands of frames above ``included_frames``, at the tier's price; None when
    the amount is 0."""
    excess = max(0, frames - count("included_frames", tier.included_frames))
    started = -(-excess // 1000)
    price = money("overage_per_1000", tier.overage_per_1000)
    if started * price <= 0:
        return None
    what = (
        f"Overage: {frames} frames, {tier.included_frames} included, "
        f"{started} started thousands ({tier_name})"
    )
    return line("overage", what, started, price, Fraction(1))


def minimum_line(minimum_due: Fraction, first_three: int, currency: str) -> Line | None:
    """The top-up from lines 1-3 (``first_three``, already discounted) to the month's
    minimum (``minimum_due``: each span's minimum × its days / the month's, trial spans 0),
    itself never discounted: one line of quantity 1, unit price the rounded top-up, factor
    1; None when it rounds to 0 or below."""
    top_up = round_half_up(minimum_due - first_three) if minimum_due > first_three else 0
    if top_up <= 0:
        return None
    what = (
        f"Minimum commitment {money_text(round_half_up(minimum_due), currency)} (prorated,"
        f" trial days 0) less lines 1-3 of {money_text(first_three, currency)}"
    )
    return Line("minimum", what, 1, top_up, Fraction(1), top_up)


def shown_attainment(attainment: Fraction | Decimal | None) -> str | None:
    """A percent with three decimals, rounded down (``core.sla.attainment.shown``'s rule)."""
    if attainment is None:
        return None
    thousandths = math.floor(exact("attainment", attainment) * 1000)
    return f"{thousandths // 1000}.{thousandths % 1000:03d}"


@dataclass(frozen=True)
class Invoice:
    """One tenant's invoice for one local month, lines in the contract's order."""

    year: int
    month: int
    currency: str
    days_in_month: int
    lines: tuple[Line, ...]
    subtotal: int  # lines 1-5
    tax: int
    total: int
    billable_devices: int
    frames: int
    #: the tier billed on the month's last billed day (target, bands, frames, overage)
    last_tier: str
    attainment: str | None  # shown, three decimals rounded down; None: no attainment
    band: tuple[Decimal, Decimal] | None
    credit_percent: Decimal
    tax_rate: Decimal

    @property
    def label(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def of_kind(self, kind: LineKind) -> list[Line]:
        return [li for li in self.lines if li.kind == kind]

    def to_json(self) -> dict[str, Any]:
        return {
            "month": self.label,
            "currency": self.currency,
            "days_in_month": self.days_in_month,
            "lines": [li.to_json() for li in self.lines],
            "subtotal": self.subtotal,
            "tax": self.tax,
            "total": self.total,
            "billable_devices": self.billable_devices,
            "frames": self.frames,
            "last_tier": self.last_tier,
            "attainment": self.attainment,
            "band": None
            if self.band is None
            else {"below": str(self.band[0]), "credit_percent": str(self.band[1])},
            "credit_percent": str(self.credit_percent),
            "tax_rate": str(self.tax_rate),
        }


def _span_label(span: Span, days: int) -> str:
    trial = ", trial" if span.trial else ""
    return f"{span.first.isoformat()}..{span.last.isoformat()}, {span.days}/{days} days{trial}"


def build_invoice(
    spans: Sequence[Span],
    tiers: Mapping[str, Tier],
    *,
    billable_devices: int,
    frames: int,
    attainment: Fraction | Decimal | None,
    tax_rate: Decimal,
    currency: str,
) -> Invoice:
    """The invoice of the month the ``spans`` lie in (:func:`~core.billing.subscriptions.spans`
    of one local month; at least one: a month without spans has no invoice).

    ``billable_devices``: the month's billable devices; ``frames``: the accepted frames of its
    billed, non-trial days; ``attainment``: the month's exact attainment percent (None: none);
    ``tax_rate``: percent. The credit band comes from the tier of the last billed day."""
    if not spans:
        raise ValueError("a month without a billed or trial day has no invoice")
    year, month = spans[0].first.year, spans[0].first.month
    for span in spans:
        if (span.first.year, span.first.month, span.last.year, span.last.month) != (
            year,
            month,
            year,
            month,
        ) or span.last < span.first:
            raise ValueError(f"spans must lie in one month, {year:04d}-{month:02d}: {span}")
    for before, after in zip(spans, spans[1:], strict=False):
        if after.first <= before.last:
            raise ValueError(f"spans must be in date order and apart: {before}, {after}")
    devices = count("billable_devices", billable_devices)
    frames = count("frames", frames)
    rate = exact("tax_rate", tax_rate)
    if not 0 <= rate <= 100:
        raise ValueError(f"tax_rate must be a percent in 0..100, not {tax_rate!r}")
    for span in spans:
        if span.tier not in tiers:
            raise ValueError(f"no tier {span.tier!r} for the span {span}")
        if tiers[span.tier].currency != currency:
            raise ValueError(
                f"tier {span.tier} is priced in {tiers[span.tier].currency}, the tenant in"
                f" {currency}"
            )
    if frames and all(span.trial for span in spans):
        raise ValueError(
            f"frames count only billed, non-trial days, and this month has none, not {frames}"
        )
    days = days_in_month(year, month)

    base_lines: list[Line] = []
    device_lines: list[Line] = []
    minimum_due = Fraction(0)
    for span in spans:
        tier = tiers[span.tier]
        proration = Fraction(0) if span.trial else Fraction(span.days, days)
        base, per_bracket = recurring_lines(
            span.tier, tier, span.term, devices, proration, _span_label(span, days)
        )
        base_lines.append(base)
        device_lines += per_bracket
        minimum_due += money("minimum", tier.minimum) * proration

    last_name = spans[-1].tier
    last = tiers[last_name]
    overage = overage_line(last_name, last, frames)
    overage_lines = [] if overage is None else [overage]

    recurring = sum(li.amount for li in base_lines + device_lines)
    first_three = recurring + sum(li.amount for li in overage_lines)
    top_up_line = minimum_line(minimum_due, first_three, currency)
    minimum_lines = [] if top_up_line is None else [top_up_line]
    top_up = 0 if top_up_line is None else top_up_line.amount

    band = last.band(attainment)
    percent = Decimal(0) if band is None else band[1]
    shown = shown_attainment(attainment)
    credit_lines = []
    if percent > 0:
        assert band is not None
        credited = recurring + top_up  # lines 1, 2 and 4
        what = (
            f"SLA credit {percent} % of lines 1, 2 and 4: attainment {shown} %"
            f" below {band[0]} % ({last_name})"
        )
        credit_lines.append(line("sla_credit", what, 1, credited, -exact("credit", percent) / 100))

    before_tax = base_lines + device_lines + overage_lines + minimum_lines + credit_lines
    subtotal = sum(li.amount for li in before_tax)
    tax = line("tax", f"Tax {tax_rate} % of lines 1-5", 1, subtotal, rate / 100)
    lines = (*before_tax, tax)
    return Invoice(
        year=year,
        month=month,
        currency=currency,
        days_in_month=days,
        lines=lines,
        subtotal=subtotal,
        tax=tax.amount,
        total=sum(li.amount for li in lines),
        billable_devices=devices,
        frames=frames,
        last_tier=last_name,
        attainment=shown,
        band=band,
        credit_percent=percent,
        tax_rate=Decimal(tax_rate),
    )


def invoice_number(prefix: str, year: int, seq: int) -> str:
    """``<prefix>-<YYYY>-<seq>``, seq six digits (the year of issue; seq restarts each year)."""
    if not (type(seq) is int and 1 <= seq <= 999_999):
        raise ValueError(f"seq must be 1..999999, not {seq!r}")
    return f"{prefix}-{year:04d}-{seq:06d}"
