"""Configuration: the example in docs/operations.md loads, env overrides win, typos fail."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from pathlib import Path

import pytest

from core.billing.revenue import CostModel
from core.tiers import DEFAULT_TIERS, Catalog, Tier
from server.config import Config

DOCS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def documented_example(tmp_path: Path) -> Path:
    text = DOCS.read_text().split("```toml")[1].split("```")[0]
    path = tmp_path / "uptally.toml"
    path.write_text(text)
    return path


def test_documented_example_is_the_defaults(tmp_path) -> None:
    loaded = Config.load(str(documented_example(tmp_path)), env={})
    assert loaded == Config(tiers=loaded.tiers)
    assert loaded.tier("standard") == Tier()


def test_environment_overrides_the_file(tmp_path) -> None:
    env = {
        "UPTALLY_PORT": "9000",
        "UPTALLY_ACCESS_LOG": "yes",
        "UPTALLY_DATA": "/srv/u",
        "UPTALLY_CHECKPOINT_INTERVAL_S": "0.5",
    }
    c = Config.load(str(documented_example(tmp_path)), env=env)
    assert (c.port, c.access_log, c.data, c.checkpoint_interval_s) == (9000, True, "/srv/u", 0.5)


def test_unknown_settings_are_refused(tmp_path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[server]\nprot = 80\n")
    with pytest.raises(ValueError, match="prot"):
        Config.load(str(path), env={})


def test_unknown_plan_falls_back_to_standard() -> None:
    assert Config().tier("no-such-plan") == Config().tier("standard")


@pytest.mark.parametrize(
    "text, name",
    [
        ('[server]\naccess_log = "false"\n', "access_log"),  # a string, not false
        ('[server]\nport = "8080"\n', "port"),
        ('[ingest]\nmax_body = "1000000"\n', "max_body"),  # a 500 on every ingest
        ("[ingest]\nretry_after_s = 1.5\n", "retry_after_s"),  # Retry-After is whole seconds
        ('[plans.gold]\nrate_fps = "fast"\n', "rate_fps"),
        ("[plans.gold]\nrate_fps = 0\n", "rate_fps"),  # a 500 on every ingest
        ("[plans.gold]\nburst_s = 0.0\n", "burst_s"),  # a 429 for ever
        ("[plans.gold]\nrate = 5\n", "rate"),
        ("[ingets]\nmax_frames = 10\n", "ingets"),  # a misspelt section is not skipped
        ("[tiers.gold]\nuptime_target = 99.9\n", "tiers.gold.uptime_target"),  # a float
        ('[tiers.gold]\nbase_fee = "4900"\n', "tiers.gold.base_fee"),
        ('[tiers.gold]\ncredit_bands = [["99", "101"]]\n', r"tiers.gold.credit_bands\[0\]"),
        ('[tiers.gold]\ncurrency = "usd"\n', "tiers.gold.currency"),
        ("[tiers.gold]\nuptime = 99\n", "tiers.gold.uptime"),
        ("[plans.gold]\nrate_fps = 1\n[tiers.gold]\nrate_fps = 2\n", "gold"),  # defined twice
        ("[tiers]\ngold = 1\n", "tiers.gold"),
        ("[upstream]\nuptime_guarantee = 99.95\n", "upstream.uptime_guarantee"),
        ('[upstream]\nguarantee = "99.95"\n', "upstream.guarantee"),
        ('[server]\nupstream = "99.95"\n', "upstream"),  # a section of its own
        ("[server]\ntiers = 1\n", "tiers"),
        ("[revenue]\narr_multiple = 5.0\n", "revenue.arr_multiple"),  # a float
        ('[revenue]\narr_multiple = "-1"\n', "revenue.arr_multiple"),
        ('[revenue]\nmultiple = "5"\n', "revenue.multiple"),
        ('[billing]\ninvoice_prefix = "inv"\n', "billing.invoice_prefix"),
        ("[billing]\ninvoice_prefix = 1\n", "billing.invoice_prefix"),
        ('[billing]\nprefix = "INV"\n', "billing.prefix"),
        ('[costs]\nper_device_month = "1"\n', "costs.currency"),
        ('[costs]\ncurrency = "USD"\nper_device_month = 12.5\n', "costs.per_device_month"),
        ('[costs]\ncurrency = "USD"\nper_frame = 1\n', "costs.per_frame"),
        ('[server]\ncosts = "x"\n', "costs"),
        ('[server]\ninvoice_prefix = "INV"\n', "invoice_prefix"),
    ],
)
def test_wrong_types_and_values_are_refused(tmp_path, text, name) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=name):
        Config.load(str(path), env={})


def test_numbers_may_be_written_as_integers(tmp_path) -> None:
    path = tmp_path / "ok.toml"
    path.write_text("[ingest]\ncheckpoint_interval_s = 5\n[plans.gold]\nrate_fps = 100\n")
    c = Config.load(str(path), env={})
    assert c.checkpoint_interval_s == 5.0 and c.tier("gold") == Tier(rate_fps=100.0)


def test_environment_values_are_checked(tmp_path) -> None:
    assert Config.load(env={"UPTALLY_ACCESS_LOG": "off"}).access_log is False
    assert Config.load(env={"UPTALLY_ACCESS_LOG": "on"}).access_log is True
    for env in ({"UPTALLY_ACCESS_LOG": "maybe"}, {"UPTALLY_PORT": "80x"}):
        with pytest.raises(ValueError, match=next(iter(env))):
            Config.load(env=env)


@pytest.mark.parametrize(
    "text, env, name",
    [
        ("[ingest]\nmax_inflight = 0\n", {}, "max_inflight"),  # a 503 for ever
        ("[ingest]\ndecode_threads = 0\n", {}, "decode_threads"),
        ("[server]\nport = 70000\n", {}, "port"),
        ("[ingest]\ncheckpoint_interval_s = 0\n", {}, "checkpoint_interval_s"),
        ("[server]\nplans = 1\n", {}, "plans"),  # plans are tables of their own
        ("", {"UPTALLY_MAX_BODY": "0"}, "UPTALLY_MAX_BODY"),  # a 413 for ever
        ("", {"UPTALLY_SWITCH_INTERVAL_S": "nan"}, "UPTALLY_SWITCH_INTERVAL_S"),
    ],
)
def test_settings_out_of_range_are_refused(tmp_path, text, env, name) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=name):
        Config.load(str(path), env=env)


def test_tiers_and_upstream_sections_load(tmp_path) -> None:
    path = tmp_path / "ok.toml"
    path.write_text(
        '[upstream]\nuptime_guarantee = "99.95"\n'
        '[tiers.gold]\nuptime_target = "99.99"\ncredit_bands = [["99.99", "10"]]\n'
        "[tiers.basic]\nrate_fps = 1000\n"
    )
    c = Config.load(str(path), env={"UPTALLY_UPSTREAM": "1", "UPTALLY_TIERS": "x"})
    assert c.upstream == Decimal("99.95")
    assert c.tier("gold").uptime_target == Decimal("99.99")
    assert c.tier("basic") == dataclasses.replace(DEFAULT_TIERS["basic"], rate_fps=1000.0)
    assert c.catalog == Catalog(c.tiers, Decimal("99.95"))
    assert c.catalog.flagged() == ["gold"]


def test_without_upstream_nothing_is_flagged(tmp_path) -> None:
    assert Config().upstream is None and Config().catalog.flagged() == []
    assert Config.load(str(documented_example(tmp_path)), env={}).catalog == Catalog()


def test_webhook_settings_default_to_the_contract_and_are_checked(tmp_path) -> None:
    assert (Config().webhook_backoff_s, Config().webhook_timeout_s) == (60.0, 10.0)
    assert Config().webhook_max_attempts == 8
    path = tmp_path / "hooks.toml"
    path.write_text("[webhooks]\nbackoff_s = 1\nmax_attempts = 3\n")
    c = Config.load(str(path), env={"UPTALLY_WEBHOOK_TIMEOUT_S": "0.5"})
    assert (c.webhook_backoff_s, c.webhook_timeout_s, c.webhook_max_attempts) == (1.0, 0.5, 3)
    for text, name in [
        ("[webhooks]\nbackof_s = 1\n", "webhooks.backof_s"),
        ("[webhooks]\nbackoff_s = 0\n", "backoff_s"),
        ("[webhooks]\nmax_attempts = 0\n", "max_attempts"),
        ('[webhooks]\ntimeout_s = "10"\n', "timeout_s"),
    ]:
        path.write_text(text)
        with pytest.raises(ValueError, match=name):
            Config.load(str(path), env={})


def test_billing_revenue_and_costs_sections_load(tmp_path) -> None:
    path = tmp_path / "uptally.toml"
    path.write_text(
        '[billing]\ninvoice_prefix = "ACME-"\n[revenue]\narr_multiple = "4.5"\n'
        '[costs]\ncurrency = "EUR"\nper_device_month = "12.5"\nper_million_frames = 40\n'
    )
    loaded = Config.load(str(path), env={})
    assert (loaded.invoice_prefix, loaded.arr_multiple) == ("ACME-", Decimal("4.5"))
    assert loaded.costs == CostModel("EUR", Decimal("12.5"), Decimal(40), Decimal(0))
    defaults = Config.load(None, env={})
    assert (defaults.invoice_prefix, defaults.arr_multiple, defaults.costs) == (
        "INV",
        Decimal(5),
        None,
    )


def test_the_documented_costs_table_loads(tmp_path) -> None:
    section = DOCS.read_text().split("### Billing, revenue and costs")[1].split("\n## ")[0]
    path = tmp_path / "costs.toml"
    path.write_text(section.split("```toml")[1].split("```")[0])
    loaded = Config.load(str(path), env={})
    assert loaded.costs == CostModel("USD", Decimal("12.5"), Decimal(40), Decimal(1000))
