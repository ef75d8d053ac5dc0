"""Smoke test of the month-close benchmark: a tiny run through the command line, checking the
results document and that every close issued the same gapless invoices with the SLA figures
of the baseline, not speed."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bench import cli
from bench.close import CONTENDERS, RATIO_TARGET


def test_command_line_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "close.json"
    argv = ["close", "--tenants", "5", "--devices-per-tenant", "12", "--sites", "3"]
    argv += ["--repeat", "2", "--profile", "--json", str(out)]
    assert cli.main(argv) == 0
    doc = json.loads(out.read_text())
    assert doc["bench"] == "close" and doc["check"] == {"agree": True, "problems": []}
    config = doc["config"]
    assert (config["tenants"], config["devices"], config["sites_per_tenant"]) == (5, 60, 3)
    assert config["billed_tenants"] == 5 and config["quarter_frames"] > 0
    assert len(config["zones"]) == 5 and config["month"] == "2026-11"
    assert set(doc["results"]) == set(CONTENDERS)
    for row in doc["results"].values():
        assert len(row["seconds"]) == 2 and row["median_s"] >= row["best_s"] > 0
        assert all(math.isfinite(s) and s > 0 for s in row["seconds"])
    assert math.isfinite(doc["ratio"]) and doc["ratio"] > 0
    assert doc["target"]["ratio_max"] == RATIO_TARGET
    assert doc["target"]["pass"] in (True, False)
    assert doc["example"]["number"] == "INV-2026-000001"
    assert doc["profile"] and all(row["calls"] > 0 for row in doc["profile"])
    printed = capsys.readouterr().out
    assert "ratio close / baseline" in printed and "cProfile" in printed
