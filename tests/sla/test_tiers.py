"""Service tiers (service-v1.md, "Tiers", "Numbers"): credit bands and the target compare
exactly, and a tier file is refused, naming the key, wherever it would bill a guess."""

from __future__ import annotations

import dataclasses
from decimal import Decimal as D
from fractions import Fraction as F
from pathlib import Path

import pytest

from core.tiers import (
    DEFAULT_TIER,
    DEFAULT_TIERS,
    AlertRules,
    Catalog,
    DevicePrice,
    SupportHours,
    Tier,
    load_catalog,
    load_tiers,
    parse_catalog,
    parse_tier,
    parse_tiers,
    tier_of,
)

STANDARD = DEFAULT_TIERS["standard"]  # bands 99.5 -> 10, 99.0 -> 25, 95.0 -> 50; target 99.5


def tier(**settings: object) -> Tier:
    """The tier of a ``[tiers.gold]`` table."""
    return parse_tiers(tiers={"gold": settings})["gold"]


def refused(settings: dict[str, object], key: str) -> str:
    """The message refusing a ``[tiers.gold]`` table, which must name ``key`` in full."""
    with pytest.raises(ValueError) as info:
        tier(**settings)
    message = str(info.value)
    assert f"tiers.gold.{key}" in message, message
    return message


# --- credit bands and the target ------------------------------------------------------------


@pytest.mark.parametrize(
    "attainment, credit",
    [
        (D("100"), D("0")),
        (D("99.5"), D("0")),  # exactly at the threshold earns nothing from that band
        (D("99.50000"), D("0")),
        (D("99.4999"), D("10")),  # just below earns it
        (F(995, 10) - F(1, 10**12), D("10")),
        (D("99.0"), D("10")),  # at 99.0: below 99.5 only
        (D("98.9"), D("25")),
        (D("95.0"), D("25")),
        (D("94.9999"), D("50")),
        (D("0"), D("50")),
    ],
)
def test_credit_is_earned_strictly_below_each_threshold(attainment, credit) -> None:
    assert STANDARD.credit_percent(attainment) == credit


def test_the_band_of_highest_credit_that_applies_wins_whatever_the_order() -> None:
    # bands need not rise as they fall: at 97 both apply, the 30 % band wins over 20 %
    gold = tier(uptime_target="99", credit_bands=[["95", "20"], ["99", "30"]])
    assert gold.credit_percent(D("97")) == D("30")
    assert gold.band(D("97")) == (D("99"), D("30"))
    assert gold.credit_percent(D("90")) == D("30")  # the lower band applies too, credits less
    assert gold.band(D("99")) is None and gold.credit_percent(D("99")) == 0


def test_of_equal_credits_the_band_reported_is_the_lowest() -> None:
    gold = tier(uptime_target="99", credit_bands=[["99", "10"], ["98", "10"]])
    assert gold.band(D("97")) == (D("98"), D("10"))
    assert gold.band(D("98.5")) == (D("99"), D("10"))


def test_the_band_reported_is_the_winning_one() -> None:
    assert STANDARD.band(D("99.4999")) == (D("99.5"), D("10"))
    assert STANDARD.band(D("98.9")) == (D("99.0"), D("25"))
    assert STANDARD.band(D("99.5")) is None


def test_no_attainment_earns_nothing_and_is_met() -> None:
    for t in DEFAULT_TIERS.values():
        assert t.credit_percent(None) == 0 and t.band(None) is None and t.met(None)


def test_met_at_exactly_the_target_not_a_hair_below() -> None:
    premium = DEFAULT_TIERS["premium"]
    assert premium.met(D("99.9")) and premium.met(F(999, 10)) and premium.met(D("100"))
    assert not premium.met(F(999, 10) - F(1, 10**18))
    assert not premium.met(D("99.8999999999999999999999"))


