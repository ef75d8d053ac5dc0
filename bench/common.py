"""Helpers shared by the benchmarks: timing, memory readings, environment, formatting."""

from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.times import NS_PER_S

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "bench" / "results"


@dataclass
class Measurement:
    """Repeated timings of one piece of work over ``frames`` frames (``ns`` per repeat).

    ``accepted`` is what the work reported it accepted (the same on every repeat).
    """

    batches: int
    frames: int
    accepted: int
    ns: list[int] = field(default_factory=list)

    @property
    def best_ns(self) -> int:
        return min(self.ns)

    @property
    def median_ns(self) -> float:
        return statistics.median(self.ns)

    @property
    def best_fps(self) -> float:
        """Frames per second of the fastest repeat."""
        return self.frames * NS_PER_S / self.best_ns

    @property
    def median_fps(self) -> float:
        """Frames per second of the median repeat."""
        return self.frames * NS_PER_S / self.median_ns

    def as_dict(self) -> dict[str, Any]:
        return {
            "batches": self.batches,
            "frames": self.frames,
            "accepted": self.accepted,
            "repeats": len(self.ns),
            "ns": self.ns,
            "best_fps": self.best_fps,
            "median_fps": self.median_fps,
        }


def time_repeats(
    work: Callable[[], int],
    repeats: int,
    *,
    batches: int,
    frames: int,
    setup: Callable[[], object] | None = None,
) -> Measurement:
    """Time ``work()`` ``repeats`` times with ``perf_counter_ns``; ``setup()`` runs untimed
    before each repeat, then a full garbage collection. ``work`` returns its accepted count,
    which must not change between repeats.
    """
    out = Measurement(batches, frames, -1)
    for _ in range(repeats):
        if setup is not None:
            setup()
        gc.collect()
        t0 = time.perf_counter_ns()
        accepted = work()
        out.ns.append(time.perf_counter_ns() - t0)
        if out.accepted not in (-1, accepted):
            raise AssertionError(f"accepted {accepted} frames, {out.accepted} before")
        out.accepted = accepted
    return out


@dataclass
class Turn:
    """One contender's part in :func:`time_in_turns`; ``setup()``, if given, runs untimed
    before each of its repeats (a fresh copy of what the work changes, say)."""

    work: Callable[[], int]
    repeats: int
    batches: int
    frames: int
    setup: Callable[[], object] | None = None


def time_in_turns(turns: dict[str, Turn]) -> dict[str, Measurement]:
    """Time several pieces of work turn about: round ``r`` runs every piece that has more than
    ``r`` repeats, one after another. The machine's speed drifts over minutes, so pieces timed
    in blocks one after the other compare the drift as much as the work; taken in turns they
    share it. Each ``work()`` returns its accepted count, which must not change."""
    out = {name: Measurement(t.batches, t.frames, -1) for name, t in turns.items()}
    for r in range(max((t.repeats for t in turns.values()), default=0)):
        for name, t in turns.items():
            if r >= t.repeats:
                continue
            m = out[name]
            if t.setup is not None:
                t.setup()
            gc.collect()
            t0 = time.perf_counter_ns()
            accepted = t.work()
            m.ns.append(time.perf_counter_ns() - t0)
            if m.accepted not in (-1, accepted):
                raise AssertionError(f"{name}: accepted {accepted} frames, {m.accepted} before")
            m.accepted = accepted
    return out


def rss_bytes() -> int:
    """Resident set size of this process now (Linux ``/proc``; else the peak, from resource)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def environment() -> dict[str, Any]:
    """Where and with what the figures were measured."""
    versions: dict[str, str] = {}
    for name in ("numpy", "msgpack", "msgspec", "Cython"):
        try:
            mod = __import__(name)
        except ImportError:
            continue
        v = getattr(mod, "__version__", None) or getattr(mod, "version", "?")
        versions[name] = ".".join(map(str, v)) if isinstance(v, tuple) else str(v)
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(
                (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu
            )
    except OSError:
        pass
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "versions": versions,
        "git": _git_describe(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _git_describe() -> str | None:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
        )
    except OSError:
        return None
    if head.returncode:
        return None
    return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def rate(fps: float | None) -> str:
    """Frames per second, human-sized: ``51.2M``, ``840k``."""
    if fps is None:
        return "-"
    if fps >= 1e6:
        return f"{fps / 1e6:.1f}M"
    if fps >= 1e3:
        return f"{fps / 1e3:.0f}k"
    return f"{fps:.0f}"


def write_json(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")


def profile(work: Callable[[], object], top: int = 15) -> list[dict[str, Any]]:
    """cProfile of ``work()``: the ``top`` functions with the most own time."""
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile()
    profiler.runcall(work)
    stats = pstats.Stats(profiler, stream=io.StringIO())
    rows = []
    for (file, line, name), (_, calls, own, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append(
            {
                "function": f"{file.rsplit('/', 2)[-1]}:{line}({name})",
                "calls": calls,
                "own_s": round(own, 4),
                "cumulative_s": round(cumulative, 4),
            }
        )
    rows.sort(key=lambda r: -r["own_s"])
    return rows[:top]
