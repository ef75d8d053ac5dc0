"""Smoke test of the evaluator benchmark: a tiny run through the command line (a small store,
then a small live server with the evaluator off and on), checking the results document and
its bookkeeping, not speed: every figure is there, positive and finite."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bench import cli
from bench.watch import ACK_P99_TARGET, CONTENDERS, STEADY_TARGET


def positive(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def test_command_line_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "watch.json"
    argv = ["watch", "--quick", "--tenants", "5", "--devices-per-tenant", "40", "--sites", "4"]
    argv += ["--repeat", "1", "--profile", "--json", str(out)]
    assert cli.main(argv) == 0
    doc = json.loads(out.read_text())
    assert doc["bench"] == "watch" and doc["check"] == {"agree": True, "problems": []}

    cost = doc["pass_cost"]
    assert (cost["config"]["tenants"], cost["config"]["devices"]) == (4, 200)  # --quick's
    assert set(cost["results"]) == set(CONTENDERS)
    for row in cost["results"].values():
        assert len(row["seconds"]) == 2 and row["median_s"] >= row["best_s"] > 0
        assert all(positive(s) for s in row["seconds"])
    assert set(cost["ratios"]) == set(CONTENDERS) - {"baseline"}
    assert all(positive(r) for r in cost["ratios"].values())
    assert cost["target"] == {"steady_ratio_max": STEADY_TARGET, "pass": None}
    # the first pass has work; the steady pass, with its memory and incidents, has none
    first, steady = cost["first_pass"], cost["steady_pass"]
    assert first["opened"] > 0 and first["opened_gateway"] > 0 and first["alerts_firing"] > 0
    assert steady["opened"] == steady["closed"] == steady["events"] == 0
    assert steady["alerts_announced"] == first["alerts_announced"]
    assert cost["profile"] and all(row["calls"] > 0 for row in cost["profile"])

    ack = doc["ack"]
    assert [p["evaluator"] for p in ack["phases"]] == ["off", "on"]
    assert ack["phases"][0]["tenants_with_watch_memory"] == 0
    assert ack["phases"][1]["tenants_with_watch_memory"] == 3
    for p in ack["phases"]:
        assert p["acked"] > 0 and positive(p["batches_per_s"])
        assert positive(p["latency_ms"]["p99"]) and positive(p["latency_planned_ms"]["p99"])
    for pooled in (*ack["pooled_ms"].values(), *ack["pooled_planned_ms"].values()):
        assert pooled["batches"] > 0 and pooled["max"] >= pooled["p99"] >= pooled["p50"] > 0
    assert positive(ack["capacity"]["batches_per_s"])
    assert positive(ack["config"]["offered_batches_per_s"])
    assert positive(ack["ratio_p99"]) and positive(ack["ratio_p99_planned"])
    assert ack["target"] == {"ratio_p99_max": ACK_P99_TARGET, "pass": None}
    printed = capsys.readouterr().out
    assert "ratio steady pass / status query" in printed and "ack p99, all phases" in printed
