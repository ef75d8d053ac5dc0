"""The ``uptally`` commands of the SLA: tenant settings, tiers and the upstream flag, maintenance
windows, device sites, lifecycle and replacement, and a month's figures.

Hourly slots over last month (``S`` per device): ``a`` misses the ten hours 00:00-10:00 of the
10th, ``b`` misses none, so the fleet has ``2S - 10`` up and 10 down.
"""

from __future__ import annotations

import time

import pytest

from core.store import Store
from server.config import Config
from tests.support.hourly import (
    DAY_S,
    HOUR_S,
    floor3,
    ingest_hours,
    label,
    month_s,
    previous_month,
)
from uptally.cli import main

NOW = time.time_ns()
YEAR, MONTH = previous_month(NOW, "UTC")
MONTH_LABEL = label(YEAR, MONTH)
START, END = month_s(YEAR, MONTH, "UTC")
S = (END - START) // HOUR_S
D = {day: START + (day - 1) * DAY_S for day in range(1, 32)}
DOWN = {D[10] + h * HOUR_S for h in range(10)}


def iso_z(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def local(ts: int) -> str:  # how the commands show a UTC tenant's times
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(ts))


def fleet(ts: int) -> list[tuple[str, object]]:
    frames: list[tuple[str, object]] = [("south", ["b", ts])]
    if ts not in DOWN:
        frames.append(("north", {"d": "a", "t": ts, "fw": "1.0" if ts < D[5] else "1.2"}))
    frames.append(("north", ["c", ts]) if ts < D[15] else ("south", ["c2", ts]))
    return frames


@pytest.fixture
def cli(tmp_path, capsys, monkeypatch):
    """``uptally ARGS --data DB --config FILE``: (status, stdout, stderr). The file adds a
    EUR tier and states an upstream guarantee of 99.8 %, below premium's 99.9 %."""
    monkeypatch.setenv("USER", "tester")
    config = tmp_path / "uptally.toml"
    config.write_text('[tiers.euro]\ncurrency = "EUR"\n\n[upstream]\nuptime_guarantee = "99.8"\n')
    data = tmp_path / "db"
    capsys.readouterr()

    def run(*argv: str, store: bool = True) -> tuple[int, str, str]:
        extra = ["--data", str(data), "--config", str(config)] if store else []
        code = main([*argv, *extra])
        out, err = capsys.readouterr()
        return code, out, err

    run.data = data  # type: ignore[attr-defined]
    run.config = config  # type: ignore[attr-defined]
    return run


def seeded(cli, frames=fleet) -> None:
    """Tenant ``acme`` (UTC, hourly slots) with last month's frames."""
    assert cli("tenant", "add", "acme", "--slot-s", "3600")[0] == 0
    with Store(cli.data, tiers=Config.load(str(cli.config), env={}).tiers) as store:
        ingest_hours(store, store.tenant("acme").id, START, END, frames)
        store.checkpoint(NOW)


# --- tenants and tiers ---------------------------------------------------------------------------


def test_tenant_add_and_list_show_zone_currency_tax_and_name(cli) -> None:
    code, out, _ = cli(
        "tenant", "add", "eu", "--plan", "euro", "--tz", "Europe/Berlin", "--currency", "EUR",
        "--tax-rate", "19", "--display-name", "EU GmbH",
    )  # fmt: skip
    line = "tenant eu (id 1, plan euro, zone Europe/Berlin, EUR, tax 19 %, shown as EU GmbH)\n"
    assert (code, out) == (0, line)
    code, out, _ = cli("tenant", "add", "prem", "--plan", "premium")
    assert out == (
        "tenant prem (id 2, plan premium (target above the upstream guarantee!), zone UTC, "
        "USD, tax 0 %, shown as prem)\n"
    )
    assert cli("tenant", "list") == (0, line + out, "")
    with Store(cli.data) as store:
        eu = store.tenant("eu")
        assert (eu.tz, eu.currency, eu.tax_rate, eu.display_name) == (
            "Europe/Berlin",
            "EUR",
            "19",
            "EU GmbH",
        )


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--currency", "EUR"], "tier standard is priced in USD, the tenant in EUR"),
        (["--tz", "Mars/Olympus"], "Mars/Olympus"),
        (["--tax-rate", "7,5"], "tax_rate"),
        (["--tax-rate", "101"], "tax_rate"),
    ],
)
def test_tenant_add_refuses_bad_settings_in_one_line(cli, argv, message) -> None:
    code, out, err = cli("tenant", "add", "acme", *argv)
    assert code == 1 and out == "" and err.count("\n") == 1 and message in err, err
    with Store(cli.data) as store:
        assert not store.tenants