def test_a_fraction_compares_exactly_not_as_a_float() -> None:
    # 2/3 % as a float rounds; as fractions, 2/3 lies below "0.6666666666666667"
    gold = tier(uptime_target="0.6666666666666667", credit_bands=[["0.6666666666666667", "5"]])
    assert not gold.met(F(2, 3)) and gold.credit_percent(F(2, 3)) == 5


def test_a_float_attainment_is_refused() -> None:
    for bad in (99.9, True, D("NaN")):
        with pytest.raises(TypeError):
            STANDARD.credit_percent(bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            STANDARD.met(bad)  # type: ignore[arg-type]


# --- numbers of the file --------------------------------------------------------------------


def test_a_float_is_refused_with_its_key_named() -> None:
    message = refused({"uptime_target": 99.9}, "uptime_target")
    assert message == (
        'tiers.gold.uptime_target must be a decimal string like "99.9" or an integer,'
        " not the float 99.9"
    )
    refused({"annual_discount": 10.0}, "annual_discount")
    refused({"credit_bands": [[99.5, "10"]]}, "credit_bands[0].below")
    refused({"credit_bands": [["99.5", 10.0]]}, "credit_bands[0].credit_percent")


@pytest.mark.parametrize("text", ["NaN", "inf", "-inf", "1e2", "+99", "99.", ".5", "9_9", " 99"])
def test_only_plain_decimal_strings_are_read(text) -> None:
    refused({"uptime_target": text}, "uptime_target")


def test_decimals_may_be_strings_or_integers() -> None:
    gold = tier(uptime_target=99, annual_discount="7.5", credit_bands=[[99, 5]])
    assert gold.uptime_target == D("99") and gold.annual_discount == D("7.5")
    assert gold.credit_bands == ((D("99"), D("5")),)
    assert isinstance(gold.uptime_target, D)


@pytest.mark.parametrize("key", ["uptime_target", "annual_discount"])
@pytest.mark.parametrize("value", ["100.01", "-1", 101])
def test_percentages_lie_in_0_to_100(key, value) -> None:
    assert "0..100" in refused({key: value, "credit_bands": []}, key)


@pytest.mark.parametrize(
    "key", ["base_fee", "included_frames", "overage_per_1000", "minimum", "device_cap"]
)
@pytest.mark.parametrize("value", [4900.0, "4900", True, -1])
def test_prices_and_counts_are_integers_0_or_more(key, value) -> None:
    refused({key: value}, key)


@pytest.mark.parametrize("key", ["response_target_min", "resolve_target_min", "heartbeat_s"])
@pytest.mark.parametrize("value", [0, 15.0, False])
def test_targets_in_minutes_are_integers_above_0(key, value) -> None:
    refused({key: value}, key)


def test_zero_is_a_price() -> None:
    gold = tier(base_fee=0, minimum=0, overage_per_1000=0, included_frames=0)
    assert (gold.base_fee, gold.minimum, gold.overage_per_1000, gold.included_frames) == (
        0,
        0,
        0,
        0,
    )


# --- bands ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bands, key",
    [
        ([["99", "101"]], "credit_bands[0].credit_percent"),  # a credit above the fee
        ([["99", "-1"]], "credit_bands[0].credit_percent"),
        ([["101", "10"]], "credit_bands[0].below"),
        ([["-1", "10"]], "credit_bands[0].below"),
        ("99:10", "credit_bands"),  # not a list
        ([["99", "10"], "95"], "credit_bands[1]"),  # a band not a list
        ([["99", "10", "5"]], "credit_bands[0]"),  # not a pair
        ([["99"]], "credit_bands[0]"),
        ([["99", "10"], ["99.0", "20"]], "credit_bands[1]"),  # the same threshold twice
    ],
)
def test_bad_bands_are_refused(bands, key) -> None:
    refused({"uptime_target": "99.5", "credit_bands": bands}, key)


def test_a_band_above_the_target_is_refused() -> None:
    # a month meeting 99.0 would earn 10 % under 99.9: premium lowered to 99.0 must restate
    # its bands
    with pytest.raises(ValueError, match=r"tiers\.premium\.credit_bands.*above uptime_target"):
        parse_tiers(tiers={"premium": {"uptime_target": "99.0"}})
    assert tier(uptime_target="99.0", credit_bands=[["99.0", "10"]]).band(D("98")) is not None


