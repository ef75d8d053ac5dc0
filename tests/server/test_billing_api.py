"""The billing routes on the real server (127.0.0.1): subscriptions, the month close,
invoices (JSON and CSV, each client its own), the revenue figures and the what-if.

A small portfolio worked out by hand, hourly slots, every device sending every hour, tax 0:

* USD, tier ``flat`` (10,000 a month + 100 a device) and ``big`` (20,000 + 100 a device):
  ``alpha`` (devices a, b) from 2025-01-01, ``big`` from 2025-03-01: MRR 10,200, 10,200,
  20,200 (expansion in March); ``beta`` (device c) from 2025-01-01, cancelled 2025-03-01:
  10,100, 10,100, then churn; ``gamma`` (device d) from 2025-02-01 with a 28-day trial:
  February is all trial (MRR 0, an invoice of 0), March 10,100 (new).
* EUR (Berlin), no devices, since 2024-03-01: ``delta`` on ``euro`` (20,000) to
  ``euro_lite`` (15,000) from 2025-02-01; ``eps`` on ``euro_lite`` to ``euro`` from
  2025-03-01. So March 2025's 12-month cohort is both: NRR 35,000 / 35,000 = 100.0 %, GRR
  (15,000 + 15,000) / 35,000 = 85.7 % (rounded down).

Months 2024-03 to 2025-03 are closed over the API when the server starts; April 2025 is not.
Costs (USD): 12.5 a device-month, 40 a million frames, 1,000 a tenant-month; ARR multiple 4.5.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from dataclasses import dataclass
from datetime import date
from decimal import Decimal as D
from typing import Any

import aiohttp
import pytest

from core import zones
from core.billing.export import invoice_json, invoices_csv
from core.billing.revenue import movements, percent_shown, retention
from core.billing.subscriptions import Cancel, Change, Start
from core.store import Store
from core.tiers import DEFAULT_TIERS, DevicePrice, Tier
from server.config import Config
from server.testing import ThreadServer, server_config
from tests.support.hourly import HOUR_S, ingest_hours, month_s

BERLIN = "Europe/Berlin"
FLAT = Tier(
    base_fee=10_000,
    device_price=DevicePrice("graduated", ((None, 100),)),
    included_frames=10_000_000,
    overage_per_1000=0,
    minimum=0,
    annual_discount=D("0"),
)
TIERS = {
    **DEFAULT_TIERS,
    "flat": FLAT,
    "big": dataclasses.replace(FLAT, base_fee=20_000),
    "euro": Tier(base_fee=20_000, minimum=0, currency="EUR"),
    "euro_lite": Tier(base_fee=15_000, minimum=0, currency="EUR"),
}
CONFIG_TOML = """
[billing]
invoice_prefix = "UPT"

[revenue]
arr_multiple = "4.5"

