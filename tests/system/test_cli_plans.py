"""``uptally tenant add`` and ``token add`` refuse what they would otherwise guess at."""

from __future__ import annotations

from core.store import Store
from core.tiers import load_tiers
from uptally.cli import main


def test_tenant_add_refuses_an_unknown_plan(tmp_path, capsys) -> None:
    data = str(tmp_path / "db")
    assert main(["tenant", "add", "acme", "--plan", "premuim", "--data", data]) == 2
    err = capsys.readouterr().err
    assert "premuim" in err and "basic, premium, standard" in err
    with Store(data) as store:
        assert not store.tenants  # no tenant silently put on the standard plan's limits
    config = tmp_path / "uptally.toml"
    config.write_text("[plans.gold]\nrate_fps = 1000\ndevice_cap = 7\n")
    assert (
        main(["tenant", "add", "acme", "--plan", "gold", "--config", str(config), "--data", data])
        == 0
    )
    with Store(data, tiers=load_tiers(str(config))) as store:
        assert store.tenant("acme").plan == "gold" and store.tenant("acme").device_cap == 7


def test_token_add_refuses_staff_with_a_tenant_or_scope(tmp_path, capsys) -> None:
    data = str(tmp_path / "db")
    assert main(["tenant", "add", "acme", "--data", data]) == 0
    for extra in (["--tenant", "acme"], ["--scope", "read"]):
        assert main(["token", "add", "--staff", *extra, "--data", data]) == 2
        captured = capsys.readouterr()
        assert "--staff" in captured.err and "upt_" not in captured.out
    with Store(data) as store:
        assert store.tokens() == []  # no token that reads every tenant was made


def test_a_refused_tier_file_is_one_line_naming_the_key(tmp_path, capsys) -> None:
    config = tmp_path / "uptally.toml"
    config.write_text("[tiers.gold]\nuptime_target = 99.9\n")
    argv = ["tenant", "add", "acme", "--plan", "gold", "--config", str(config)]
    assert main([*argv, "--data", str(tmp_path / "db")]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"uptally: config {config}: tiers.gold.uptime_target must be a decimal string like"
        ' "99.9" or an integer, not the float 99.9\n'
    )