def test_bands_are_kept_nearest_the_target_first() -> None:
    gold = tier(uptime_target="99.9", credit_bands=[["95", "50"], ["99.9", "10"], ["99", "25"]])
    assert [below for below, _ in gold.credit_bands] == [D("99.9"), D("99"), D("95")]
    assert tier(uptime_target="99", credit_bands=[]).credit_percent(D("0")) == 0


def test_band_edges_from_0_to_100() -> None:
    gold = tier(uptime_target="100", credit_bands=[["100", "0"], ["0", "100"]])
    assert gold.credit_percent(D("99.999")) == 0 and gold.band(D("99.999")) == (D("100"), D("0"))
    assert gold.credit_percent(D("0")) == 0  # nothing lies below 0
    assert not gold.met(D("99.999")) and gold.met(D("100"))


# --- support hours --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, days, start, end, canonical",
    [
        ("24x7", set(range(7)), 0, 1440, "24x7"),
        ("Mon-Fri 08:00-18:00", {0, 1, 2, 3, 4}, 480, 1080, "Mon-Fri 08:00-18:00"),
        ("Fri-Mon 09:30-17:00", {4, 5, 6, 0}, 570, 1020, "Fri-Mon 09:30-17:00"),  # wraps
        ("Sat 10:00-14:00", {5}, 600, 840, "Sat 10:00-14:00"),
        ("Sun-Sat 00:00-24:00", set(range(7)), 0, 1440, "24x7"),  # every minute of the week
        ("Tue-Mon 08:00-18:00", set(range(7)), 480, 1080, "Mon-Sun 08:00-18:00"),
        ("Mon-Sun 22:00-24:00", set(range(7)), 1320, 1440, "Mon-Sun 22:00-24:00"),
        ("Sun-Mon 00:00-00:01", {6, 0}, 0, 1, "Sun-Mon 00:00-00:01"),
    ],
)
def test_support_hours_are_days_and_minutes(text, days, start, end, canonical) -> None:
    hours = tier(support_hours=text).support_hours
    assert (hours.days, hours.start_min, hours.end_min) == (frozenset(days), start, end)
    assert hours.text == canonical and SupportHours.parse(canonical) == hours


def test_support_hours_end_is_exclusive() -> None:
    hours = SupportHours.parse("Fri-Mon 08:00-18:00")
    assert hours.covers(4, 480) and hours.covers(0, 1079)
    assert not hours.covers(0, 1080) and not hours.covers(4, 479) and not hours.covers(1, 600)
    assert SupportHours.parse("24x7").covers(6, 1439)


@pytest.mark.parametrize(
    "text",
    [
        "24/7",
        "mon-fri 08:00-18:00",  # days are spelt Mon..Sun
        "Mon-Fry 08:00-18:00",
        "Mon-Mon 08:00-18:00",  # one day or the whole week? say "Mon"
        "Mon-Fri 8:00-18:00",
        "Mon-Fri 08:00-18:60",
        "Mon-Fri 08:00-24:01",
        "Mon-Fri 24:00-24:00",
        "Mon-Fri 18:00-08:00",  # overnight hours are not supported
        "Mon-Fri 08:00-08:00",
        "Mon-Fri  08:00-18:00",
        "Mon-Fri",
        "",
        7,
    ],
)
def test_bad_support_hours_are_refused(text) -> None:
    refused({"support_hours": text}, "support_hours")


def test_support_hours_made_in_code_are_checked() -> None:
    for days, start, end in [({0, 2}, 0, 60), (set(), 0, 60), ({7}, 0, 60), ({0}, 60, 60)]:
        with pytest.raises(ValueError):
            SupportHours(frozenset(days), start, end)


# --- device prices --------------------------------------------------------------------------


