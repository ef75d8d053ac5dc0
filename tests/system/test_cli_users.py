"""``uptally user``: a staff or tenant user with a password shown once (or read from
standard input), the list (never a hash), disabling, enabling and resetting."""

from __future__ import annotations

import io

import pytest

from core.store import Store
from core.times import NS_PER_S
from core.users import SignInFailed
from uptally.cli import main

NOW = 1_767_225_600 * NS_PER_S


@pytest.fixture
def cli(tmp_path, capsys, monkeypatch):
    data = tmp_path / "db"
    with Store(data) as store:
        store.add_tenant("acme")
    capsys.readouterr()

    def run(*argv: str, stdin: str | None = None) -> tuple[int, str, str]:
        if stdin is not None:
            monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = main([*argv, "--data", str(data)])
        out, err = capsys.readouterr()
        return code, out, err

    run.data = data  # type: ignore[attr-defined]
    return run


def test_users_are_added_listed_disabled_and_reset(cli) -> None:
    code, out, _ = cli("user", "add", "ops@example.com", "--staff")
    assert code == 0 and out.startswith("user 1 ops@example.com (staff)\npassword (shown once): ")
    shown = out.rsplit(": ", 1)[1].strip()
    code, out, _ = cli(
        "user",
        "add",
        "ana@acme.example",
        "--tenant",
        "acme",
        "--role",
        "admin",
        "--password-stdin",
        stdin="a long enough secret\n",
    )
    assert out == "user 2 ana@acme.example (acme admin)\n"  # no password printed
    with Store(cli.data) as store:
        assert store.sign_in_user("ops@example.com", shown, NOW).staff
        assert store.sign_in_user("ana@acme.example", "a long enough secret", NOW).tenant_id == 1
    _, out, _ = cli("user", "list")
    assert "ops@example.com" in out and "acme admin" in out and "$argon2" not in out
    assert cli("user", "disable", "ana@acme.example")[1].startswith(
        "user ana@acme.example: disabled"
    )
    assert "disabled" in cli("user", "list")[1]
    cli("user", "enable", "ana@acme.example")
    code, out, _ = cli("user", "reset", "ana@acme.example")
    fresh = out.rsplit(": ", 1)[1].strip()
    with Store(cli.data) as store:
        with pytest.raises(SignInFailed):
            store.sign_in_user("ana@acme.example", "a long enough secret", NOW)
        assert store.sign_in_user("ana@acme.example", fresh, NOW)


@pytest.mark.parametrize(
    "argv, status, message",
    [
        (("user", "add", "x@y.example"), 2, "--staff or of one --tenant"),
        (("user", "add", "x@y.example", "--staff", "--tenant", "acme"), 2, "--staff or"),
        (("user", "add", "x@y.example", "--tenant", "nope"), 1, "no tenant 'nope'"),
        (("user", "add", "not-mail", "--staff"), 1, "not an e-mail address"),
        (("user", "disable", "nobody@y.example"), 1, "no user nobody@y.example"),
    ],
)
def test_bad_user_commands_say_why(cli, argv, status, message) -> None:
    code, _, err = cli(*argv)
    assert code == status and message in err
