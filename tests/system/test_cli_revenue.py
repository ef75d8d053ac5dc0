"""``uptally revenue`` and ``uptally what-if``: the figures of ``GET /v1/revenue`` and ``GET
/v1/what-if`` (one function computes each, :mod:`core.billing.report`), as text or, with
``--json``, the API's document; and ``close-month`` taking its prefix from ``[billing]``.

Tier ``flat`` (10,000 a month + 100 a device); ``acme`` (one device, every hour of January
2025) from 2025-01-01, cancelled 2025-02-01; ``bee`` (no device) from 2025-02-01. So January:
MRR 0 -> 10,100 (new); February: 10,100 -> 10,000 (acme churns, bee is new), logo churn
1 of 1. Costs: 10 a device-month, 1,000 a tenant-month; ARR multiple 3.
"""

from __future__ import annotations

import json
import time
from datetime import date

import pytest

from core.billing import report
from core.billing.subscriptions import Cancel, Start
from core.store import Store
from server.config import Config
from tests.support.hourly import ingest_hours, month_s
from uptally.cli import main

CONFIG = """
[billing]
invoice_prefix = "CLI"

[revenue]
arr_multiple = "3"

[costs]
currency = "USD"
per_device_month = 10
per_tenant_month = 1000

[tiers.flat]
base_fee = 10000
minimum = 0
annual_discount = "0"
included_frames = 10000000
overage_per_1000 = 0

[tiers.flat.device_price]
mode = "graduated"
tiers = [{ price = 100 }]
"""
YEAR = time.gmtime().tm_year


@pytest.fixture
def cli(tmp_path, capsys):
    config = tmp_path / "uptally.toml"
    config.write_text(CONFIG)
    data = tmp_path / "db"
    loaded = Config.load(str(config), env={})
    with Store(data, tiers=loaded.tiers) as store:
        acme = store.add_tenant("acme", slot_s=3600)
        bee = store.add_tenant("bee", slot_s=3600)
        store.add_subscription_event(acme.id, Start(date(2025, 1, 1), "flat"))
        store.add_subscription_event(acme.id, Cancel(date(2025, 2, 1)))
        store.add_subscription_event(bee.id, Start(date(2025, 2, 1), "flat"))
        start, end = month_s(2025, 1, "UTC")
        ingest_hours(store, acme.id, start, end, lambda ts: [("gw", ["a", ts])])
        store.checkpoint(time.time_ns())
    capsys.readouterr()

    def run(*argv: str, config_file: bool = True) -> tuple[int, str, str]:
        more = ["--config", str(config)] if config_file else []
        if argv[0] != "what-if":  # needs no store
            more += ["--data", str(data)]
        code = main([*argv, *more])
        out, err = capsys.readouterr()
        return code, out, err

    run.data = data  # type: ignore[attr-defined]
    run.config = loaded  # type: ignore[attr-defined]
    return run


def closed(cli) -> None:
    code, out, _ = cli("close-month", "2025-01")
    assert code == 0 and f"CLI-{YEAR}-000001  acme" in out  # the prefix of [billing]
    code, out, _ = cli("close-month", "2025-02", "--prefix", "FEB")  # --prefix wins
    assert code == 0 and f"FEB-{YEAR}-000002  bee" in out


def test_revenue_prints_the_figures_of_each_closed_month(cli) -> None:
    closed(cli)
    code, out, err = cli("revenue", "--from", "2025-01", "--to", "2025-03")
    assert code == 0, err
    assert "USD, 2025-01 to 2025-03:" in out
    assert "2025-01  MRR 0 -> 10100, ARR 121200, valuation 363600" in out
    assert "new 10100, reactivation 0, expansion 0, contraction 0, churn 0  (reconciles)" in out
    assert "2025-02  MRR 10100 -> 10000, ARR 120000, valuation 360000" in out
    assert "new 10000, reactivation 0, expansion 0, contraction 0, churn 10100  (reconciles)" in out
    assert "logo churn 100.0 % (1 of 1), NRR n/a, GRR n/a (cohort 0)" in out
    assert "revenue 10100, cost 1010, margin 9090" in out  # January: 10 + 1,000
    assert "acme: MRR 0 churn 10100, revenue 0, cost 0, margin 0" in out
    assert "bee: MRR 10000 new 10000, revenue 10000, cost 1000, margin 9000" in out
    assert "2025-03  not closed (uptally close-month 2025-03)" in out


def test_revenue_json_is_the_apis_document(cli) -> None:
    closed(cli)
    code, out, _ = cli("revenue", "--from", "2025-01", "--to", "2025-02", "--json")
    assert code == 0
    config = cli.config
    with Store(cli.data, tiers=config.tiers) as store:
        expected = report.revenue_document(
            store, (2025, 1), (2025, 2), config.costs, config.arr_multiple
        )
    assert json.loads(out) == expected
    jan, feb = expected["currencies"]["USD"]["months"]
    assert (jan["mrr_end"], feb["mrr_end"], feb["logo_churn"], feb["reconciles"]) == (
        10_100,
        10_000,
        "100.0",
        True,
    )


def test_revenue_refusals(cli) -> None:
    assert cli("revenue", "--from", "2025-03", "--to", "2025-01")[0] == 2
    assert cli("revenue", "--from", "2025-13", "--to", "2025-01")[0] == 2
    code, out, _ = cli("revenue", "--from", "2025-01", "--to", "2025-02")
    assert code == 0 and "no closed month" in out  # nothing closed yet


def test_close_month_takes_the_tiers_of_its_config(cli) -> None:
    code, out, _ = cli("close-month", "2025-01", config_file=False)
    # without --config there is no tier flat: the close refuses, writing nothing
    assert code == 1
    with Store(cli.data, tiers=cli.config.tiers) as store:
        assert store.closed_months() == {}
    code, out, _ = cli("close-month", "2025-01")
    assert code == 0 and f"CLI-{YEAR}-000001" in out


def test_what_if_prints_revenue_cost_and_margin(cli) -> None:
    code, out, err = cli("what-if", "flat", "--devices", "10,100", "--heartbeat-s", "3600")
    assert code == 0, err
    assert "flat (USD, monthly), 30 days at one frame per 3600 s; costs of [costs]:" in out
    # 10 devices: 10,000 + 1,000; cost 100 + 1,000
    assert "10 devices: 7200 frames, revenue 11000 (MRR 11000), cost 1100, margin 9900" in out
    assert "100 devices: 72000 frames, revenue 20000 (MRR 20000), cost 2000, margin 18000" in out
    code, out, _ = cli("what-if", "flat", "--devices", "10", "--heartbeat-s", "3600", "--json")
    config = cli.config
    assert json.loads(out) == report.what_if_document(
        "flat", config.tiers, [10], 3600, config.costs
    )
    code, _, err = cli("what-if", "gold", "--devices", "10")
    assert code == 1 and "no tier 'gold'" in err
    code, _, err = cli("what-if", "flat", "--devices", "ten")
    assert code == 1 and "whole numbers" in err
