"""``uptally webhook add|list|delete`` and ``uptally events``: the secret is printed once,
lists never show it, and the alert log shows each delivery with its attempts."""

from __future__ import annotations

import pytest

from core.store import Store
from core.webhooks import Attempt
from uptally.cli import main

S = 10**9
T0 = 1_772_323_200 * S  # 2026-03-01T00:00Z


@pytest.fixture
def cli(tmp_path, capsys, monkeypatch):
    """``uptally ARGS --data DB``: (status, stdout, stderr), with tenant ``acme`` made."""
    monkeypatch.setenv("USER", "tester")
    data = tmp_path / "db"

    def run(*argv: str) -> tuple[int, str, str]:
        code = main([*argv, "--data", str(data)])
        out, err = capsys.readouterr()
        return code, out, err

    assert run("tenant", "add", "acme")[0] == 0
    run.data = data  # type: ignore[attr-defined]
    return run


def test_add_prints_the_secret_once_and_list_never_shows_it(cli) -> None:
    code, out, err = cli(
        "webhook", "add", "acme", "https://hooks.example.com/u", "--events", "incident.*, alert.*"
    )
    secret = out.strip()
    assert code == 0 and secret.startswith("whsec_") and len(secret) == 49
    assert "webhook 1 of acme" in err and "shown only once" in err
    code, out, _ = cli("webhook", "list", "acme")
    assert code == 0 and secret not in out
    assert out.split()[:4] == ["1", "https://hooks.example.com/u", "events", "incident.*,alert.*"]
    assert "by cli:tester" in out
    with Store(cli.data) as store:
        assert store.endpoints(1)[0].secret == secret


@pytest.mark.parametrize(
    "argv, status, message",
    [
        (("webhook", "add", "acme", "ftp://example.com/"), 2, "http:// or https://"),
        (("webhook", "add", "acme", "https://e.com/", "--events", "incident*"), 2, "incident*"),
        (("webhook", "add", "nobody", "https://e.com/"), 1, "no tenant 'nobody'"),
        (("webhook", "delete", "acme", "7"), 1, "no webhook 7 for acme"),
        (("events", "nobody"), 1, "no tenant 'nobody'"),
    ],
)
def test_refusals_say_why_and_store_nothing(cli, argv, status, message) -> None:
    code, out, err = cli(*argv)
    assert code == status and message in err and out == ""
    assert cli("webhook", "list", "acme")[1] == "no webhooks for acme\n"


def test_events_show_each_delivery_with_its_attempts_and_delete_fails_the_pending(cli) -> None:
    assert cli("events", "acme")[1] == "no events for acme\n"
    cli("webhook", "add", "acme", "https://hooks.example.com/a")
    with Store(cli.data) as store:
        store.emit(1, [("incident.opened", {"device": "d1"})], T0)
        store.emit(1, [("incident.closed", {"device": "d1"})], T0 + 60 * S)
        store.record_attempt(1, Attempt(T0, 500, "HTTP 500", 12), "pending", T0 + 60 * S)
        store.record_attempt(
            1, Attempt(T0 + 60 * S, None, "no answer in 10 s", 10_000), "pending", T0 + 180 * S
        )
        store.record_attempt(2, Attempt(T0 + 60 * S, 204, "", 3), "delivered", 0)
    code, out, _ = cli("events", "acme")
    assert code == 0
    assert out.splitlines() == [
        "evt_2  2026-03-01T00:01:00Z  incident.closed",
        "  dlv_2 to webhook 1 (https://hooks.example.com/a): delivered",
        "    2026-03-01T00:01:00Z  HTTP 204  3 ms",
        "evt_1  2026-03-01T00:00:00Z  incident.opened",
        "  dlv_1 to webhook 1 (https://hooks.example.com/a): pending, next attempt "
        "2026-03-01T00:03:00Z",
        "    2026-03-01T00:00:00Z  HTTP 500  12 ms",
        "    2026-03-01T00:01:00Z  no answer  no answer in 10 s  10000 ms",
    ]
    assert cli("events", "acme", "--limit", "1")[1].splitlines()[0].startswith("evt_2")
    code, out, _ = cli("webhook", "delete", "acme", "1")
    assert code == 0 and "webhook 1 deleted" in out
    lines = cli("events", "acme")[1].splitlines()
    assert lines[1] == "  dlv_2 to webhook 1 (deleted): delivered"
    assert lines[4] == "  dlv_1 to webhook 1 (deleted): failed: endpoint deleted"
