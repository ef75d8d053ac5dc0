"""Smoke test of the decode benchmark: a tiny run, in-process, checking results, not speed.

The bench runs against the Python twin, the baseline and msgspec, and the Cython engine when
it is built. With some frames made invalid on purpose, every engine and the baseline must
accept exactly the frames the generator says are valid, so they agree with each other.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgpack
import pytest

from bench import cli
from bench.common import Turn, time_in_turns
from bench.decode import CONTENDERS, DecodeConfig, run
from core.fleet import Fleet, Traffic
from core.rollup import RollupC, RollupPy

TINY = DecodeConfig(
    devices=600,
    devices_per_site=50,
    batch_size=100,
    steady_batches=12,
    shares={},  # every contender on the same steady batches, so counts compare directly
    repeats=2,
    python_repeats=1,
    large_devices=400,
    large_steady_batches=4,
    large_contenders=("cython", "python", "baseline"),
    bad_rate=0.05,
    quick=True,
)
JUDGES = ("cython", "python", "baseline")


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return run(TINY, log=lambda line: None)


def test_fleet_ids_and_batches() -> None:
    fleet = Fleet.of_sites(500, 200)
    assert fleet.n_devices == 100_000
    assert fleet.device_id(42 * 200 + 17) == "site-042/dev-00017"
    assert len(set(Fleet(1_000, 30).device_ids())) == 1_000
    traffic = Traffic(Fleet(300, 50), form="compact", batch_size=100, seed=1)
    batches = traffic.batches(6)
    assert traffic.cycle_batches == 3
    frames = [msgpack.unpackb(body)["frames"] for body in batches.bodies]
    assert all(len({f[0] for f in fs}) == 100 for fs in frames)  # different devices
    ts = [max(f[1] for f in fs) for fs in frames]
    assert ts == sorted(ts) and ts[-1] - ts[0] >= 60  # time advances
    engine = RollupPy()
    pairs = zip(batches.bodies, batches.now_ns, strict=True)
    accepted = sum(engine.admit(engine.decode(body, now)).accepted for body, now in pairs)
    assert accepted == batches.n_accepted == batches.n_frames == 600
    assert engine.n_devices == 300


def test_map_frames_decode_like_compact() -> None:
    fleet = Fleet(200, 20)
    counts = []
    for form in ("compact", "map"):
        batches = Traffic(fleet, form=form, batch_size=50, bad_rate=0.1, seed=3).batches(8)
        engine = RollupPy()
        pairs = zip(batches.bodies, batches.now_ns, strict=True)
        decoded = [engine.decode(body, now) for body, now in pairs]
        assert sum(d.accepted for d in decoded) == batches.n_accepted < batches.n_frames
        counts.append([d.accepted for d in decoded])
    assert counts[0] == counts[1]  # the same seed gives the same traffic in either form


def test_results_structure(doc: dict[str, Any]) -> None:
    assert doc["bench"] == "decode"
    for key in ("config", "environment", "results", "large", "ratios", "targets", "check"):
        assert key in doc
    json.dumps(doc)  # machine-readable as is
    seen = {(r["contender"], r["form"]) for r in doc["results"]}
    assert seen == {(c, f) for c in CONTENDERS for f in ("compact", "map")}
    for row in doc["results"] + doc["large"]:
        if "skipped" in row:
            assert row["contender"] == "cython" and RollupC is None
            continue
        for part in ("first_pass", "steady"):
            m = row[part]
            if m is None:
                assert part == "first_pass" and row["contender"] == "msgspec"
                continue
            assert m["frames"] > 0 and len(m["ns"]) == m["repeats"] >= 1
            assert m["best_fps"] >= m["median_fps"] > 0
    assert [t["pass"] in (True, False, None) for t in doc["targets"]] == [True] * 5
    assert set(doc["ratios"]) == {"compact", "map"}
    for row in doc["large"]:
        if "memory" in row:
            assert row["memory"]["devices"] > 0 and row["memory"]["rss_after"] > 0


def test_contenders_agree_on_accepted_frames(doc: dict[str, Any]) -> None:
    assert doc["check"]["agree"], doc["check"]["problems"]
    expected_judges = [j for j in JUDGES if j != "cython" or RollupC is not None]
    for form in ("compact", "map"):
        rows = {
            r["contender"]: r for r in doc["results"] if r["form"] == form and "skipped" not in r
        }
        assert sorted(rows) == sorted(expected_judges + ["msgspec"])
        for part in ("first_pass", "steady"):
            accepted = {name: rows[name][part]["accepted"] for name in expected_judges}
            frames = {name: rows[name][part]["frames"] for name in rows if rows[name][part]}
            assert len(set(frames.values())) == 1  # all ran the same batches
            assert len(set(accepted.values())) == 1, (form, part, accepted)
            n_frames = next(iter(frames.values()))
            assert 0 < accepted["python"] < n_frames  # some frames were rejected
            assert accepted["python"] == rows["python"][part]["expected"]
        assert rows["msgspec"]["steady"]["accepted"] == rows["msgspec"]["steady"]["frames"]
        known = {name: rows[name]["first_pass"]["devices_known"] for name in expected_judges}
        assert len(set(known.values())) == 1 and 0 < known["python"] <= TINY.devices
    large = {r["contender"]: r for r in doc["large"] if "skipped" not in r}
    assert sorted(large) == sorted(expected_judges)
    firsts = {name: r["first_pass"]["accepted"] for name, r in large.items()}
    assert len(set(firsts.values())) == 1


def test_command_line_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "decode.json"
    argv = ["decode", "--quick", "--devices", "300", "--batch-size", "100"]
    argv += ["--steady-batches", "3", "--repeats", "1", "--large-devices", "0"]
    argv += ["--contenders", "python,baseline,msgspec", "--forms", "compact", "--json", str(out)]
    assert cli.main(argv) == 0
    doc = json.loads(out.read_text())
    assert doc["config"]["devices"] == 300 and doc["large"] == []
    assert {r["contender"] for r in doc["results"]} == {"python", "baseline", "msgspec"}
    printed = capsys.readouterr().out
    assert "steady best" in printed and "cython compact >= 50M frames/s" in printed


def test_time_in_turns_takes_the_contenders_round_by_round() -> None:
    """Steady repeats are interleaved: one of each contender per round, each as often as it
    asked; a piece of work whose accepted count changes is an error."""
    calls: list[str] = []

    def work(name: str, accepted: int) -> Any:
        def run() -> int:
            calls.append(name)
            return accepted

        return run

    out = time_in_turns({"a": Turn(work("a", 5), 3, 1, 10), "b": Turn(work("b", 7), 1, 1, 20)})
    assert calls == ["a", "b", "a", "a"]
    assert (len(out["a"].ns), out["a"].accepted, out["a"].frames) == (3, 5, 10)
    assert (len(out["b"].ns), out["b"].accepted, out["b"].frames) == (1, 7, 20)
    counts = iter([1, 2])
    with pytest.raises(AssertionError, match="accepted 2 frames, 1 before"):
        time_in_turns({"c": Turn(lambda: next(counts), 2, 1, 1)})
