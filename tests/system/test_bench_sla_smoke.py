"""Smoke test of the SLA month benchmark: a tiny run through the command line, checking the
results document and that the SLA counts the baseline's slots less the windows, not speed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import cli
from bench.sla import CONTENDERS, RATIO_TARGET


def test_command_line_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sla.json"
    argv = ["sla", "--tenants", "5", "--devices-per-tenant", "12", "--sites", "3"]
    argv += ["--repeat", "1", "--profile", "--json", str(out)]
    assert cli.main(argv) == 0
    doc = json.loads(out.read_text())
    assert doc["bench"] == "sla" and doc["check"] == {"agree": True, "problems": []}
    config = doc["config"]
    assert (config["tenants"], config["devices"], config["sites_per_tenant"]) == (5, 60, 3)
    assert len(config["zones"]) == 5 and config["windows_per_tenant"] == 3
    assert set(doc["results"]) == set(CONTENDERS)
    for row in doc["results"].values():
        assert len(row["seconds"]) == 1 and row["median_s"] >= row["best_s"] > 0
    assert doc["ratio"] > 0 and doc["ratio_in_progress"] > 0
    assert doc["target"]["ratio_max"] == RATIO_TARGET
    assert doc["target"]["pass"] in (True, False)
    example = doc["example"]
    assert example["complete"]["complete"] and not example["in_progress"]["complete"]
    assert example["complete"]["sites"] == 3 and example["complete"]["devices"] == 12
    assert example["in_progress"]["projection"] is not None
    assert doc["profile"] and all(row["calls"] > 0 for row in doc["profile"])
    printed = capsys.readouterr().out
    assert "ratio sla / baseline, month complete" in printed and "cProfile" in printed