def test_device_price_is_a_mode_and_brackets() -> None:
    gold = tier(
        device_price={
            "mode": "volume",
            "tiers": [{"up_to": 10, "price": 500}, {"up_to": 50, "price": 0}, {"price": 300}],
        }
    )
    assert gold.device_price == DevicePrice("volume", ((10, 500), (50, 0), (None, 300)))
    assert tier(device_price={"tiers": [{"price": 99}]}).device_price.brackets == ((None, 99),)


@pytest.mark.parametrize(
    "price, key",
    [
        ({"mode": "tiered"}, "mode"),
        ({"mode": 1}, "mode"),
        ({"tiers": []}, "tiers"),
        ({"tiers": {"price": 1}}, "tiers"),
        ({"tiers": [5]}, "tiers[0]"),
        ({"tiers": [{"up_to": 10, "price": 1}]}, "tiers[0].up_to"),  # no open end
        ({"tiers": [{"price": 1}, {"price": 2}]}, "tiers[0].up_to"),
        (
            {"tiers": [{"up_to": 10, "price": 1}, {"up_to": 10, "price": 2}, {"price": 3}]},
            "tiers[1].up_to",
        ),
        (
            {"tiers": [{"up_to": 10, "price": 1}, {"up_to": 5, "price": 2}, {"price": 3}]},
            "tiers[1].up_to",
        ),
        ({"tiers": [{"up_to": 0, "price": 1}, {"price": 2}]}, "tiers[0].up_to"),
        ({"tiers": [{"up_to": 10.0, "price": 1}, {"price": 2}]}, "tiers[0].up_to"),
        ({"tiers": [{"up_to": 10, "price": 1.5}, {"price": 2}]}, "tiers[0].price"),
        ({"tiers": [{"price": -1}]}, "tiers[0].price"),
        ({"tiers": [{"price": True}]}, "tiers[0].price"),
        ({"tiers": [{"up_to": 10}, {"price": 2}]}, "tiers[0].price"),
        ({"tiers": [{"price": 2, "upto": 5}]}, "tiers[0].upto"),
        ({"mode": "volume", "brackets": []}, "brackets"),
        ("volume", ""),
    ],
)
def test_bad_device_prices_are_refused(price, key) -> None:
    refused({"device_price": price}, f"device_price.{key}".rstrip("."))


def test_device_prices_made_in_code_are_checked() -> None:
    for mode, brackets in [
        ("tiered", ((None, 1),)),
        ("volume", ()),
        ("volume", ((10, 1),)),
        ("volume", ((10, 1), (5, 1), (None, 1))),
        ("volume", ((None, -1),)),
    ]:
        with pytest.raises(ValueError):
            DevicePrice(mode, brackets)  # type: ignore[arg-type]


# --- currency and unknown keys --------------------------------------------------------------


@pytest.mark.parametrize("value", ["usd", "US", "USDD", "EU1", 840, "", " EUR"])
def test_currency_is_three_capital_letters(value) -> None:
    refused({"currency": value}, "currency")


def test_a_currency_of_three_capitals_is_taken() -> None:
    assert tier(currency="EUR").currency == "EUR"


def test_unknown_keys_are_refused_with_their_full_name() -> None:
    assert "tiers.gold.uptime" in refused({"uptime": "99"}, "uptime")
    with pytest.raises(ValueError, match=r"plans\.gold\.uptime"):
        parse_tiers({"gold": {"uptime": "99"}})


def test_every_key_of_a_tier_is_read_from_the_file() -> None:
    written = {
        "rate_fps": 10,
        "burst_s": 1,
        "device_cap": 5,
        "heartbeat_s": 30,
        "uptime_target": "98",
        "credit_bands": [["98", "5"]],
        "response_target_min": 30,
        "resolve_target_min": 600,
        "min_outage": 3,
        "alerts": {"quiet_grace_s": 0},
        "support_hours": "Sat 10:00-14:00",
        "base_fee": 1,
        "device_price": {"mode": "volume", "tiers": [{"price": 2}]},
        "included_frames": 3,
        "overage_per_1000": 4,
        "minimum": 5,
        "annual_discount": "6",
        "currency": "EUR",
    }
    assert set(written) == {f.name for f in dataclasses.fields(Tier)}
    gold = tier(**written)
    assert all(getattr(gold, k) != getattr(Tier(), k) for k in written)


