"""The engine floor (bench/floor_engine.c): every C shape gives the engine's results.

A tiny fleet with 5 % bad frames: the library is built, every shape runs over the batches from
an empty state, and its accepted frames and per-device state (day, counters, coverage and fault
bitmaps) must equal RollupC's. Results, not speed.
"""

from __future__ import annotations

import ctypes
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import bench.floor_engine as fe
from bench import cli
from bench.floor_engine import FIELDS, VARIANTS, DayState, FloorConfig, FloorMismatch, run_size
from core.rollup import RollupC

pytestmark = pytest.mark.slow  # builds C, as test_bench_ab does

TINY = FloorConfig(
    devices=(300,),
    devices_per_site=50,
    batch_size=100,
    steady_batches=30,
    passes=1,
    repeats=1,
    bad_rate=0.05,
)


def quiet(line: str) -> None:
    pass


@pytest.fixture(scope="module")
def lib() -> ctypes.CDLL:
    if RollupC is None:
        pytest.fail("the Cython engine core._rollup did not load; run `make build`")
    return fe.load_library()[0]


@pytest.fixture(scope="module")
def result(lib: ctypes.CDLL) -> dict[str, Any]:
    return run_size(lib, TINY, 300, quiet)


def test_every_shape_equals_the_engine(result: dict[str, Any]) -> None:
    check = result["check"]
    accepted = check["engine"]["accepted"]
    assert check["engine"]["devices"] == 300
    for v in VARIANTS:
        stats = check[v]
        assert stats["accepted"] == accepted
        assert stats["unknown"] == 0 and stats["records"] == 0
        assert stats["rejected"] > 0  # the bad frames were judged
        assert stats["accepted"] + stats["rejected"] == stats["frames"]
        assert stats["slow_path"] > 0  # the tail frames took the general reader
        assert stats["faults"] > 0  # some frames carried a fault status


def test_timing_runs_every_contender(result: dict[str, Any]) -> None:
    json.dumps(result)
    assert set(result["timing"]) == {"engine", *VARIANTS}
    accepted = {row["thread_cpu"]["accepted"] for row in result["timing"].values()}
    assert len(accepted) == 1
    for row in result["timing"].values():
        assert 0 < row["ns_per_frame"]["min"] <= row["ns_per_frame"]["median"]


def test_a_different_state_fails_the_run(lib: ctypes.CDLL, monkeypatch: pytest.MonkeyPatch) -> None:
    """One device's count off by one, as a broken shape would leave it, stops the run."""
    real = fe.Floor.export

    def off_by_one(self: fe.Floor) -> DayState:
        state = real(self)
        state.rows[0, FIELDS.index("frames")] += 1
        return state

    monkeypatch.setattr(fe.Floor, "export", off_by_one)
    with pytest.raises(FloorMismatch, match="fused: frames differs on 1 of 300 devices"):
        run_size(lib, TINY, 300, quiet)


def test_differences_names_every_field_and_bitmap() -> None:
    ids = ["a", "b", "c"]
    rows = np.zeros((3, len(FIELDS)), np.int64)
    bits = np.zeros((3, 180), np.uint8)
    want = DayState(rows, bits, bits)
    assert fe.differences(ids, want, want) == []
    for j, name in enumerate(FIELDS):
        got = DayState(rows.copy(), bits, bits)
        got.rows[1, j] = 7
        assert fe.differences(ids, got, want) == [
            f"{name} differs on 1 of 3 devices, e.g. b: 7 (engine 0)"
        ]
    for name in ("cov", "fault"):
        got = DayState(rows, bits.copy(), bits.copy())
        getattr(got, name)[2, 179] = 0x80
        assert fe.differences(ids, got, want) == [
            f"{name} bitmap differs on 1 of 3 devices, e.g. c"
        ]


def test_a_second_day_is_refused(lib: ctypes.CDLL) -> None:
    with pytest.raises(SystemExit, match="one UTC day"):
        run_size(lib, TINY, 2, quiet)


def test_command_line_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "floor.json"
    argv = ["floor_engine", "--devices", "300", "--steady-batches", "20", "--repeats", "1"]
    argv += ["--passes", "1", "--variants", "two,grouped", "--json", str(out)]
    assert cli.main(argv) == 0
    doc = json.loads(out.read_text())
    assert doc["bench"] == "floor_engine" and doc["check"]["agree"]
    assert doc["config"]["variants"] == ["two", "grouped"]
    (res,) = doc["results"]
    assert set(res["timing"]) == {"engine", "two", "grouped"}
    assert "fastest shape" in capsys.readouterr().out
    assert "floor_engine" not in cli.BENCHES  # not part of `make bench`
    with pytest.raises(SystemExit, match="unknown variants"):
        cli.main(["floor_engine", "--variants", "tight8", "--json", str(out)])
