"""The revenue document and the what-if document: what ``GET /v1/revenue``, ``GET
/v1/what-if``, ``uptally revenue`` and ``uptally what-if`` answer (``docs/billing.md``,
"Revenue figures and the what-if over the API").

One function each, pure over :class:`~core.store.Store` reads (``kept_mrr``,
``month_invoices``, ``closed_months``, ``frames_between``), so the server, the command and the
dashboard give the same figures. MRR comes only from what each close kept
(:meth:`~core.store.Store.kept_mrr`), so a tier file edited later never rewrites the past; a
month in the range that is not closed yet is answered as ``{"month": ..., "closed": false}``
with no figures (its MRR is not kept until its invoices are issued). Every figure is per
currency; money is an ``int`` of minor units, ratios are percent strings with one decimal
rounded down (``null`` when the denominator is 0).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from core import zones
from core.billing.invoice import round_half_up
from core.billing.revenue import (
    CostModel,
    Month,
    TenantMonths,
    WhatIf,
    arr,
    movement,
    movements,
    percent_shown,
    retention,
    revenue_per_device,
    valuation,
    what_if_range,
)
from core.billing.subscriptions import TERMS, Term
from core.tiers import Tier

if TYPE_CHECKING:
    from core.store import Store

#: the most months one revenue document spans, and the most points of one what-if
MAX_MONTHS = 120
MAX_POINTS = 1000
#: retention's window, months (the contract's 12)
RETENTION_MONTHS = 12


def month_label(month: Month) -> str:
    return f"{month[0]:04d}-{month[1]:02d}"


def month_range(first: Month, last: Month) -> list[Month]:
    """The months from ``first`` to ``last``, inclusive; a ValueError when ``last`` comes
    before ``first`` or the range spans more than :data:`MAX_MONTHS`."""
    start, end = first[0] * 12 + first[1] - 1, last[0] * 12 + last[1] - 1
    if end < start:
        raise ValueError(f"to ({month_label(last)}) comes before from ({month_label(first)})")
    if end - start + 1 > MAX_MONTHS:
        raise ValueError(f"a revenue document spans at most {MAX_MONTHS} months: ask in parts")
    return [(i // 12, i % 12 + 1) for i in range(start, end + 1)]


def per_device_text(value: Fraction | None) -> str | None:
    """Minor units per device, rounded half-up to two decimals (``"133.33"``)."""
    if value is None:
        return None
    hundredths = round_half_up(value * 100)
    return f"{hundredths // 100}.{hundredths % 100:02d}"


def costs_json(costs: CostModel | None) -> dict[str, Any] | None:
    if costs is None:
        return None
    return {
        "currency": costs.currency,
        "per_device_month": str(costs.per_device_month),
        "per_million_frames": str(costs.per_million_frames),
        "per_tenant_month": str(costs.per_tenant_month),
    }


def revenue_document(
    store: Store,
    first: Month,
    last: Month,
    costs: CostModel | None,
    arr_multiple: Decimal,
) -> dict[str, Any]:
    """The revenue figures of months ``first``..``last`` (each tenant's local months), per
    currency: a row per month (see ``docs/billing.md`` for every key). Reads the store only."""
    months = month_range(first, last)
    store.refresh_tenants()
    closed = store.closed_months()
    tenants = [store.tenants[tid] for tid in sorted(store.tenants)]
    kept = {t.id: store.kept_mrr(t.id) for t in tenants}
    # a tenant with no kept month adds nothing to any figure (absent is MRR 0)
    portfolio = [kept[t.id] for t in tenants if kept[t.id].mrr]
    by_name = {t.name: t for t in tenants}
    currencies = sorted({p.currency for p in portfolio})
    rows: dict[str, list[dict[str, Any]]] = {c: [] for c in currencies}
    for month in months:
        label = month_label(month)
        close = closed.get(label)
        if close is None:
            for currency in currencies:
                rows[currency].append({"month": label, "closed": False})
            continue
        invoices = {r["tenant"]: r for r in store.month_invoices(*month)}
        moved = movements(portfolio, *month)
        kept_retention = retention(portfolio, *month, months=RETENTION_MONTHS)
        per_device = revenue_per_device(portfolio, *month)
        for currency in currencies:
            m = moved[currency]
            r = kept_retention[currency]
            tenant_rows = _tenant_rows(
                store,
                [p for p in portfolio if p.currency == currency],
                by_name,
                invoices,
                month,
                costs,
            )
            revenue = sum(t["revenue"] for t in tenant_rows)
            costed = costs is not None and costs.currency == currency
            cost = sum(t["cost"] for t in tenant_rows) if costed else None
            mrr_arr = arr(m.end)
            rows[currency].append(
                {
                    "month": label,
                    "closed": True,
                    "closed_at": zones.iso_local(close["closed_ns"], "UTC"),
                    "mrr_start": m.start,
                    "mrr_end": m.end,
                    "arr": mrr_arr,
                    "movements": {
                        "new": m.new,
                        "reactivation": m.reactivation,
                        "expansion": m.expansion,
                        "contraction": m.contraction,
                        "churn": m.churn,
                    },
                    "reconciles": m.reconciles,
                    "tenants_at_start": m.tenants_at_start,
                    "churned": m.churned,
                    "logo_churn": percent_shown(m.logo_churn),
                    "retention_cohort": r.cohort,
                    "nrr": percent_shown(r.net),
                    "grr": percent_shown(r.gross),
                    "devices": sum(t["devices"] for t in tenant_rows),
                    "revenue_per_device": per_device_text(per_device[currency]),
                    "revenue": revenue,
                    "cost": cost,
                    "margin": None if cost is None else revenue - cost,
                    "valuation": valuation(mrr_arr, arr_multiple),
                    "tenants": tenant_rows,
                }
            )
    return {
        "from": month_label(first),
        "to": month_label(last),
        "arr_multiple": str(arr_multiple),
        "retention_months": RETENTION_MONTHS,
        "costs": costs_json(costs),
        "currencies": {c: {"months": rows[c]} for c in currencies},
    }


def _tenant_rows(
    store: Store,
    portfolio: Sequence[TenantMonths],
    by_name: Mapping[str, Any],
    invoices: Mapping[int, Mapping[str, Any]],
    month: Month,
    costs: CostModel | None,
) -> list[dict[str, Any]]:
    """A row per tenant of the month: those with a kept month-end or a movement in it."""
    out = []
    for kept in portfolio:
        kind, size = movement(kept, *month)
        if month not in kept.mrr and kind is None:
            continue
        tenant = by_name[kept.tenant]
        record = invoices.get(tenant.id)
        devices = kept.devices.get(month, 0)
        revenue = 0 if record is None else int(record["subtotal"])
        cost: int | None = None
        if costs is not None and costs.currency == kept.currency and month in kept.mrr:
            start_ns, end_ns = zones.month_bounds(*month, tenant.tz)
            frames = store.frames_between(tenant.id, start_ns, end_ns)
            cost = costs.cost(devices, frames, 1)
        elif costs is not None and costs.currency == kept.currency:
            cost = 0  # churned this month: no tenant-month served
        out.append(
            {
                "tenant": kept.tenant,
                "mrr": kept.at(*month),
                "movement": kind,
                "movement_size": size,
                "devices": devices,
                "invoice": None if record is None else record["number"],
                "revenue": revenue,
                "cost": cost,
                "margin": None if cost is None else revenue - cost,
            }
        )
    return out


# --- the what-if ------------------------------------------------------------------------------


def device_counts(
    devices: str | None, start: int | None, stop: int | None, step: int | None
) -> list[int]:
    """The device counts of a what-if: ``devices`` (``"10,100,1000"``) or the range
    ``start``..``stop`` (inclusive) by ``step``; a ValueError says what is wrong."""
    ranged = (start, stop, step)
    if devices is not None:
        if any(v is not None for v in ranged):
            raise ValueError("give devices, or devices_from, devices_to and devices_step")
        try:
            counts = [int(part) for part in devices.split(",")]
        except ValueError:
            raise ValueError(
                f"devices must be whole numbers separated by commas, not {devices!r}"
            ) from None
    elif all(v is not None for v in ranged):
        assert start is not None and stop is not None and step is not None
        if step < 1 or stop < start:
            raise ValueError("devices_step must be 1 or more and devices_to at least devices_from")
        if (stop - start) // step + 1 > MAX_POINTS:
            raise ValueError(f"a what-if answers at most {MAX_POINTS} device counts")
        counts = list(range(start, stop + 1, step))
    else:
        raise ValueError("give devices (10,100,1000) or devices_from, devices_to, devices_step")
    if not counts or any(n < 0 for n in counts):
        raise ValueError("device counts must be 0 or more")
    if len(counts) > MAX_POINTS:
        raise ValueError(f"a what-if answers at most {MAX_POINTS} device counts")
    return counts


def what_if_document(
    tier_name: str,
    tiers: Mapping[str, Tier],
    counts: Iterable[int],
    heartbeat_s: int | None,
    costs: CostModel | None,
    days: int = 30,
    term: str = "monthly",
) -> dict[str, Any]:
    """Revenue, MRR, cost and margin of one tenant on ``tier_name`` at each device count, a
    full month of ``days`` days at one frame per ``heartbeat_s`` (default: the tier's). With
    no cost model configured, costs are 0 (``"costs": null`` says so). A ValueError for an
    unknown tier, a term, or a tier priced in another currency than the costs."""
    if tier_name not in tiers:
        raise ValueError(f"no tier {tier_name!r} (tiers: {', '.join(sorted(tiers))})")
    if term not in TERMS:
        raise ValueError(f'term must be "monthly" or "annual", not {term!r}')
    tier = tiers[tier_name]
    beat = tier.heartbeat_s if heartbeat_s is None else heartbeat_s
    model = CostModel(tier.currency) if costs is None else costs
    the_term: Term = "annual" if term == "annual" else "monthly"
    points = what_if_range(tier, list(counts), beat, model, days, the_term)
    return {
        "tier": tier_name,
        "currency": tier.currency,
        "term": the_term,
        "days": days,
        "heartbeat_s": beat,
        "costs": costs_json(costs),
        "points": [_point(w) for w in points],
    }


def _point(w: WhatIf) -> dict[str, Any]:
    return {
        "devices": w.devices,
        "frames": w.frames,
        "revenue": w.revenue,
        "mrr": w.mrr,
        "cost": w.cost,
        "margin": w.margin,
        "margin_percent": percent_shown(w.margin_ratio),
    }
