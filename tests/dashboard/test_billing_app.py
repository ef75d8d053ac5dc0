"""The Billing page under Streamlit's AppTest: a client sees its own invoices and no revenue
figure or close control; staff see the month's invoices, MRR and its movements, retention,
margins, the what-if and the valuation, and close a month through the server's API.

The close goes to a real ``uptally serve`` on 127.0.0.1 in its own process
(``server.testing.ProcessServer``), by ``POST /v1/months/{YYYY-MM}/close`` with the staff's
own token; the dashboard's store stays read-only.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import data, session
from server.testing import ProcessServer, free_port
from tests.support.apptest import on_page, shown
from tests.support.billing import FLEETS, seed_billing

PAGE = "views/billing.py"
CONFIG = """
[costs]
currency = "USD"
per_device_month = "12.5"
per_million_frames = 40
per_tenant_month = 1000

[revenue]
arr_multiple = "4.5"
"""
REVENUE_WORDS = ["MRR", "ARR", "NRR", "GRR", "churn", "Valuation", "margin", "What-if", "cost"]


@pytest.fixture
def story(tmp_path, monkeypatch):
    found = seed_billing(tmp_path / "db", close=2)  # the last month is left to close
    config = tmp_path / "uptally.toml"
    config.write_text(CONFIG)
    monkeypatch.setenv("UPTALLY_DATA", str(found.data))
    monkeypatch.setenv("UPTALLY_CONFIG", str(config))
    monkeypatch.setenv("UPTALLY_API", f"http://127.0.0.1:{free_port()}")  # nothing there
    return found


def selectbox(at: AppTest, label: str) -> Any:
    [found] = [s for s in at.selectbox if s.label == label]
    return found


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_a_client_sees_its_invoices_and_no_revenue_figure(story) -> None:
    at = billing_page(story.read["acme"])
    closed = story.closed[::-1]
    assert selectbox(at, "Month").options == closed  # its invoices' months only
    for month in closed:
        selectbox(at, "Month").set_value(month).run()
        assert not at.exception
        store = session.store()  # the dashboard's own handle: LMDB opens a path once
        [record] = [r for r in store.invoices(story.ids["acme"]) if r["month"] == month]
        assert list(at.dataframe[0].value["number"]) == [record["number"]]
        assert metrics(at) == {
            "Subtotal (USD)": data.money_text(record["subtotal"], "USD"),
            "Tax": data.money_text(record["tax"], "USD"),
            "Total": data.money_text(record["total"], "USD"),
        }
        lines = at.table[0].value
        assert list(lines["amount"]) == [
            data.money_text(li["amount"], "USD") for li in record["lines"]
        ]
        text = shown(at)
        assert not [w for w in REVENUE_WORDS if w in text]
        assert not [w for w in ("globex", *FLEETS["globex"]) if w in text]
    # no close control, no tabs of revenue
    assert not at.checkbox and not at.tabs and not at.get("vega_lite_chart")
    assert not [b for b in at.button if b.label.startswith("Close")]


def test_staff_see_invoices_mrr_retention_what_if_and_valuation(story) -> None:
    at = billing_page(story.staff)
    month = selectbox(at, "Month")
    assert month.value == story.months[2]  # the newest, open: the close form
    assert [str(i.value) for i in at.info][
        0
    ] == f"{story.months[2]} is not closed: no invoices issued yet."
    [close] = [b for b in at.button if b.label == f"Close {story.months[2]}"]
    assert close.disabled  # not before the confirmation
    month.set_value(story.months[1]).run()
    assert not at.exception
    assert [t.label for t in at.tabs] == ["Invoices", "Revenue", "Cost, margin and what-if"]
    assert list(at.dataframe[0].value["tenant"]) == ["acme", "globex"]
    found = metrics(at)
    store = session.store()  # the dashboard's own handle: LMDB opens a path once
    history = data.mrr_history(store, data.sign_in(store, story.staff))
    last = history.iloc[-1]
    assert found[f"MRR {story.months[1]}"] == data.money_text(int(last["end"]), "USD")
    assert found["ARR"] == data.money_text(12 * int(last["end"]), "USD")
    assert found["NRR (12 months)"] == "n/a"
    assert found["Valuation (× 4.5)"].startswith("USD ")
    subheaders = [s.value for s in at.subheader]
    for heading in ("MRR and its movements", "Retention and churn", "Valuation", "What-if"):
        assert heading in subheaders
    assert f"Cost and margin per tenant · {story.months[1]}" in subheaders
    assert len(at.get("vega_lite_chart")) >= 2  # movements, what-if
    # month to month retention
    at.button_group[0].set_value("1 month").run()
    assert not at.exception
    assert metrics(at)["NRR (1 month)"].endswith(" %")


def test_without_costs_or_multiple_the_page_says_so(story, monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("UPTALLY_CONFIG")
    at = billing_page(story.staff)
    text = shown(at)
    assert "No cost model is configured" in text
    assert "The valuation multiple is not configured" in text
    assert metrics(at)["Valuation"] == "not configured"
    assert "ARR" in metrics(at)


@pytest.fixture
def server(story, monkeypatch):
    """``uptally serve`` on the story's store, in its own process (the dashboard's read-only
    store and the server's share the directory, as in the field)."""
    live = ProcessServer(story.data)
    monkeypatch.setenv("UPTALLY_API", live.url)
    yield live
    live.stop()


def test_staff_close_a_month_through_the_server(story, server) -> None:
    month = story.months[2]
    at = billing_page(story.staff)
    at.checkbox[0].check().run()
    [close] = [b for b in at.button if b.label == f"Close {month}"]
    assert not close.disabled
    at.text_input[0].input("acme").run()  # the prefix, upper-cased
    [close] = [b for b in at.button if b.label == f"Close {month}"]
    close.click().run()
    assert not at.exception, at.exception
    year = time.strftime("%Y", time.gmtime())  # numbers carry the year of issue
    [done] = at.success
    assert (
        done.value
        == f"{month} closed, 2 invoices issued: ACME-{year}-000005 to ACME-{year}-000006."
    )
    # read again at once: the invoices, and the month's MRR among the revenue figures
    assert selectbox(at, "Month").value == month
    assert list(at.dataframe[0].value["number"]) == [f"ACME-{year}-000005", f"ACME-{year}-000006"]
    assert f"MRR {month}" in metrics(at)
    assert not [b for b in at.button if b.label.startswith("Close")]

    # closing it again (another tab, say) issues nothing, and says so
    assert data.close_month(
        data.sign_in(session.store(), story.staff),
        story.staff,
        server.url,
        month,
    ) == data.Closed(month, [], True)
    # a client's token is refused before anything is sent
    with pytest.raises(data.NotAllowed):
        data.close_month(
            data.sign_in(session.store(), story.read["acme"]), story.read["acme"], server.url, month
        )


def test_an_unreachable_server_is_a_clear_error(story) -> None:
    at = billing_page(story.staff)
    at.checkbox[0].check().run()
    [close] = [b for b in at.button if b.label.startswith("Close")]
    close.click().run()
    assert not at.exception
    [error] = at.error
    assert error.value.startswith(f"Cannot close {story.months[2]}: cannot reach the server at")
    assert not at.success
    assert [str(i.value) for i in at.info][0].endswith("is not closed: no invoices issued yet.")


def billing_page(secret: str) -> AppTest:
    return on_page(secret, PAGE, "Billing")