# --- the file's tables ----------------------------------------------------------------------


def test_plans_is_the_older_name_of_tiers() -> None:
    assert parse_tiers({"gold": {"base_fee": 1}}) == parse_tiers(tiers={"gold": {"base_fee": 1}})
    both = parse_tiers({"gold": {"base_fee": 1}}, {"silver": {"base_fee": 2}})
    assert both["gold"].base_fee == 1 and both["silver"].base_fee == 2


def test_a_name_defined_as_plan_and_tier_is_refused() -> None:
    with pytest.raises(ValueError, match=r"\[plans\.gold\] and \[tiers\.gold\]"):
        parse_tiers({"gold": {"base_fee": 1}}, {"gold": {"base_fee": 1}})
    with pytest.raises(ValueError, match="basic"):
        parse_tiers({"basic": {}}, {"basic": {}})


def test_a_table_for_a_shipped_name_overrides_only_the_keys_it_gives() -> None:
    basic = DEFAULT_TIERS["basic"]
    for section in ("plans", "tiers"):
        overridden = parse_catalog({section: {"basic": {"rate_fps": 1000}}}).tiers["basic"]
        assert overridden == dataclasses.replace(basic, rate_fps=1000.0)
        assert overridden.base_fee == 4900 and overridden.device_cap == 1000


def test_a_device_price_table_overrides_key_by_key() -> None:
    price = parse_tiers(tiers={"premium": {"device_price": {"mode": "graduated"}}})["premium"]
    assert price.device_price == DevicePrice(
        "graduated", DEFAULT_TIERS["premium"].device_price.brackets
    )


def test_a_new_name_starts_from_the_standard_tier() -> None:
    assert (
        tier(rate_fps=100) == Tier(rate_fps=100.0) == dataclasses.replace(STANDARD, rate_fps=100.0)
    )


def test_parse_tier_names_the_section_it_was_given() -> None:
    with pytest.raises(ValueError, match=r"^plans\.gold\.base_fee "):
        parse_tier("gold", {"base_fee": "1"}, section="plans")


@pytest.mark.parametrize(
    "doc, name",
    [
        ({"tiers": 1}, "[tiers]"),
        ({"plans": []}, "[plans]"),
        ({"tiers": {"gold": 1}}, "[tiers.gold]"),
        ({"upstream": 1}, "[upstream]"),
        ({"upstream": {"uptime_guarantee": 99.95}}, "upstream.uptime_guarantee"),
        ({"upstream": {"uptime_guarantee": "101"}}, "upstream.uptime_guarantee"),
        ({"upstream": {"guarantee": "99.9"}}, "upstream.guarantee"),
    ],
)
def test_bad_tables_are_refused_by_name(doc, name) -> None:
    with pytest.raises(ValueError) as info:
        parse_catalog(doc)
    assert name in str(info.value)


# --- the upstream guarantee -----------------------------------------------------------------


def test_a_tier_above_the_upstream_guarantee_is_flagged() -> None:
    catalog = parse_catalog({"upstream": {"uptime_guarantee": "99.5"}})
    assert catalog.upstream == D("99.5")
    assert catalog.above_upstream("premium")  # 99.9 > 99.5
    assert not catalog.above_upstream("standard")  # 99.5: inside, exactly at it
    assert not catalog.above_upstream("basic")
    assert catalog.flagged() == ["premium"]
    assert parse_catalog({"upstream": {"uptime_guarantee": "99"}}).flagged() == [
        "premium",
        "standard",
    ]


def test_without_an_upstream_guarantee_nothing_is_flagged() -> None:
    for catalog in (Catalog(), parse_catalog({}), parse_catalog({"upstream": {}})):
        assert catalog.upstream is None and catalog.flagged() == []
        assert not catalog.above_upstream("premium")


