"""docs/billing.md's worked invoice: the TOML and the table of lines on the page are read
and recomputed, so the page cannot drift from the code."""

from __future__ import annotations

import re
import tomllib
from datetime import date
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

from core import zones
from core.billing.invoice import build_invoice
from core.billing.subscriptions import Change, Start, history, spans
from core.tiers import parse_tiers

PAGE = Path(__file__).resolve().parents[2] / "docs" / "billing.md"


def worked_example() -> tuple[dict, list[tuple[str, int, int, str, int]], dict[str, int]]:
    text = PAGE.read_text()
    section = text.split("## A worked invoice", 1)[1].split("\n## ", 1)[0]
    inputs = tomllib.loads(re.search(r"```toml\n(.*?)```", section, re.S)[1])
    rows = []
    for row in re.findall(r"^\| ([a-z_]+) \|(.*)\|$", section, re.M):
        kind, rest = row
        if kind == "kind":
            continue
        quantity, unit_price, factor, amount, _ = (c.strip() for c in rest.split("|"))
        rows.append((kind, int(quantity), int(unit_price), factor, int(amount)))
    totals = {k: int(v) for k, v in re.findall(r"(subtotal|tax|total) = (-?\d+)", section)}
    return inputs, rows, totals


def test_the_worked_invoice_on_the_page_is_what_the_code_bills() -> None:
    inputs, rows, totals = worked_example()
    assert len(rows) == 13 and set(totals) == {"subtotal", "tax", "total"}
    tiers = parse_tiers(tiers=inputs["tiers"])
    tenant = inputs["tenant"]
    zones.zone(tenant["tz"])  # a real zone; the dates below are its local dates
    events = []
    for event in inputs["events"]:
        if "start" in event:
            on = date.fromisoformat(event["start"])
            events.append(Start(on, event["tier"], event["term"], event.get("trial_days", 0)))
        else:
            on = date.fromisoformat(event["change"])
            events.append(Change(on, tier=event.get("tier"), term=event.get("term")))
    h = history(events, tiers, tenant["currency"])
    month = inputs["month"]
    year, number = zones.parse_month(month["month"])
    up, down = month["up"], month["down"]
    inv = build_invoice(
        spans(h, year, number),
        tiers,
        billable_devices=month["billable_devices"],
        frames=month["frames"],
        attainment=Fraction(100 * up, up + down),
        tax_rate=Decimal(tenant["tax_rate"]),
        currency=tenant["currency"],
    )
    got = [(li.kind, li.quantity, li.unit_price, li.factor_text, li.amount) for li in inv.lines]
    assert got == rows
    assert {"subtotal": inv.subtotal, "tax": inv.tax, "total": inv.total} == totals