[costs]
currency = "USD"
per_device_month = "12.5"
per_million_frames = 40
per_tenant_month = 1000
"""
CLOSED = [(2024, m) for m in range(3, 13)] + [(2025, m) for m in (1, 2, 3)]
EVENTS = {
    "alpha": [Start(date(2025, 1, 1), "flat"), Change(date(2025, 3, 1), tier="big")],
    "beta": [Start(date(2025, 1, 1), "flat"), Cancel(date(2025, 3, 1))],
    "gamma": [Start(date(2025, 2, 1), "flat", trial_days=28)],
    "delta": [Start(date(2024, 3, 1), "euro"), Change(date(2025, 2, 1), tier="euro_lite")],
    "eps": [Start(date(2024, 3, 1), "euro_lite"), Change(date(2025, 3, 1), tier="euro")],
}
#: (device, first month, last month) of 2025 each USD tenant's devices report in
DEVICES = {"alpha": [("a", 1, 3), ("b", 1, 3)], "beta": [("c", 1, 2)], "gamma": [("d", 2, 3)]}


def hours(year: int, month: int) -> int:
    start, end = month_s(year, month, "UTC")
    return (end - start) // HOUR_S


def cost(devices: int, frames: int) -> int:
    """12.5 a device + 40 a million frames + 1,000, rounded half-up once (by hand: integers)."""
    exact_millionths = devices * 12_500_000 + frames * 40 + 1_000_000_000
    return (exact_millionths + 500_000) // 1_000_000


@dataclass
class Live:
    server: ThreadServer
    config: Config
    read: dict[str, str]
    staff: str
    closes: list[tuple[int, dict[str, Any]]]

    def call(
        self,
        method: str,
        path: str,
        token: str | None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, str, bytes]:
        async def go() -> tuple[int, str, bytes]:
            sent = dict(headers or {})
            if token is not None:
                sent["Authorization"] = f"Bearer {token}"
            data = None if body is None else json.dumps(body).encode()
            async with aiohttp.ClientSession() as s:
                async with s.request(method, self.server.url + path, data=data, headers=sent) as r:
                    return r.status, r.content_type, await r.read()

        return asyncio.run(go())

    def json(
        self, method: str, path: str, token: str | None = None, body: Any = None
    ) -> tuple[int, Any]:
        status, _, raw = self.call(method, path, self.staff if token is None else token, body)
        return status, json.loads(raw) if raw else None

    def get(self, path: str, token: str | None = None) -> tuple[int, Any]:
        return self.json("GET", path, token)

    def restart(self, tiers: dict[str, Tier]) -> None:
        """Stop the server and start it again on the same store with these tiers."""
        self.server.stop()
        self.config = dataclasses.replace(self.config, tiers=tiers)
        self.server = ThreadServer(self.config).start()

    @property
    def store(self) -> Store:
        return self.server.state.store


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    root = tmp_path_factory.mktemp("billing")
    (root / "uptally.toml").write_text(CONFIG_TOML)
    loaded = Config.load(str(root / "uptally.toml"), env={})
    data = root / "db"
    read = {}
    now = time.time_ns()
    with Store(data, tiers=TIERS) as store:
        for name in ("alpha", "beta", "gamma", "delta", "eps", "newco"):
            euro = name in ("delta", "eps")
            settings = {"tz": BERLIN, "currency": "EUR", "plan": "euro"} if euro else {}
            tenant = store.add_tenant(name, slot_s=3600, **settings)
            read[name] = store.add_token(tenant.id, "read")[0]
            for event in EVENTS.get(name, []):
                store.add_subscription_event(tenant.id, event, "seed", 0)
            for device, first, last in DEVICES.get(name, []):
                start, end = month_s(2025, first, "UTC")[0], month_s(2025, last, "UTC")[1]
                ingest_hours(store, tenant.id, start, end, lambda ts, d=device: [("gw", [d, ts])])
        staff = store.add_token(None, "staff")[0]
        store.checkpoint(now)
    config = server_config(
        data,
        tiers=TIERS,
        costs=loaded.costs,
        arr_multiple=loaded.arr_multiple,
        invoice_prefix=loaded.invoice_prefix,
    )
    server = ThreadServer(config).start()
    live = Live(server, config, read, staff, [])
    for year, month in CLOSED:  # in order, as an operator would
        live.closes.append(live.json("POST", f"/v1/months/{year:04d}-{month:02d}/close"))
    try:
        yield live
    finally:
        live.server.stop()


# --- subscriptions -------------------------------------------------------------------------------


def test_staff_record_subscription_events_and_readers_see_the_history(live) -> None:
    status, body = live.get("/v1/tenants/newco/subscription", live.read["newco"])
    assert status == 200 and body["events"] == [] and body["today"]["subscribed"] is False
    start = {"kind": "start", "on": "2025-04-01", "tier": "flat", "trial_days": 14}
    # a client's read token reads but may not write, and nothing is stored
    assert live.json("POST", "/v1/tenants/newco/subscription", live.read["newco"], start)[0] == 403
    assert live.get("/v1/tenants/newco/subscription")[1]["events"] == []
    status, body = live.json("POST", "/v1/tenants/newco/subscription", body=start)
    assert status == 201
    assert [
        (e["kind"], e["on"], e["tier"], e["term"], e["trial_days"]) for e in body["events"]
    ] == [("start", "2025-04-01", "flat", "monthly", 14)]
    assert body["events"][0]["by"].endswith("(staff)")
    assert body["today"] == {
        "date": zones.local_date(time.time_ns(), "UTC").isoformat(),
        "subscribed": True,
        "tier": "flat",
        "term": "monthly",
        "trial": False,
    }
    status, body = live.json(
        "POST",
        "/v1/tenants/newco/subscription",
        body={"kind": "change", "on": "2025-05-01", "term": "annual"},
    )
    assert status == 201 and [e["kind"] for e in body["events"]] == ["start", "change"]
    assert body["today"]["term"] == "annual"
    # another client's token learns nothing of it
    status, body = live.get("/v1/tenants/newco/subscription", live.read["alpha"])
    assert status == 403 and "newco" not in json.dumps(body)


@pytest.mark.parametrize(
    "event, detail",
    [
        ({"kind": "start", "on": "2025-06-01", "tier": "flat"}, "already subscribed"),
        ({"kind": "change", "on": "2025-06-01", "term": "annual"}, "changes nothing"),
        ({"kind": "change", "on": "2025-04-15", "tier": "big"}, "recorded in order"),
        ({"kind": "change", "on": "2025-06-01", "tier": "nope"}, "no tier 'nope'"),
        ({"kind": "change", "on": "2025-06-01", "tier": "euro"}, "priced in EUR"),
        ({"kind": "change", "on": "2025-06-01", "term": "weekly"}, "term must be"),
        ({"kind": "cancel", "on": "2025-06-01", "tier": "flat"}, "takes no tier"),
        ({"kind": "pause", "on": "2025-06-01"}, "kind must be"),
        ({"kind": "cancel", "on": "June"}, "on must be a local date"),
        ({"kind": "start", "on": "2025-06-01"}, "needs a tier"),
    ],
)
def test_a_refused_event_is_a_400_with_the_rules_message_and_stores_nothing(
    live, event, detail
) -> None:
    before = live.get("/v1/tenants/newco/subscription")[1]["events"]
    assert len(before) == 2  # the test above recorded them
    status, body = live.json("POST", "/v1/tenants/newco/subscription", body=event)
    assert status == 400 and detail in body["detail"], body
    assert live.get("/v1/tenants/newco/subscription")[1]["events"] == before


def test_an_event_in_a_closed_month_is_refused(live) -> None:
    before = live.store.subscription_records(live.store.tenant("alpha").id)
    cancel = {"kind": "cancel", "on": "2025-03-15"}
    status, body = live.json("POST", "/v1/tenants/alpha/subscription", body=cancel)
    assert status == 400 and "closed for alpha" in body["detail"]
    assert live.store.subscription_records(live.store.tenant("alpha").id) == before


# --- the close -----------------------------------------------------------------------------------


def test_the_close_issues_each_months_numbers_once_and_only_for_staff(live) -> None:
    year = zones.local_date(time.time_ns(), "UTC").year
    assert all(status == 200 for status, _ in live.closes)
    numbers = [n for _, body in live.closes for n in body["numbers"]]
    # ten months of delta and eps, then Jan (4 tenants), Feb (5), Mar (4): gapless, UPT
    assert numbers == [f"UPT-{year}-{seq:06d}" for seq in range(1, 20 + 4 + 5 + 4 + 1)]
    assert not any(body["already_closed"] for _, body in live.closes)
    march = live.closes[-1][1]
    assert (march["month"], len(march["numbers"])) == ("2025-03", 4)
    # again: nothing issued, and said so
    status, body = live.json("POST", "/v1/months/2025-03/close", body={"prefix": "INV"})
    assert status == 200 and body["numbers"] == [] and body["already_closed"] is True
    assert len(live.store.month_invoices(2025, 3)) == 4
    assert live.json("POST", "/v1/months/2025-04/close", live.read["alpha"])[0] == 403
    assert "2025-04" not in live.store.closed_months()


def test_a_month_that_has_not_ended_is_409_and_nothing_is_written(live) -> None:
    year, month = zones.month_of(time.time_ns(), "UTC")
    before = live.store.closed_months()
    status, body = live.json("POST", f"/v1/months/{year:04d}-{month:02d}/close")
    assert status == 409 and body["error"] == "not_closable"
    assert "has not ended" in body["detail"]
    assert live.store.closed_months() == before
    bad = live.json("POST", "/v1/months/2025-04/close", body={"prefix": "inv!"})
    assert bad[0] == 400 and live.json("POST", "/v1/months/2025-13/close")[0] == 400
    assert "2025-04" not in live.store.closed_months()


# --- invoices ------------------------------------------------------------------------------------


def test_invoices_as_json_and_csv_are_the_exports(live) -> None:
    tid = live.store.tenant("alpha").id
    records = live.store.invoices(tid)
    assert [(r["month"], r["subtotal"], r["total"]) for r in records] == [
        ("2025-01", 10_200, 10_200),
        ("2025-02", 10_200, 10_200),
        ("2025-03", 20_200, 20_200),
    ]
    for token in (live.staff, live.read["alpha"]):
        status, body = live.get("/v1/tenants/alpha/invoices", token)
        assert status == 200
        assert body["invoices"] == [json.loads(invoice_json(r)) for r in records]
        status, kind, raw = live.call(
            "GET", "/v1/tenants/alpha/invoices", token, headers={"Accept": "text/csv"}
        )
        assert status == 200 and kind == "text/csv" and raw.decode() == invoices_csv(records)
    number = records[2]["number"]
    status, kind, raw = live.call("GET", f"/v1/tenants/alpha/invoices/{number}", live.staff)
    assert (status, kind, raw.decode()) == (200, "application/json", invoice_json(records[2]))
    status, kind, raw = live.call(
        "GET",
        f"/v1/tenants/alpha/invoices/{number}",
        live.read["alpha"],
        headers={"Accept": "application/json;q=0.5, text/csv"},
    )
    assert (status, kind, raw.decode()) == (200, "text/csv", invoices_csv([records[2]]))
    # a trial-only month is an invoice of 0
    gamma = live.get("/v1/tenants/gamma/invoices")[1]["invoices"]
    assert [(r["month"], r["total"]) for r in gamma] == [("2025-02", 0), ("2025-03", 10_100)]


def test_a_client_sees_no_invoice_of_another(live) -> None:
    number = live.store.invoices(live.store.tenant("alpha").id)[0]["number"]
    beta = live.read["beta"]
    for path in ("/v1/tenants/alpha/invoices", f"/v1/tenants/alpha/invoices/{number}"):
        for accept in ("application/json", "text/csv"):
            status, _, raw = live.call("GET", path, beta, headers={"Accept": accept})
            assert status == 403 and b"10200" not in raw and number.encode() not in raw
    # through its own tenant, another's number is 404 exactly as a number that never was
    mine = live.call("GET", f"/v1/tenants/beta/invoices/{number}", beta)
    none = live.call("GET", "/v1/tenants/beta/invoices/UPT-2099-000001", beta)
    assert mine[0] == none[0] == 404
    assert json.loads(mine[2])["error"] == json.loads(none[2])["error"] == "not_found"
    assert json.loads(mine[2])["detail"] == f"no invoice {number!r}"
    assert live.call("GET", f"/v1/tenants/beta/invoices/{number}", live.staff)[0] == 404
    assert live.call("GET", "/v1/tenants/nosuch/invoices", beta)[0] == 403
    status, body = live.get("/v1/tenants/beta/invoices", beta)
    assert [r["tenant_name"] for r in body["invoices"]] == ["beta", "beta"]


# --- revenue -------------------------------------------------------------------------------------

JAN, FEB, MAR = hours(2025, 1), hours(2025, 2), hours(2025, 3)
USD_EXPECTED = [
    # month, start, end, new, expansion, churn, logo churn, devices, per device, revenue, cost
    ("2025-01", 0, 20_300, 20_300, 0, 0, None, 3, "6766.67", 20_300,
     cost(2, 2 * JAN) + cost(1, JAN)),
    ("2025-02", 20_300, 20_300, 0, 0, 0, "0.0", 4, "5075.00", 20_300,
     cost(2, 2 * FEB) + cost(1, FEB) + cost(1, FEB)),
    ("2025-03", 20_300, 30_300, 10_100, 10_000, 10_100, "50.0", 3, "10100.00", 30_300,
     cost(2, 2 * MAR) + cost(1, MAR)),
]  # fmt: skip


def revenue(live) -> dict[str, Any]:
    status, body = live.get("/v1/revenue?from=2025-01&to=2025-04")
    assert status == 200, body
    return body


def test_revenue_figures_of_a_portfolio_worked_by_hand(live) -> None:
    body = revenue(live)
    assert (body["from"], body["to"], body["arr_multiple"]) == ("2025-01", "2025-04", "4.5")
    assert body["costs"] == {
        "currency": "USD",
        "per_device_month": "12.5",
        "per_million_frames": "40",
        "per_tenant_month": "1000",
    }
    assert set(body["currencies"]) == {"USD", "EUR"}  # newco: no closed month, no figure
    usd = body["currencies"]["USD"]["months"]
    assert usd[3] == {"month": "2025-04", "closed": False}
    for row, expected in zip(usd, USD_EXPECTED, strict=False):
        month, start, end, new, expansion, churn, logo, devices, per_device, rev, spent = expected
        assert row["month"] == month and row["closed"] is True
        assert (row["mrr_start"], row["mrr_end"], row["arr"]) == (start, end, 12 * end)
        assert row["movements"] == {
            "new": new,
            "reactivation": 0,
            "expansion": expansion,
            "contraction": 0,
            "churn": churn,
        }
        assert row["reconciles"] is True
        assert start + new + expansion - churn == end  # the identity, by hand
        assert (row["logo_churn"], row["nrr"], row["grr"]) == (logo, None, None)
        assert (row["devices"], row["revenue_per_device"]) == (devices, per_device)
        assert (row["revenue"], row["cost"], row["margin"]) == (rev, spent, rev - spent)
        assert row["valuation"] == 12 * end * 9 // 2  # ARR x 4.5, whole here
        assert sum(t["cost"] for t in row["tenants"]) == row["cost"]
        assert sum(t["revenue"] for t in row["tenants"]) == row["revenue"]
    assert cost(2, 2 * JAN) == 1025 and cost(1, JAN) == 1013  # 1025.06 and 1012.53
    march = {t["tenant"]: t for t in usd[2]["tenants"]}
    assert {name: (t["mrr"], t["movement"], t["movement_size"]) for name, t in march.items()} == {
        "alpha": (20_200, "expansion", 10_000),
        "beta": (0, "churn", 10_100),
        "gamma": (10_100, "new", 10_100),
    }
    assert march["beta"]["invoice"] is None and march["beta"]["cost"] == 0
    assert march["gamma"]["margin"] == 10_100 - cost(1, MAR)
    eur = body["currencies"]["EUR"]["months"]
    assert [(r["mrr_start"], r["mrr_end"]) for r in eur[:3]] == [
        (35_000, 35_000),
        (35_000, 30_000),
        (30_000, 35_000),
    ]
    assert [r["movements"]["contraction"] for r in eur[:3]] == [0, 5_000, 0]
    assert [r["movements"]["expansion"] for r in eur[:3]] == [0, 0, 5_000]
    assert [(r["nrr"], r["grr"], r["retention_cohort"]) for r in eur[:3]] == [
        (None, None, 0),
        (None, None, 0),
        ("100.0", "85.7", 2),  # cohort of 2024-03: delta 20,000 -> 15,000, eps 15,000 -> 20,000
    ]
    assert [r["logo_churn"] for r in eur[:3]] == ["0.0", "0.0", "0.0"]
    assert all(r["cost"] is None and r["margin"] is None for r in eur[:3])  # costs are USD
    assert eur[2]["revenue_per_device"] is None and eur[2]["revenue"] == 35_000
    assert eur[2]["valuation"] == 35_000 * 12 * 9 // 2


def test_revenue_figures_are_the_pure_functions_of_the_kept_mrr(live) -> None:
    store = live.store
    portfolio = [store.kept_mrr(t) for t in sorted(store.tenants)]
    body = revenue(live)
    for currency, block in body["currencies"].items():
        for row in block["months"][:3]:
            month = zones.parse_month(row["month"])
            moved = movements(portfolio, *month)[currency]
            kept = retention(portfolio, *month)[currency]
            assert moved.reconciles and row["reconciles"] is True
            assert (row["mrr_start"], row["mrr_end"]) == (moved.start, moved.end)
            assert row["logo_churn"] == percent_shown(moved.logo_churn)
            assert (row["nrr"], row["grr"]) == (percent_shown(kept.net), percent_shown(kept.gross))


def test_revenue_is_for_staff_and_checks_its_months(live) -> None:
    assert live.get("/v1/revenue?from=2025-01&to=2025-03", live.read["alpha"])[0] == 403
    assert live.call("GET", "/v1/revenue?from=2025-01&to=2025-03", None)[0] == 401
    for query in ("from=2025-01", "from=2025-03&to=2025-01", "from=2025-1&to=2025-03"):
        status, body = live.get(f"/v1/revenue?{query}")
        assert status == 400 and body["error"] == "bad_parameter", query


# --- the what-if ---------------------------------------------------------------------------------


def test_what_if_at_one_and_many_device_counts(live) -> None:
    # 720 frames a device (30 days at one an hour); revenue 10,000 + 100 a device
    status, body = live.get("/v1/what-if?tier=flat&devices=10,100&heartbeat_s=3600")
    assert status == 200, body
    assert (body["tier"], body["currency"], body["term"], body["days"]) == (
        "flat",
        "USD",
        "monthly",
        30,
    )
    assert body["points"] == [
        {
            "devices": 10,
            "frames": 7_200,
            "revenue": 11_000,
            "mrr": 11_000,
            "cost": 1_125,  # 125 + 0.288 + 1,000
            "margin": 9_875,
            "margin_percent": "89.7",  # 89.77..., rounded down
        },
        {
            "devices": 100,
            "frames": 72_000,
            "revenue": 20_000,
            "mrr": 20_000,
            "cost": 2_253,  # 1,250 + 2.88 + 1,000
            "margin": 17_747,
            "margin_percent": "88.7",
        },
    ]
    status, body = live.get(
        "/v1/what-if?tier=flat&devices_from=0&devices_to=20&devices_step=10&heartbeat_s=3600"
    )
    assert [(p["devices"], p["revenue"], p["cost"]) for p in body["points"]] == [
        (0, 10_000, 1_000),
        (10, 11_000, 1_125),
        (20, 12_000, cost(20, 20 * 720)),
    ]
    one = live.get("/v1/what-if?tier=flat&devices=10")[1]  # the tier's heartbeat: 60 s
    assert one["heartbeat_s"] == 60 and one["points"][0]["frames"] == 10 * 43_200


@pytest.mark.parametrize(
    "query, detail",
    [
        ("devices=10", "give tier"),
        ("tier=gold&devices=10", "no tier 'gold'"),
        ("tier=euro&devices=10", "priced in EUR"),
        ("tier=flat&devices=ten", "whole numbers"),
        ("tier=flat", "give devices"),
        ("tier=flat&devices=10&devices_from=1&devices_to=5&devices_step=1", "give devices, or"),
        ("tier=flat&devices_from=0&devices_to=100000&devices_step=1", "at most 1000"),
        ("tier=flat&devices=10&heartbeat_s=0", "heartbeat_s"),
        ("tier=flat&devices=10&term=weekly", "term must be"),
    ],
)
def test_what_if_refusals(live, query, detail) -> None:
    status, body = live.get(f"/v1/what-if?{query}")
    assert status == 400 and detail in body["detail"], body


def test_what_if_is_for_staff(live) -> None:
    assert live.get("/v1/what-if?tier=flat&devices=10", live.read["alpha"])[0] == 403


# --- last: the past survives a changed tier file -------------------------------------------------


def test_a_changed_tier_price_never_rewrites_the_past(live) -> None:
    before = revenue(live)
    dearer = {**TIERS, "flat": dataclasses.replace(FLAT, base_fee=50_000)}
    live.restart(dearer)
    after = revenue(live)
    for currency in ("USD", "EUR"):
        for old, new in zip(
            before["currencies"][currency]["months"],
            after["currencies"][currency]["months"],
            strict=True,
        ):
            assert new == old
    # what is quoted now is the new price
    point = live.get("/v1/what-if?tier=flat&devices=10&heartbeat_s=3600")[1]["points"][0]
    assert point["revenue"] == 51_000
