"""The ``uptally`` command answers ordinary mistakes with one line and a non-zero status."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from server.testing import REPO
from uptally.cli import main


@pytest.mark.parametrize(
    "argv, message",
    [
        (["tenant", "add", "acme"], "tenant 'acme' exists"),
        (["tenant", "add", ""], "tenant name must be 1..64 bytes"),
        (["tenant", "add", "other", "--slot-s", "7"], "slot_s must divide a day"),
        (["token", "add", "--tenant", "nope"], "no tenant 'nope'"),
        (["token", "revoke", "99"], "no token 99"),
        (["serve", "--config", "/nonexistent/uptally.toml"], "/nonexistent/uptally.toml"),
        (["tenant", "add", "other", "--config", "/nonexistent/uptally.toml"], "uptally.toml"),
    ],
)
def test_cli_mistakes_get_a_message_not_a_traceback(tmp_path, capsys, argv, message) -> None:
    data = str(tmp_path / "db")
    assert main(["tenant", "add", "acme", "--data", data]) == 0
    capsys.readouterr()
    assert main([*argv, "--data", data]) != 0
    err = capsys.readouterr().err
    assert err.startswith("uptally: ") and message in err and "Traceback" not in err


def test_a_store_that_cannot_be_opened_gets_a_message(tmp_path, capsys) -> None:
    data = tmp_path / "a-file"
    data.write_text("")
    assert main(["tenant", "add", "acme", "--data", str(data)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"uptally: cannot open the store in {data}") and "Traceback" not in err


def test_an_invalid_config_gets_a_message(tmp_path, capsys) -> None:
    config = tmp_path / "uptally.toml"
    config.write_text('[server]\naccess_log = "false"\n')
    argv = ["tenant", "add", "acme", "--config", str(config), "--data", str(tmp_path / "db")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"uptally: config {config}: access_log must be true or false")


@pytest.mark.parametrize(
    "argv",
    [
        ["demo", "--devices", "0"],  # a fleet of none: a traceback from random.sample
        ["demo", "--hours", "0"],
        ["info", "--hours", "-5"],  # a period that ends before it starts
    ],
)
def test_counts_below_one_are_usage_errors(tmp_path, capsys, argv) -> None:
    data = tmp_path / "db"
    assert main(["tenant", "add", "acme", "--data", str(data)]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as stopped:
        main([*argv, "--data", str(data)])
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and "must be 1 or more" in err and "Traceback" not in err


def test_a_reader_that_goes_away_ends_the_output_quietly(tmp_path) -> None:
    """``uptally info | head -1``: the pipe's reader is gone before the output is written."""
    data = str(tmp_path / "db")
    assert main(["tenant", "add", "acme", "--data", data]) == 0
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write now fails with EPIPE
    try:
        done = subprocess.run(
            [sys.executable, "-m", "uptally", "info", "--data", data],
            cwd=REPO,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 141
