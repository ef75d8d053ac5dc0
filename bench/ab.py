"""A/B of the Cython engine: this tree's build against another revision's, in one process.

``python -m bench.ab --base REV [--devices N] [--form compact|map] [--repeats R]``

The machine's speed drifts over minutes (see docs/performance.md), so two builds timed in two
runs compare the drift as much as the builds. This builds the extension of ``REV`` in a
temporary git worktree, loads it beside this tree's ``core._rollup`` (under another module
name), warms both on the same fleet, then times them turn about over the same batches:
``decode`` and ``apply`` of every steady batch, per frame. It reports medians and minimums
and the ratio of this tree to the base (below 1: this tree is faster).

Both builds use this tree's Python modules (``core.batch``, ``core.dayblock``...): compare
revisions whose engine API is the same. With ``--base HEAD`` and no change it is an A/A run,
which shows the noise floor of the comparison.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.common import REPO
from core.fleet import Fleet, Traffic


@contextmanager
def built_tree(rev: str, workdir: Path) -> Iterator[Path]:
    """A git worktree of ``rev`` under ``workdir`` with its extension built in place."""
    tree = workdir / "tree"
    subprocess.run(
        ["git", "worktree", "add", "--detach", "--quiet", str(tree), rev], cwd=REPO, check=True
    )
    try:
        subprocess.run(
            [sys.executable, "setup.py", "-q", "build_ext", "--inplace"],
            cwd=tree,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        yield tree
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, check=True)


def build_base(rev: str, workdir: Path) -> Path:
    """Build ``rev``'s extension in a worktree under ``workdir``; the built file's path."""
    with built_tree(rev, workdir) as tree:
        (built,) = tree.glob("core/_rollup*.so")
        kept = workdir / built.name
        shutil.copy2(built, kept)
        return kept


def load(path: Path, tag: str) -> Any:
    """The ``RollupC`` class of the extension at ``path``, imported as ``<tag>._rollup``."""
    spec = importlib.util.spec_from_file_location(f"{tag}._rollup", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.RollupC


def run(engines: dict[str, Any], devices: int, form: str, repeats: int) -> dict[str, Any]:
    fleet = Fleet.of_sites(max(1, devices // 200), min(200, devices))
    traffic = Traffic(fleet, form=form, batch_size=1_000, bad_rate=0.01)  # type: ignore[arg-type]
    first = traffic.batches(fleet.n_devices // 1_000 + 10)
    steady = traffic.batches(1_000)
    rollups = {}
    for name, cls in engines.items():
        r = cls()
        for body, now_ns in zip(first.bodies, first.now_ns, strict=True):
            r.apply(r.decode(body, now_ns))
        r.drain()
        rollups[name] = r
    times: dict[str, dict[str, list[float]]] = {n: {"decode": [], "apply": []} for n in engines}
    clock = time.perf_counter
    for _ in range(repeats):
        for name, r in rollups.items():
            decode, apply = r.decode, r.apply
            t_dec = t_app = 0.0
            for body, now_ns in zip(steady.bodies, steady.now_ns, strict=True):
                t0 = clock()
                batch = decode(body, now_ns)
                t1 = clock()
                apply(batch)
                t_app += clock() - t1
                t_dec += t1 - t0
            r.drain()
            times[name]["decode"].append(1e9 * t_dec / steady.n_frames)
            times[name]["apply"].append(1e9 * t_app / steady.n_frames)
    out: dict[str, Any] = {"devices": fleet.n_devices, "form": form, "repeats": repeats}
    for name, t in times.items():
        both = [d + a for d, a in zip(t["decode"], t["apply"], strict=True)]
        out[name] = {
            part: {"median_ns": statistics.median(v), "min_ns": min(v)}
            for part, v in (("decode", t["decode"]), ("apply", t["apply"]), ("both", both))
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__)
    parser.add_argument("--base", required=True, help="git revision to compare against")
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--form", choices=("compact", "map"), default="compact")
    parser.add_argument("--repeats", type=int, default=8)
    args = parser.parse_args(argv)
    from core import _rollup  # this tree's build: make build first

    with tempfile.TemporaryDirectory(prefix="uptally-ab-") as tmp:
        base = load(build_base(args.base, Path(tmp)), "uptally_ab_base")
    doc = run({"base": base, "tree": _rollup.RollupC}, args.devices, args.form, args.repeats)
    print(
        f"decode + apply, {doc['devices']:,} devices, {args.form} frames, 1,000-frame batches, "
        f"{args.repeats} turns each; ns/frame"
    )
    print(f"{'':6} {'part':6} {'median':>8} {'min':>8}")
    for name in ("base", "tree"):
        for part in ("decode", "apply", "both"):
            v = doc[name][part]
            print(f"{name:6} {part:6} {v['median_ns']:8.1f} {v['min_ns']:8.1f}")
    for part in ("decode", "apply", "both"):
        ratio = doc["tree"][part]["median_ns"] / doc["base"][part]["median_ns"]
        print(f"tree / base {part:6} {ratio:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
