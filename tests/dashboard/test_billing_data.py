"""The Billing page's data functions over a read-only store, on both engines: a month's
invoices are the store's own, money is shown exactly from integer minor units, MRR and its
movements come from the month-end MRR kept with each close and reconcile, and a client's
read token sees its own invoices only and is refused every revenue figure."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from core import zones
from core.billing.revenue import CostModel, percent_shown, what_if
from core.store import Store
from core.tiers import DEFAULT_TIERS, Catalog
from dashboard import data
from server.testing import free_port
from tests.support.billing import seed_billing

CATALOG = Catalog(DEFAULT_TIERS)
#: docs/billing.md's cost model
COSTS = CostModel("USD", Decimal("12.5"), Decimal(40), Decimal(1000))


@pytest.fixture
def story(tmp_path, engine):
    return seed_billing(tmp_path / "db", engine)


@pytest.fixture
def reader(story, engine):
    with Store(story.data, readonly=True, engine=engine, tiers=DEFAULT_TIERS) as store:
        yield store


def months(label: str) -> tuple[int, int]:
    return zones.parse_month(label)


def test_the_invoice_table_is_the_stores_invoices(story, reader) -> None:
    staff = data.sign_in(reader, story.staff)
    assert data.billing_months(reader, staff, story.now_ns)[:3] == story.months[::-1]
    for month in story.months:
        stored = reader.month_invoices(*months(month))
        found = data.month_invoices(reader, staff, month)
        assert found.closed and found.records == stored
        table = found.table
        assert list(table["number"]) == [r["number"] for r in stored]
        assert list(table["tenant"]) == ["acme", "globex"]  # creation order
        for key in ("subtotal", "tax", "total"):
            assert list(table[key]) == [data.money_text(r[key], "USD") for r in stored]
        assert list(table["devices"]) == [r["billable_devices"] for r in stored]
        assert list(table["frames"]) == [r["frames"] for r in stored]
        [totals] = found.totals.to_dict("records")
        assert totals["invoices"] == 2
        assert totals["total"] == data.money_text(sum(r["total"] for r in stored), "USD")
        # issue times in each tenant's zone
        assert table["issued"][0] == zones.iso_local(stored[0]["issued_ns"], "Europe/Berlin")
    # a month not closed: no invoices, said so
    later = data.month_invoices(reader, staff, "2099-01")
    assert not later.closed and later.table.empty and later.totals.empty


def test_an_invoices_lines_are_its_records_money_shown_exactly(story, reader) -> None:
    staff = data.sign_in(reader, story.staff)
    [acme, _] = reader.month_invoices(*months(story.months[1]))  # premium, with a credit
    lines = data.invoice_lines(reader, staff, acme["number"])
    assert list(lines.columns[:6]) == data.INVOICE_LINE_COLUMNS
    assert list(lines["kind"]) == [li["kind"] for li in acme["lines"]]
    assert "sla_credit" in set(lines["kind"]) and "minimum" in set(lines["kind"])
    for row, line in zip(lines.to_dict("records"), acme["lines"], strict=True):
        assert row["description"] == line["description"]
        assert row["quantity"] == line["quantity"]
        assert row["factor"] == line["factor"] and row["factor exact"] == line["factor_exact"]
        assert row["unit price"] == data.money_text(line["unit_price"], "USD")
        assert row["amount"] == data.money_text(line["amount"], "USD")
    assert sum(li["amount"] for li in acme["lines"]) == acme["total"]
    credit = lines[lines["kind"] == "sla_credit"]["amount"].iloc[0]
    assert credit.startswith("USD -") and credit.endswith(".00")


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        (123456, "USD", "USD 1,234.56"),
        (-4770, "EUR", "EUR -47.70"),
        (5, "USD", "USD 0.05"),
        (0, "USD", "USD 0.00"),
        (-5, "USD", "USD -0.05"),
        (1200, "JPY", "JPY 1,200"),
        (1234567, "KWD", "KWD 1,234.567"),
        # past a float's 53 bits: exact all the same
        (12_345_678_901_234_567_891, "USD", "USD 123,456,789,012,345,678.91"),
    ],
)
def test_money_is_formatted_from_integers(amount, currency, text) -> None:
    assert data.money_text(amount, currency) == text


def test_money_refuses_a_float() -> None:
    with pytest.raises(TypeError):
        data.money_text(12.5, "USD")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        data.money_text(True, "USD")  # type: ignore[arg-type]


def test_mrr_and_its_movements_reconcile_with_the_kept_mrr(story, reader) -> None:
    staff = data.sign_in(reader, story.staff)
    history = data.mrr_history(reader, staff)
    assert list(history["month"]) == story.months and set(history["currency"]) == {"USD"}
    kept = [reader.kept_mrr(story.ids[n]) for n in ("acme", "globex")]
    assert history["reconciles"].all()
    previous = 0
    for row in history.to_dict("records"):
        end = sum(k.at(*months(row["month"])) for k in kept)
        assert row["end"] == end and row["arr"] == 12 * end
        assert row["start"] == previous  # the month before the first close counts 0
        moved = row["new"] + row["reactivation"] + row["expansion"]
        assert row["start"] + moved - row["contraction"] - row["churn"] == row["end"]
        previous = end
    first, second, third = history.to_dict("records")
    assert first["new"] == first["end"] > 0 and first["tenants at start"] == 0
    assert first["logo churn"] == "n/a"
    acme = kept[0]
    expansion = acme.at(*months(story.months[1])) - acme.at(*months(story.months[0]))
    assert second["expansion"] == expansion > 0 and second["churn"] == 0
    globex = kept[1]
    assert third["churn"] == globex.at(*months(story.months[1])) > 0
    assert third["contraction"] > 0 and third["churned"] == 1
    assert third["logo churn"] == "50.0 %"
    shown = data.mrr_shown(history)
    assert shown["end"].iloc[0] == data.money_text(int(first["end"]), "USD")


def test_retention_is_cores_ratio_shown_rounded_down(story, reader) -> None:
    staff = data.sign_in(reader, story.staff)
    yearly = data.retention_history(reader, staff)
    assert set(yearly["nrr"]) == {"n/a"} and set(yearly["cohort"]) == {0}  # a quarter's story
    monthly = data.retention_history(reader, staff, months=1).set_index("month")
    kept = [reader.kept_mrr(story.ids[n]) for n in ("acme", "globex")]
    before, last = months(story.months[1]), months(story.months[2])
    then = sum(k.at(*before) for k in kept)
    now = sum(k.at(*last) for k in kept)
    kept_now = sum(min(k.at(*last), k.at(*before)) for k in kept)
    row = monthly.loc[story.months[2]]
    assert row["nrr"] == f"{percent_shown(Fraction(now, then))} %"
    assert row["grr"] == f"{percent_shown(Fraction(kept_now, then))} %"
    assert row["logo churn"] == "50.0 %" and row["cohort"] == 2


def test_cost_and_margin_per_tenant(story, reader) -> None:
    staff = data.sign_in(reader, story.staff)
    found = data.month_margins(reader, staff, story.months[0], COSTS)
    assert found.other_currency == []
    stored = {r["tenant_name"]: r for r in reader.month_invoices(*months(story.months[0]))}
    for row in found.table.to_dict("records"):
        record = stored[row["tenant"]]
        cost = COSTS.cost(record["billable_devices"], record["frames"])
        assert row["cost_minor"] == cost
        assert row["revenue_minor"] == record["subtotal"]  # tax is not revenue
        assert row["margin_minor"] == record["subtotal"] - cost
        assert row["margin"] == data.money_text(record["subtotal"] - cost, "USD")
    euro = CostModel("EUR", Decimal(1))
    assert data.month_margins(reader, staff, story.months[0], euro).other_currency == [
        "acme",
        "globex",
    ]


def test_the_what_if_is_cores_and_the_valuation_is_arr_times_the_multiple(story, reader) -> None:
    staff = data.sign_in(reader, story.staff)
    table = data.what_if_table(staff, CATALOG, "standard", [100, 1000], 60, COSTS)
    row = table.set_index("devices").loc[1000]
    # docs/billing.md: 274,900 earned, 15,228 cost, 259,672 left
    assert (row["revenue_minor"], row["cost_minor"], row["margin_minor"]) == (
        274_900,
        15_228,
        259_672,
    )
    assert row["margin"] == "USD 2,596.72"
    assert (
        table["margin_minor"].iloc[0] == what_if(DEFAULT_TIERS["standard"], 100, 60, COSTS).margin
    )
    with pytest.raises(ValueError, match="no tier"):
        data.what_if_table(staff, CATALOG, "gold", [1], 60, COSTS)

    last = months(story.months[2])
    mrr = sum(reader.kept_mrr(story.ids[n]).at(*last) for n in ("acme", "globex"))
    [shown] = data.valuations(reader, staff, Decimal("4.5")).to_dict("records")
    assert shown["arr"] == data.money_text(12 * mrr, "USD")
    assert shown["valuation"] == data.money_text(12 * mrr * 9 // 2 + (12 * mrr * 9 % 2), "USD")
    [bare] = data.valuations(reader, staff, None).to_dict("records")
    assert bare["arr"] == shown["arr"] and bare["valuation"] is None


def test_a_client_sees_its_own_invoices_and_no_revenue_figure(story, reader) -> None:
    client = data.sign_in(reader, story.read["acme"])
    assert data.billing_months(reader, client, story.now_ns) == story.months[::-1]
    for month in story.months:
        found = data.month_invoices(reader, client, month)
        assert list(found.table["tenant"]) == ["acme"]
        [totals] = found.totals.to_dict("records")
        assert totals["invoices"] == 1
        assert totals["total"] == found.table["total"].iloc[0]  # not the month's sum
    acme, globex = reader.month_invoices(*months(story.months[0]))
    assert list(data.invoice_lines(reader, client, acme["number"])["kind"])[0] == "base"
    refused = f"this sign-in may not read invoice {globex['number']!r}"
    with pytest.raises(data.NotAllowed, match=refused):
        data.invoice_lines(reader, client, globex["number"])
    with pytest.raises(data.NotAllowed, match="may not read invoice 'INV-2026-999999'"):
        data.invoice_lines(reader, client, "INV-2026-999999")  # the same answer
    revenue = [
        lambda: data.portfolio(reader, client),
        lambda: data.mrr_history(reader, client),
        lambda: data.retention_history(reader, client),
        lambda: data.month_margins(reader, client, story.months[0], COSTS),
        lambda: data.what_if_table(client, CATALOG, "standard", [100], 60, COSTS),
        lambda: data.valuations(reader, client, Decimal(4)),
    ]
    for figure in revenue:
        with pytest.raises(data.NotAllowed, match="this sign-in may not read revenue figures"):
            figure()
    with pytest.raises(data.NotAllowed, match="only staff close a month"):
        data.close_month(client, story.read["acme"], "http://127.0.0.1:9", story.months[2])


def test_revenue_settings_of_the_config() -> None:
    none = data.revenue_settings({})
    assert none.costs is None and none.arr_multiple is None and not none.problems
    doc = {
        "costs": {"currency": "USD", "per_device_month": "12.5", "per_tenant_month": 1000},
        "revenue": {"arr_multiple": "4.5"},
    }
    found = data.revenue_settings(doc)
    assert found.costs == CostModel("USD", Decimal("12.5"), Decimal(0), Decimal(1000))
    assert found.arr_multiple == Decimal("4.5") and not found.problems
    bad = data.revenue_settings(
        {"costs": {"currency": "USD", "per_device_month": 12.5}, "revenue": {"arr_multiple": 4.5}}
    )
    assert bad.costs is None and bad.arr_multiple is None
    assert [p.split(":")[0] for p in bad.problems] == ["[costs]", "[revenue]"]
    assert "float" in bad.problems[0] and "float" in bad.problems[1]
    for wrong in ({"arr_multiple": "0"}, {"multiple": 4}, "4"):
        assert data.revenue_settings({"revenue": wrong}).problems


def test_a_close_the_server_cannot_be_reached_for_says_so(tmp_path) -> None:
    story = seed_billing(tmp_path / "db", close=2)
    with Store(story.data, readonly=True, tiers=DEFAULT_TIERS) as reader:
        staff = data.sign_in(reader, story.staff)
    api = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(data.CloseRefused, match=f"cannot reach the server at {api}"):
        data.close_month(staff, story.staff, api, story.months[2])