def test_tenant_set_refuses_a_currency_change_and_a_tier_of_another_currency(cli) -> None:
    assert cli("tenant", "add", "eu", "--plan", "euro", "--currency", "EUR")[0] == 0
    for argv, message in (
        (["--currency", "USD"], "uptally: a tenant's currency never changes (it is EUR)\n"),
        (["--plan", "standard"], "uptally: tier standard is priced in USD, the tenant in EUR\n"),
        (
            ["--plan", "standard", "--tax-rate", "7.5", "--tz", "Europe/Paris"],
            "uptally: tier standard is priced in USD, the tenant in EUR\n",
        ),
    ):
        assert cli("tenant", "set", "eu", *argv) == (1, "", message)
    with Store(cli.data) as store:  # nothing changed
        eu = store.tenant("eu")
        assert (eu.plan, eu.currency, eu.tax_rate, eu.tz) == ("euro", "EUR", "0", "UTC")
    code, out, _ = cli("tenant", "set", "eu", "--tax-rate", "7.5", "--tz", "Europe/Paris")
    assert code == 0 and "zone Europe/Paris, EUR, tax 7.5 %" in out
    assert cli("tenant", "set", "eu")[0] == 2  # nothing to set
    assert cli("tenant", "set", "nobody", "--tz", "UTC")[:2] == (1, "")


def test_tier_list_flags_a_target_above_the_upstream_guarantee(cli) -> None:
    code, out, _ = cli("tier", "list", "--config", str(cli.config), store=False)
    lines = out.splitlines()
    assert code == 0 and lines[0] == "upstream guarantee: 99.8 %"
    flagged = {line.split()[0] for line in lines[1:] if "! above the upstream" in line}
    assert flagged == {"premium"}
    assert {line.split()[0] for line in lines[1:]} == {"basic", "euro", "premium", "standard"}
    premium = next(line for line in lines if line.startswith("premium"))
    assert "target 99.9 %" in premium and "<99.9: 10 %" in premium
    code, out, _ = cli("tier", "list", store=False)  # the shipped tiers state no guarantee
    assert out.splitlines()[0] == "upstream guarantee: none" and "!" not in out


# --- the month's figures and windows -----------------------------------------------------------


def test_sla_shows_the_months_figures_and_a_window_moves_them(cli) -> None:
    seeded(cli)
    # c went silent on the 15th and counts down from then on (it was not retired); c2
    # reports from then on, and its slots before its first frame are excluded
    first_half = 14 * 24
    up, down, excluded = 3 * S - 10, 10 + S - first_half, first_half
    code, out, _ = cli("sla", "acme", "--month", MONTH_LABEL)
    assert code == 0
    assert out.splitlines() == [
        f"acme {MONTH_LABEL} (UTC)",
        f"  attainment {floor3(up, down)} % against 99.5 %: missed; credit 50 %",
        f"  slots: {up:,} up, {down:,} down, {excluded:,} excluded; 4 devices",
        f"  {'north':<24} {floor3(S - 10 + first_half, down):>8} %  2 devices",
        f"  {'south':<24} {'100.000':>8} %  2 devices",
    ]
    before = label(*previous_month(NOW, "UTC", 2))
    code, out, _ = cli("sla", "acme", "--month", before)
    assert "  attainment n/a % against 99.5 %: met; credit 0 %" in out.splitlines()

    start, end = iso_z(D[10]), iso_z(D[10] + 4 * HOUR_S)
    code, out, _ = cli("window", "add", "acme", "--start", start, "--end", end, "--reason", "cs")
    day = start[:10]
    assert (code, out) == (0, f"window 1: tenant: {day} 00:00Z → 04:00Z — cs\n")
    assert cli("window", "list", "acme")[1] == f"    1  tenant: {day} 00:00Z → 04:00Z — cs\n"
    out = cli("sla", "acme", "--month", MONTH_LABEL)[1]
    # four slots of a (down), b and c (up) are out; c2's were out already
    assert f"  slots: {up - 8:,} up, {down - 4:,} down, {excluded + 12:,} excluded" in out
    assert cli("window", "delete", "acme", "1") == (0, "window 1 deleted\n", "")
    assert cli("window", "delete", "acme", "1") == (1, "", "uptally: no window 1 for acme\n")
    assert cli("window", "list", "acme")[1] == "no maintenance windows for acme\n"


