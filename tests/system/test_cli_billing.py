"""The ``uptally`` commands of billing: subscription start/change/cancel/show, close-month,
invoice list/show/export (JSON and CSV), and their refusals.

Tenant ``acme`` (UTC, hourly slots) on the shipped ``standard`` tier from Feb 20, 2025 with
a 5-day trial, annual from March 16; two devices report every hour of March.
"""

from __future__ import annotations

import csv
import io
import json
import time

import msgpack
import pytest

from core.store import Store
from core.times import NS_PER_S
from server.config import Config
from tests.support.hourly import HOUR_S, ingest_hours, month_s
from uptally.cli import main

START, END = month_s(2025, 3, "UTC")
ISSUE_YEAR = time.gmtime().tm_year


@pytest.fixture
def cli(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("USER", "tester")
    config = tmp_path / "uptally.toml"
    config.write_text('[tiers.euro]\ncurrency = "EUR"\n')
    data = tmp_path / "db"
    capsys.readouterr()

    def run(*argv: str) -> tuple[int, str, str]:
        code = main([*argv, "--data", str(data), "--config", str(config)])
        out, err = capsys.readouterr()
        return code, out, err

    run.data = data  # type: ignore[attr-defined]
    run.config = config  # type: ignore[attr-defined]
    return run


def store_of(cli) -> Store:
    return Store(cli.data, tiers=Config.load(str(cli.config), env={}).tiers)


def subscribed(cli) -> None:
    assert cli("tenant", "add", "acme", "--slot-s", "3600", "--tax-rate", "19")[0] == 0
    code, out, _ = cli(
        "subscription", "start", "acme", "--tier", "standard", "--on", "2025-02-20",
        "--trial-days", "5",
    )  # fmt: skip
    assert code == 0, out
    code, out, _ = cli("subscription", "change", "acme", "--term", "annual", "--on", "2025-03-16")
    assert code == 0
    with store_of(cli) as store:
        tid = store.tenant("acme").id
        ingest_hours(store, tid, START, END, lambda ts: [("gw", ["a", ts]), ("gw", ["b", ts])])


def checkpointed(cli) -> None:
    with store_of(cli) as store:
        store.checkpoint()


def test_subscription_commands_record_and_show_the_history(cli) -> None:
    subscribed(cli)
    code, out, _ = cli("subscription", "show", "acme")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "acme (UTC, USD):"
    assert lines[1].startswith("  2025-02-20  start standard, monthly, 5 trial days  (recorded ")
    assert lines[1].endswith("by cli:tester)")
    assert lines[2].startswith("  2025-03-16  change to annual  (recorded ")
    # the rules' refusals, in one line
    code, _, err = cli("subscription", "start", "acme", "--tier", "standard", "--on", "2025-04-01")
    assert code == 1 and "already subscribed" in err
    code, _, err = cli("subscription", "change", "acme", "--tier", "euro", "--on", "2025-04-01")
    assert code == 1 and "priced in EUR" in err
    code, _, err = cli("subscription", "start", "acme", "--on", "2025-04-01")
    assert code == 2 and "needs --tier" in err
    with pytest.raises(SystemExit) as exited:  # argparse's own usage error
        cli("subscription", "cancel", "acme", "--on", "2025-13-01")
    assert exited.value.code == 2
    code, _, err = cli("subscription", "show", "nobody")
    assert code == 1 and "no tenant 'nobody'" in err


def test_close_month_issues_lists_shows_and_exports(cli, tmp_path) -> None:
    subscribed(cli)
    checkpointed(cli)
    code, out, err = cli("close-month", "2025-03", "--prefix", "ACME")
    assert code == 0, err
    number = f"ACME-{ISSUE_YEAR}-000001"
    assert out.splitlines()[0] == "2025-03 closed: 1 invoices issued"
    assert f"  {number}  acme  2025-03  total " in out
    assert "2 devices, 1488 frames, attainment 100.000 %" in out  # the trial ended Feb 24
    code, out, _ = cli("close-month", "2025-03")
    assert code == 0 and out.startswith("2025-03 was closed already, at ")
    assert "1 invoices; nothing issued" in out

    code, out, _ = cli("invoice", "list", "acme")
    assert code == 0 and out.startswith(number)
    code, out, _ = cli("invoice", "show", number)
    shown = json.loads(out)
    with store_of(cli) as store:
        record = store.invoice(number)
    assert {k: v for k, v in shown.items() if k != "issued_at"} == record
    assert sum(line["amount"] for line in shown["lines"]) == shown["total"]

    code, out, _ = cli("invoice", "show", number, "--csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["kind"] for r in rows] == [li["kind"] for li in record["lines"]]
    assert sum(int(r["amount"]) for r in rows) == record["total"]

    target = tmp_path / "march.csv"
    code, out, _ = cli("invoice", "export", "2025-03", "--csv", str(target))
    assert code == 0 and out == f"1 invoices of 2025-03 written to {target}\n"
    with open(target, newline="") as f:
        exported = list(csv.DictReader(f))
    assert exported == rows


def test_closed_month_refusals_and_errors(cli) -> None:
    subscribed(cli)
    with store_of(cli) as store:
        store.checkpoint((END - HOUR_S) * NS_PER_S)  # a cut before March ended
    code, _, err = cli("close-month", "2025-03")
    assert code == 1 and "wait for the server's next checkpoint" in err
    checkpointed(cli)
    code, _, err = cli("close-month", "2099-01")
    assert code == 1 and "has not ended for acme (UTC)" in err
    assert cli("close-month", "2025-03")[0] == 0
    code, _, err = cli("subscription", "cancel", "acme", "--on", "2025-03-20")
    assert code == 1 and "2025-03-20 lies in 2025-03, closed for acme" in err
    with store_of(cli) as store:
        tid = store.tenant("acme").id
        body = msgpack.packb({"gateway": "gw", "frames": [["a", END - HOUR_S]]})
        late = store.ingest(tid, body, (END + HOUR_S) * NS_PER_S)
        assert late.errors[0]["reason"] == "ts falls in a month whose invoices are issued"
    assert cli("close-month", "2025-3")[0] == 2
    assert cli("close-month", "2025-04", "--prefix", "inv")[0] == 1
    code, _, err = cli("invoice", "show", "INV-2025-000009")
    assert code == 1 and "no invoice 'INV-2025-000009'" in err
    code, _, err = cli("invoice", "export", "2025-02", "--csv", "x.csv")
    assert code == 1 and "2025-02 is not closed" in err
    code, out, _ = cli("invoice", "list", "acme")
    assert code == 0 and len(out.splitlines()) == 1
