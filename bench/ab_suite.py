"""A/B of the whole suite (``make bench``): this tree against another revision, turn about.

``python -m bench.ab_suite --base REV [--rounds N] [--quick] [--json PATH]``

Runs ``python -m bench`` (decode, query, e2e) in a worktree of ``REV`` and in this tree,
alternately (base, tree, base, tree...), each in its own process with its own code, then
compares every figure the two report. The machine drifts over minutes, so a figure counts as
moved only if the two sides differ by more than each side's own spread over its rounds (the
noise of this run): the report lists each figure's base and tree medians, the ratio and the
noise, and flags those that moved.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.ab import built_tree
from bench.common import REPO, write_json

#: Figures: leaves whose names say they are a rate, a time or a size the suite measured.
FIGURE_WORDS = (
    "fps",
    "_ns",
    "_ms",
    "_s",
    "per_s",
    "mib",
    "p50",
    "p90",
    "p99",
    "mean",
    "median",
    "best",
)


#: What names an entry of a list of results (a contender, an engine, a phase...).
LABEL_KEYS = ("contender", "engine", "form", "batch_size", "devices", "target")


def figures(doc: Any, path: str = "") -> dict[str, float]:
    """Every numeric leaf of a result document, by its dotted path; an entry of a list of
    results is named by its labels (``e2e.results[cython].phases[1000].frames_per_s``)."""
    out: dict[str, float] = {}
    if isinstance(doc, dict):
        for key, value in doc.items():
            out |= figures(value, f"{path}.{key}" if path else str(key))
    elif isinstance(doc, list):
        for i, item in enumerate(doc):
            if isinstance(item, dict):
                label = "/".join(str(item[k]) for k in LABEL_KEYS if k in item) or str(i)
                out |= figures(item, f"{path}[{label}]")
    elif isinstance(doc, int | float) and not isinstance(doc, bool):
        out[path] = float(doc)
    return out


def run_suite(tree: Path, out: Path, quick: bool) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(tree))
    cmd = [sys.executable, "-m", "bench", "--json", str(out)] + (["--quick"] if quick else [])
    subprocess.run(cmd, cwd=tree, env=env, check=True, stdout=subprocess.DEVNULL)
    return figures(json.loads(out.read_text()))


def compare(base: list[dict[str, float]], tree: list[dict[str, float]]) -> list[dict[str, Any]]:
    rows = []
    for key in sorted(set(base[0]) & set(tree[0])):
        if not key.rsplit(".", 1)[-1].endswith(FIGURE_WORDS) or key.endswith("wall_s"):
            continue
        a = [run[key] for run in base if key in run]
        b = [run[key] for run in tree if key in run]
        ma, mb = statistics.median(a), statistics.median(b)
        if ma == 0 or (max(a) == min(a) == max(b) == min(b)):
            continue  # a setting, or nothing measured
        noise = max((max(a) - min(a)) / abs(ma), (max(b) - min(b)) / abs(mb) if mb else 0.0)
        ratio = mb / ma
        rows.append(
            {
                "figure": key,
                "base": ma,
                "tree": mb,
                "ratio": ratio,
                "noise": noise,
                "moved": abs(ratio - 1) > noise,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab_suite", description=__doc__)
    parser.add_argument("--base", required=True, help="git revision to compare against")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each side (default 2)")
    parser.add_argument("--quick", action="store_true", help="the suite's small runs")
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "ab_suite.json")
    args = parser.parse_args(argv)
    base_runs: list[dict[str, float]] = []
    tree_runs: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="uptally-ab-suite-") as tmp:
        with built_tree(args.base, Path(tmp)) as base:
            for i in range(args.rounds):
                for side, runs, where in (("base", base_runs, base), ("tree", tree_runs, REPO)):
                    print(f"round {i + 1}/{args.rounds}: {side}", flush=True)
                    runs.append(run_suite(where, Path(tmp) / f"{side}-{i}.json", args.quick))
    rows = compare(base_runs, tree_runs)
    width = max(len(r["figure"]) for r in rows)
    print(f"{'figure':{width}} {'base':>12} {'tree':>12} {'tree/base':>9} {'noise':>6}")
    for r in rows:
        flag = "  moved" if r["moved"] else ""
        print(
            f"{r['figure']:{width}} {r['base']:12.4g} {r['tree']:12.4g} "
            f"{r['ratio']:9.3f} {r['noise']:6.1%}{flag}"
        )
    moved = [r for r in rows if r["moved"]]
    print(f"{len(rows)} figures, {len(moved)} moved by more than the noise")
    write_json(args.json, {"base": args.base, "rounds": args.rounds, "figures": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