@pytest.mark.parametrize(
    "argv",
    [
        ["--start", "2026-03-01T00:00:00Z"],
        ["--start", "2026-03-01T00:00:00", "--end", "2026-03-02T00:00:00Z"],
        ["--weekdays", "Mon", "--at", "02:00", "--duration-min", "60"],
        ["--weekdays", "Mon", "--at", "25:00", "--duration-min", "60", "--zone", "UTC"],
        ["--scope", "site", "--start", "2026-03-01T00:00:00Z", "--end", "2026-03-02T00:00:00Z"],
    ],
)
def test_a_bad_window_is_a_usage_error_and_stores_nothing(cli, argv) -> None:
    assert cli("tenant", "add", "acme")[0] == 0
    code, out, err = cli("window", "add", "acme", *argv)
    assert code == 2 and out == "" and err.startswith("uptally: window") and err.count("\n") == 1
    assert cli("window", "list", "acme")[1] == "no maintenance windows for acme\n"


def test_sla_refuses_a_bad_month_and_an_unknown_site(cli) -> None:
    assert cli("tenant", "add", "acme")[0] == 0
    for month in ("2026-13", "March"):
        code, out, err = cli("sla", "acme", "--month", month)
        assert (code, out) == (2, "") and err.startswith("uptally: --month: month must be")
    unknown = (1, "", "uptally: no site 'nowhere' in acme\n")
    assert cli("sla", "acme", "--site", "nowhere") == unknown
    assert cli("sla", "nobody")[:2] == (1, "")


# --- devices -------------------------------------------------------------------------------------


def test_device_set_show_and_replace(cli) -> None:
    seeded(cli)
    code, out, _ = cli(
        "device", "set", "acme", "a", "--state", "maintenance", "--at", iso_z(D[10]),
        "--why", "pump swap",
    )  # fmt: skip
    assert code == 0 and out.splitlines()[0] == "a: site north, maintenance"
    back = iso_z(D[10] + 10 * HOUR_S)
    assert cli("device", "set", "acme", "a", "--state", "active", "--at", back)[0] == 0
    code, out, _ = cli("device", "show", "acme", "a")
    assert out.splitlines() == [
        "a: site north, active",
        f"  {local(D[10])}  maintenance  by cli:tester: pump swap",
        f"  {local(D[10] + 10 * HOUR_S)}  active  by cli:tester: -",
        f"  {local(D[1])}  firmware 1.0",
        f"  {local(D[5])}  firmware 1.2",
    ]
    # a refused change stores nothing: neither a state before the last one, nor its site
    code, out, err = cli(
        "device", "set", "acme", "a", "--site", "depot", "--state", "retired", "--at", iso_z(D[2])
    )
    assert (code, out) == (1, "") and "predate" in err and err.count("\n") == 1
    assert cli("device", "show", "acme", "a")[1].splitlines()[0] == "a: site north, active"

    assert cli("device", "set", "acme", "b", "--state", "retired", "--at", iso_z(D[20]))[0] == 0
    for state in ("active", "maintenance"):
        code, out, err = cli("device", "set", "acme", "b", "--state", state)
        assert (code, out) == (1, "") and err == (
            "uptally: the device is retired: retirement is final (replace it instead)\n"
        )
    assert len(cli("device", "show", "acme", "b")[1].splitlines()) == 2  # one entry

    code, out, _ = cli(
        "device", "replace", "acme", "c", "c2", "--at", iso_z(D[15]), "--why", "water damage"
    )
    assert code == 0
    assert out.splitlines() == [
        "c: site north, retired",
        f"  {local(D[15])}  retired (c2)  by cli:tester: water damage",
        "c2: site north, active",  # it reports through south, and takes c's site
        f"  {local(0)}  site north",
        f"  {local(D[15])}  active (c)  by cli:tester: water damage",
    ]
    out = cli("sla", "acme", "--month", MONTH_LABEL)[1]
    # a's maintenance, b retired on the 20th, c on the 15th: nothing counted is down
    up = (S - 10) + 19 * 24 + S
    excluded = 10 + (S - 19 * 24) + (S - 14 * 24) + 14 * 24  # c2 before its first frame
    assert f"  slots: {up:,} up, 0 down, {excluded:,} excluded; 4 devices" in out

    assert cli("device", "set", "acme", "a")[0] == 2  # nothing to set
    assert cli("device", "set", "acme", "a", "--site", "x", "--at", "yesterday")[0] == 2
    assert cli("device", "set", "acme", "ghost", "--site", "x")[:2] == (1, "")
    assert cli("device", "show", "acme", "ghost") == (1, "", "uptally: no device 'ghost' in acme\n")
    code, _, err = cli("device", "replace", "acme", "a", "ghost")
    assert code == 1 and "ghost" in err
