"""The administration commands find the store where ``uptally serve`` does."""

from __future__ import annotations

from core.store import Store
from uptally.cli import main


def test_admin_commands_use_the_store_of_the_config_and_uptally_data(
    tmp_path, monkeypatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    store = tmp_path / "srv"
    config = tmp_path / "uptally.toml"
    config.write_text(f'[server]\ndata = "{store}"\n')
    # the config that `uptally serve --config` runs with names the store
    assert main(["tenant", "add", "acme", "--config", str(config)]) == 0
    monkeypatch.setenv("UPTALLY_DATA", str(store))  # and so does the documented override
    assert main(["token", "add", "--tenant", "acme"]) == 0
    secret = capsys.readouterr().out.strip()
    assert main(["token", "revoke", "1"]) == 0
    assert not (tmp_path / "data").exists()  # nothing went to ./data instead
    with Store(store) as s:
        assert s.tenant("acme").name == "acme"
        assert s.authenticate(secret) is None  # the revocation reached the server's store


def test_the_store_found_through_uptally_data_must_exist(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["tenant", "add", "acme"]) == 0  # ./data, with no setting at all
    monkeypatch.setenv("UPTALLY_DATA", str(tmp_path / "typo"))
    assert main(["token", "list"]) == 1
    assert capsys.readouterr().err.startswith(f"uptally: no store in {tmp_path / 'typo'}")
    assert not (tmp_path / "typo").exists()
    assert main(["token", "list", "--data", "data"]) == 0  # --data wins over the variable


def test_dashboard_runs_streamlit_on_the_store_serve_would_open(
    tmp_path, monkeypatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    ran: list[tuple[list[str], dict[str, str]]] = []
    monkeypatch.setattr("os.execve", lambda path, argv, env: ran.append((argv, env)))
    monkeypatch.setenv("UPTALLY_DATA", str(tmp_path / "typo"))
    assert main(["dashboard"]) == 1  # no store there: refused, none made, nothing started
    assert capsys.readouterr().err.startswith(f"uptally: no store in {tmp_path / 'typo'}")
    assert not (tmp_path / "typo").exists() and not ran
    monkeypatch.delenv("UPTALLY_DATA")
    config = tmp_path / "uptally.toml"
    config.write_text('[server]\ndata = "srv"\n')
    assert main(["tenant", "add", "acme", "--config", str(config)]) == 0
    assert main(["dashboard", "--config", str(config), "--port", "8599"]) == 0
    [(argv, env)] = ran
    assert argv[1:4] == ["-m", "streamlit", "run"] and argv[4].endswith("dashboard/app.py")
    assert "--server.address=127.0.0.1" in argv and "--server.port=8599" in argv
    assert "--browser.gatherUsageStats=false" in argv  # the dashboard reports nothing anywhere
    assert env["UPTALLY_DATA"] == str(tmp_path / "srv")
    assert env["UPTALLY_CONFIG"] == str(config)
    assert env["UPTALLY_API"] == "http://127.0.0.1:8080"  # the config's server, for answers


def test_dashboard_answers_through_the_server_of_the_config_or_api(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    ran: list[dict[str, str]] = []
    monkeypatch.setattr("os.execve", lambda path, argv, env: ran.append(env))
    for name in ("UPTALLY_DATA", "UPTALLY_HOST", "UPTALLY_PORT", "UPTALLY_API"):
        monkeypatch.delenv(name, raising=False)
    assert main(["tenant", "add", "acme"]) == 0
    config = tmp_path / "uptally.toml"
    config.write_text('[server]\nhost = "0.0.0.0"\nport = 9090\n')
    assert main(["dashboard", "--config", str(config)]) == 0
    assert ran.pop()["UPTALLY_API"] == "http://127.0.0.1:9090"  # every address: over loopback
    assert main(["dashboard", "--api", "https://uptally.internal:8443"]) == 0
    assert ran.pop()["UPTALLY_API"] == "https://uptally.internal:8443"
