"""Configuration: the example in docs/operations.md loads, env overrides win, typos fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.config import Config, Plan

DOCS = Path(__file__).resolve().parent.parent / "docs" / "operations.md"


def documented_example(tmp_path: Path) -> Path:
    text = DOCS.read_text().split("```toml")[1].split("```")[0]
    path = tmp_path / "uptally.toml"
    path.write_text(text)
    return path


def test_documented_example_is_the_defaults(tmp_path) -> None:
    loaded = Config.load(str(documented_example(tmp_path)), env={})
    assert loaded == Config(plans=loaded.plans)
    assert loaded.plan("standard") == Plan()


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
    assert Config().plan("no-such-plan") == Config().plan("standard")
