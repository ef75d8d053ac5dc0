"""Commands that read or administer a store refuse a directory that holds none."""

from __future__ import annotations

import pytest

from uptally.cli import main


def run(argv: list[str]) -> int | str | None:
    try:
        return main(argv)
    except SystemExit as exc:  # how argparse and the commands stop with a message
        return exc.code


@pytest.mark.parametrize(
    "argv",
    [
        ["info"],
        ["token", "list"],
        ["token", "revoke", "1"],
        ["token", "add", "--staff"],
        ["token", "add", "--tenant", "acme"],
    ],
)
def test_commands_refuse_a_data_dir_without_a_store(tmp_path, capsys, argv) -> None:
    data = tmp_path / "typo"
    code = run([*argv, "--data", str(data)])
    captured = capsys.readouterr()
    assert code == 1, captured.out  # not "no tenants", not an empty list
    assert captured.err.startswith(f"uptally: no store in {data}")
    assert not data.exists()  # and no empty store left behind
    # tenant add makes the store, after which the same commands work
    assert run(["tenant", "add", "acme", "--data", str(data)]) == 0
    assert run(["token", "list", "--data", str(data)]) == 0