def test_the_flag_follows_a_removed_tier_to_standard() -> None:
    catalog = Catalog({"premium": DEFAULT_TIERS["premium"]}, D("99.5"))
    assert catalog.above_upstream("premium") and not catalog.above_upstream("gone")
    assert catalog.tier("gone") == Tier()


def test_catalog_and_tiers_load_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "uptally.toml"
    path.write_text(
        '[server]\nport = 1\n[upstream]\nuptime_guarantee = "99.95"\n'
        '[tiers.gold]\nuptime_target = "99.99"\ncredit_bands = [["99.99", "10"]]\n'
        "[tiers.gold.device_price]\n"
        'mode = "volume"\ntiers = [{ up_to = 10, price = 100 }, { price = 90 }]\n'
        "[plans.basic]\nrate_fps = 1000\n"
    )
    catalog = load_catalog(str(path))
    assert catalog.upstream == D("99.95") and catalog.flagged() == ["gold"]
    assert catalog.tiers["gold"].device_price == DevicePrice("volume", ((10, 100), (None, 90)))
    assert load_tiers(str(path)) == dict(catalog.tiers)
    assert load_catalog(None) == Catalog() and load_tiers(None) == dict(DEFAULT_TIERS)


# --- the shipped tiers ----------------------------------------------------------------------


def test_the_shipped_tiers_keep_their_limits() -> None:
    limits = {
        n: (t.rate_fps, t.burst_s, t.device_cap, t.heartbeat_s) for n, t in DEFAULT_TIERS.items()
    }
    assert limits == {
        "basic": (5_000.0, 2.0, 1_000, 60),
        "standard": (50_000.0, 2.0, 0, 60),
        "premium": (500_000.0, 2.0, 0, 60),
    }
    assert DEFAULT_TIERS[DEFAULT_TIER] == Tier() and tier_of(DEFAULT_TIERS, "x") == Tier()


def test_the_shipped_tiers_would_pass_their_own_checks() -> None:
    for name, shipped in DEFAULT_TIERS.items():
        assert parse_tier(name, {}, shipped) == shipped
        assert shipped.currency == "USD" and shipped.met(shipped.uptime_target)
        assert shipped.credit_percent(shipped.uptime_target) == 0  # the target earns nothing


# --- alert rules ------------------------------------------------------------------------------


def test_alert_rules_override_key_by_key_and_name_a_bad_key() -> None:
    rules = tier(alerts={"battery_below": "15.5", "cap_levels": [50, 100]}).alerts
    assert rules == AlertRules(battery_below=D("15.5"), cap_levels=(50, 100))
    refused({"alerts": {"quiet_grace": 1}}, "alerts.quiet_grace")
    for bad in ([90, 80], [80, 80], [0], [101], "80"):
        refused({"alerts": {"cap_levels": bad}}, "alerts.cap_levels")
    refused({"alerts": {"battery_below": 20.5}}, "alerts.battery_below")  # a float: inexact
    refused({"alerts": {"fault": "yes"}}, "alerts.fault")
    refused({"alerts": {"gateway_silent_heartbeats": 0}}, "alerts.gateway_silent_heartbeats")


def test_a_tenant_overrides_its_tiers_alert_rules() -> None:
    from core.store.tenants import Tenant, check_settings

    tenant = Tenant(1, "acme", tier=tier(alerts={"quiet_grace_s": 600}))
    assert tenant.alert_rules.quiet_grace_s == 600
    tenant.alerts = check_settings({"alerts": {"battery_below": "5"}}, DEFAULT_TIERS)["alerts"]
    assert tenant.alert_rules == AlertRules(quiet_grace_s=600, battery_below=D("5"))
    with pytest.raises(ValueError, match="alerts.cap_levels"):
        check_settings({"alerts": {"cap_levels": [100, 90]}}, DEFAULT_TIERS)
