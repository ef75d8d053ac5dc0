"""Exports of issued invoices (the records :meth:`core.store.Store.close_month` stores): one
function for JSON and one for CSV, so the command line and the API give the same bytes.

CSV has one row per invoice line, each carrying its invoice's number, tenant, month,
currency, issue time and totals, so that a month's export is one flat table a spreadsheet or
an accounting import takes as it is; amounts are integers of minor units, factors decimal
strings (and the exact fraction beside).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from typing import Any

from core import zones

CSV_COLUMNS = (
    "number",
    "tenant",
    "month",
    "currency",
    "issued_at",
    "line",
    "kind",
    "description",
    "quantity",
    "unit_price",
    "factor",
    "factor_exact",
    "amount",
    "subtotal",
    "tax",
    "total",
)


def invoice_json(record: Mapping[str, Any]) -> str:
    """One invoice as JSON text, with its issue time also as ISO 8601 in the tenant's zone."""
    shown = dict(record)
    shown["issued_at"] = zones.iso_local(record["issued_ns"], record.get("zone", "UTC"))
    return json.dumps(shown, indent=2, ensure_ascii=False) + "\n"


def invoices_csv(records: Iterable[Mapping[str, Any]]) -> str:
    """Invoices as CSV text (header first): a row per line, in the invoices' order."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for record in records:
        issued = zones.iso_local(record["issued_ns"], record.get("zone", "UTC"))
        for i, line in enumerate(record["lines"], 1):
            writer.writerow(
                (
                    record["number"],
                    record["tenant_name"],
                    record["month"],
                    record["currency"],
                    issued,
                    i,
                    line["kind"],
                    line["description"],
                    line["quantity"],
                    line["unit_price"],
                    line["factor"],
                    line["factor_exact"],
                    line["amount"],
                    record["subtotal"],
                    record["tax"],
                    record["total"],
                )
            )
    return out.getvalue()
