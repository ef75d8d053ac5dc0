"""The engine floor: how fast any shape of decode + apply can go on this machine.

``python -m bench.floor_engine [--devices 1000,100000] [--repeats 7] [--passes N]
[--variants fused,two,three,grouped] [--quick] [--json PATH]`` (also ``python -m bench
floor_engine``; not part of ``make bench``).

The issue asks the Cython engine for 50M compact frames/s (20 ns a frame) on one core at
100,000 devices. ``bench/floor_engine.c`` does the engine's work for compact frames (parse and
judge, hash and lookup, the columns, the ``apply_frames`` state update) in plain C with nothing
around it, in several loop shapes (its header says which, and what it leaves out). This tool

1. builds it with the system C compiler (``$CC``, ``cc`` or ``gcc``; ``-O2``, a shared library
   in a temporary directory), and loads it with ctypes;
2. generates the batches in memory with :mod:`core.fleet`: 1,000-frame batches of compact
   frames, 200 devices a site, 1 % bad frames, one reporting cycle then the steady batches, as
   the decode bench's ``--quick`` and ``bench.ab`` do;
3. runs ``RollupC`` over them from a fresh state and gives the C the fleet's ids numbered as
   the engine numbered them (arrival order), then runs every C shape from an empty state over
   the same batches and compares: accepted frames, and per device the day, the 14 counters
   of ``STATS_DTYPE`` and the coverage and fault bitmaps of the day. Any difference stops the
   run (:class:`FloorMismatch`) before anything is timed;
4. times the engine (``decode`` + ``apply`` of every steady batch, from Python, as the
   decode bench does) and the shapes in turns (:func:`bench.common.time_in_turns`), each
   repeat ``passes`` passes over the steady batches of a warm state, in thread CPU time (the
   machine is shared; wall time is kept too), and reports medians and minimums.

The batches must stay within one UTC day (the check reads the live state, not a drain): at
1,000-frame batches that holds up to about 1,400 steady batches at 1,000 devices.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bench.common import Measurement, Turn, environment, rate, time_in_turns
from bench.decode import EngineContender, engine_class
from core.fleet import BatchSet, Fleet, Traffic
from core.times import S_PER_DAY

NAME = "floor_engine"
DESCRIPTION = "decode+apply of compact frames in plain C (bench/floor_engine.c) vs the engine"

SOURCE = Path(__file__).with_name("floor_engine.c")
CFLAGS = ("-O2", "-std=gnu11", "-shared", "-fPIC", "-fvisibility=hidden")
#: The C shapes, in the order of floor_engine.c's enum.
VARIANTS = ("fused", "two", "three", "grouped")
#: What floor_export writes per device, in its order: the day, then STATS_DTYPE's counters.
FIELDS = (
    "day",
    "rssi_sum",
    "frames",
    "fault_frames",
    "rssi_n",
    "first_ms",
    "last_ms",
    "batt_ms",
    "rssi_ms",
    "fw_ms",
    "batt_last",
    "batt_min",
    "rssi_last",
    "fw_last",
    "last_status",
)
#: floor_stat's counters, in its order.
STATS = (
    "accepted",
    "rejected",
    "warnings",
    "unknown",
    "frames",
    "slow_path",
    "faults",
    "intervals",
    "records",
)
EXPORT_ERRORS = {
    1: "rows went to the day records (a second day, a late frame or a counter overflow)",
    2: "coverage or a fault falls outside the device's day",
    3: "bitmap rows too short",
}
BATCH_ERRORS = [
    "ok",
    "truncated",
    "reserved byte",
    "not a map",
    "trailing bytes",
    "version",
    "gateway",
    "seq",
    "frames",
    "out of memory",
    "unknown variant",
]
SPIN_ROUNDS = 20_000_000  # 80M dependent adds: about 20 ms

Log = Callable[[str], object]


class FloorMismatch(AssertionError):
    """A C shape's results differ from the engine's."""


@dataclass
class FloorConfig:
    """What to run. The defaults are the full run; :meth:`quick_config` a small one."""

    devices: tuple[int, ...] = (1_000, 100_000)
    devices_per_site: int = 200
    batch_size: int = 1_000
    steady_batches: int = 1_000
    passes: int = 20
    repeats: int = 7
    variants: tuple[str, ...] = VARIANTS
    bad_rate: float = 0.01
    slot_s: int = 60
    heartbeat_s: int = 60
    seed: int = 0
    quick: bool = False

    @classmethod
    def quick_config(cls) -> FloorConfig:
        """A run of a few seconds: 1,000 and 20,000 devices, 100 steady batches."""
        return cls(devices=(1_000, 20_000), steady_batches=100, passes=2, repeats=3, quick=True)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["devices"] = list(self.devices)
        d["variants"] = list(self.variants)
        return d


# --- the library ---------------------------------------------------------------------------


def compiler() -> str:
    """The C compiler to use: ``$CC``, else ``cc``, else ``gcc``."""
    for name in (os.environ.get("CC"), "cc", "gcc"):
        found = shutil.which(name) if name else None
        if found:
            return found
    raise SystemExit(
        "bench.floor_engine needs a C compiler: no $CC, cc or gcc on PATH "
        "(install gcc or clang, or set CC)"
    )


def load_library() -> tuple[ctypes.CDLL, dict[str, Any]]:
    """Build floor_engine.c into a temporary directory and load it; the library and how it
    was built (compiler, its version, flags)."""
    cc = compiler()
    with tempfile.TemporaryDirectory(prefix="uptally-floor-") as tmp:
        out = Path(tmp) / "libfloor_engine.so"
        cmd = [cc, *CFLAGS, "-o", str(out), str(SOURCE)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(f"building {SOURCE.name} failed: {' '.join(cmd)}\n{proc.stderr}")
        lib = ctypes.CDLL(str(out))  # stays mapped after the directory is gone
    version = subprocess.run([cc, "--version"], capture_output=True, text=True).stdout
    c_size, c_int, c_long, c_void = ctypes.c_size_t, ctypes.c_int, ctypes.c_long, ctypes.c_void_p
    lib.floor_open.restype = c_void
    lib.floor_open.argtypes = [c_size, ctypes.c_char_p, c_void, c_int, c_int]
    lib.floor_close.argtypes = [c_void]
    lib.floor_add_batch.restype = c_long
    lib.floor_add_batch.argtypes = [c_void, ctypes.c_char_p, c_size, ctypes.c_int64]
    lib.floor_reset.argtypes = [c_void]
    lib.floor_forget.argtypes = [c_void]
    lib.floor_run.restype = c_long
    lib.floor_run.argtypes = [c_void, c_int, c_size, c_size, c_int]
    lib.floor_stat.restype = c_long
    lib.floor_stat.argtypes = [c_void, c_int]
    lib.floor_export.restype = c_int
    lib.floor_export.argtypes = [c_void, c_void, c_void, c_void, c_size]
    lib.floor_spin.restype = ctypes.c_uint64
    lib.floor_spin.argtypes = [ctypes.c_uint64]
    build = {
        "compiler": cc,
        "version": version.splitlines()[0] if version else "?",
        "flags": list(CFLAGS),
        "source": str(SOURCE.relative_to(SOURCE.parent.parent)),
    }
    return lib, build


def clock_ghz(lib: ctypes.CDLL) -> float:
    """The core's clock now, from a chain of dependent adds (one a cycle) in thread CPU time."""
    t0 = time.thread_time_ns()
    lib.floor_spin(SPIN_ROUNDS)
    return 4 * SPIN_ROUNDS / max(1, time.thread_time_ns() - t0)


@dataclass
class DayState:
    """One day of per-device results, rows in the id table's order: ``rows[:, j]`` is
    ``FIELDS[j]`` (all 0 for a device without frames), ``cov`` and ``fault`` the packed
    bitmaps of the day (bit ``i & 7`` of byte ``i >> 3``, as :class:`core.dayblock.DayDelta`)."""

    rows: npt.NDArray[np.int64]
    cov: npt.NDArray[np.uint8]
    fault: npt.NDArray[np.uint8]


class Floor:
    """A handle of the C library: one id table and state over ``ids``, and its batches."""

    def __init__(self, lib: ctypes.CDLL, ids: list[str], slot_s: int, heartbeat_s: int) -> None:
        keys = [i.encode() for i in ids]
        offs = np.zeros(len(keys) + 1, np.uint32)
        offs[1:] = np.cumsum([len(k) for k in keys])
        self.lib = lib
        self.n_ids = len(ids)
        self.width = (S_PER_DAY // slot_s + 7) // 8
        self.n_batches = 0
        self.handle = lib.floor_open(
            len(keys), b"".join(keys), offs.ctypes.data, slot_s, heartbeat_s
        )
        if not self.handle:
            raise MemoryError("floor_open failed (out of memory, or slot_s not a divisor of a day)")

    def close(self) -> None:
        if self.handle:
            self.lib.floor_close(self.handle)
            self.handle = None

    def add(self, batches: BatchSet) -> tuple[int, int]:
        """Keep copies of the bodies; the index range they got."""
        first = self.n_batches
        for body, now_ns in zip(batches.bodies, batches.now_ns, strict=True):
            if self.lib.floor_add_batch(self.handle, body, len(body), now_ns) < 0:
                raise MemoryError("floor_add_batch failed")
            self.n_batches += 1
        return first, self.n_batches

    def run(self, variant: str, span: tuple[int, int], passes: int = 1) -> int:
        """Decode and apply the batches of ``span`` ``passes`` times; frames accepted."""
        got = self.lib.floor_run(self.handle, VARIANTS.index(variant), *span, passes)
        if got < 0:
            raise RuntimeError(f"{variant}: batch refused: {BATCH_ERRORS[-got]}")
        return int(got)

    def reset(self) -> None:
        self.lib.floor_reset(self.handle)

    def forget(self) -> None:
        self.lib.floor_forget(self.handle)

    def stats(self) -> dict[str, int]:
        return {name: int(self.lib.floor_stat(self.handle, i)) for i, name in enumerate(STATS)}

    def export(self) -> DayState:
        state = DayState(
            np.zeros((self.n_ids, len(FIELDS)), np.int64),
            np.zeros((self.n_ids, self.width), np.uint8),
            np.zeros((self.n_ids, self.width), np.uint8),
        )
        rc = self.lib.floor_export(
            self.handle,
            state.rows.ctypes.data,
            state.cov.ctypes.data,
            state.fault.ctypes.data,
            self.width,
        )
        if rc:
            raise FloorMismatch(f"cannot compare the state: {EXPORT_ERRORS[rc]}")
        return state


# --- the check -----------------------------------------------------------------------------


def engine_day(deltas: list[Any], n_ids: int, width: int) -> DayState:
    """The engine's drained state as a :class:`DayState` over the first ``n_ids`` indices."""
    if len(deltas) > 1:
        raise FloorMismatch(f"the engine holds {len(deltas)} days; the check needs one")
    state = DayState(
        np.zeros((n_ids, len(FIELDS)), np.int64),
        np.zeros((n_ids, width), np.uint8),
        np.zeros((n_ids, width), np.uint8),
    )
    for dd in deltas:
        state.rows[dd.dev, 0] = dd.day
        for j, name in enumerate(FIELDS[1:], 1):
            state.rows[dd.dev, j] = dd.stats[name]
        state.cov[dd.dev] = dd.cov
        state.fault[dd.dev] = dd.fault
    return state


def differences(ids: list[str], got: DayState, want: DayState) -> list[str]:
    """How ``got`` (a C shape) differs from ``want`` (the engine), one line per field."""
    out = []
    for j, name in enumerate(FIELDS):
        bad = np.flatnonzero(got.rows[:, j] != want.rows[:, j])
        if len(bad):
            i = bad[0]
            out.append(
                f"{name} differs on {len(bad):,} of {len(ids):,} devices, e.g. {ids[i]}: "
                f"{got.rows[i, j]} (engine {want.rows[i, j]})"
            )
    for name in ("cov", "fault"):
        bad = np.flatnonzero((getattr(got, name) != getattr(want, name)).any(axis=1))
        if len(bad):
            out.append(
                f"{name} bitmap differs on {len(bad):,} of {len(ids):,} devices, e.g. {ids[bad[0]]}"
            )
    return out


# --- one fleet size ------------------------------------------------------------------------


def one_day(traffic: Traffic, cfg: FloorConfig) -> bool:
    """Whether the traffic so far, and the coverage of its last frames, is one UTC day."""
    day = traffic.start_s // S_PER_DAY
    return (traffic.clock_s + cfg.heartbeat_s) // S_PER_DAY == day


def check_shapes(
    floor: Floor, cfg: FloorConfig, ids: list[str], want: DayState, accepted: int
) -> dict[str, dict[str, int]]:
    """Run every shape from an empty state over all the batches and compare it with the
    engine's ``want``; its counters, or :class:`FloorMismatch` at the first difference."""
    checked = {}
    for v in cfg.variants:
        floor.reset()
        got = floor.run(v, (0, floor.n_batches))
        stats = floor.stats()
        problems = [] if got == accepted else [f"accepted {got:,} frames, engine {accepted:,}"]
        if stats["unknown"]:
            problems.append(f"{stats['unknown']:,} frames of ids not in the table")
        problems += differences(ids, floor.export(), want)
        if problems:
            raise FloorMismatch(f"{len(ids):,} devices, {v}: " + "; ".join(problems))
        checked[v] = stats
    return checked


def time_shapes(
    floor: Floor,
    engine: EngineContender,
    steady: BatchSet,
    span: tuple[int, int],
    cfg: FloorConfig,
) -> dict[str, Any]:
    """Time the warm engine and every shape over the steady batches in turns; per contender
    ns per frame (median and min of thread CPU time) and both measurements."""
    cpu: dict[str, list[int]] = {}

    def turn(name: str, work: Callable[[], int], after: Callable[[], None] | None) -> Turn:
        ns: list[int] = []
        cpu[name] = ns

        def run() -> int:
            t0 = time.thread_time_ns()
            n = work()
            ns.append(time.thread_time_ns() - t0)
            if after is not None:
                after()
            return n

        return Turn(run, cfg.repeats, len(steady) * cfg.passes, steady.n_frames * cfg.passes)

    def engine_passes() -> int:
        return sum(engine.run(steady) for _ in range(cfg.passes))

    turns = {"engine": turn("engine", engine_passes, None)}
    for v in cfg.variants:
        turns[v] = turn(v, partial(floor.run, v, span, cfg.passes), floor.forget)
    timing: dict[str, Any] = {}
    for name, wall in time_in_turns(turns).items():
        if wall.accepted != steady.n_accepted * cfg.passes:
            raise FloorMismatch(
                f"{name}: accepted {wall.accepted:,} frames a repeat, "
                f"{steady.n_accepted * cfg.passes:,} expected"
            )
        m = Measurement(wall.batches, wall.frames, wall.accepted, cpu[name])
        timing[name] = {
            "ns_per_frame": {"median": m.median_ns / m.frames, "min": m.best_ns / m.frames},
            "thread_cpu": m.as_dict(),
            "wall": wall.as_dict(),
        }
    return timing


def run_size(lib: ctypes.CDLL, cfg: FloorConfig, n_devices: int, log: Log) -> dict[str, Any]:
    """Check every shape against the engine at ``n_devices``, then time them in turns."""
    fleet = Fleet(n_devices, cfg.devices_per_site)
    traffic = Traffic(
        fleet, form="compact", batch_size=cfg.batch_size, bad_rate=cfg.bad_rate, seed=cfg.seed
    )
    first = traffic.batches(traffic.cycle_batches)
    steady = traffic.batches(cfg.steady_batches)
    if not one_day(traffic, cfg):
        raise SystemExit(
            f"{n_devices:,} devices: {len(first) + len(steady):,} batches of {cfg.batch_size:,} "
            "frames run past the end of the day; the check needs one UTC day: "
            "use fewer --steady-batches"
        )
    log(f"  {fleet.describe()}: {len(first):,} + {len(steady):,} batches")

    # the reference: the engine from a fresh state over the first cycle and the steady batches
    cls, why = engine_class("cython")
    if cls is None:
        raise SystemExit(f"bench.floor_engine compares against the Cython engine: {why}")
    engine = EngineContender("engine", cls, cfg.slot_s, cfg.heartbeat_s)
    engine.reset()
    accepted = engine.run(first) + engine.run(steady)
    if accepted != first.n_accepted + steady.n_accepted:
        raise FloorMismatch(
            f"the engine accepted {accepted:,} frames, "
            f"{first.n_accepted + steady.n_accepted:,} are valid"
        )
    ids = engine.engine.device_ids()  # numbered in arrival order
    known = set(ids)
    ids += [i for i in fleet.device_ids() if i not in known]  # none, unless all frames were bad

    floor = Floor(lib, ids, cfg.slot_s, cfg.heartbeat_s)
    try:
        want = engine_day(engine.engine.drain(), len(ids), floor.width)
        floor.add(first)
        span = floor.add(steady)
        checked: dict[str, Any] = {"engine": {"accepted": accepted, "devices": len(known)}}
        checked.update(check_shapes(floor, cfg, ids, want, accepted))
        log(f"  check: {', '.join(cfg.variants)} equal the engine ({accepted:,} frames)")
        engine.run(steady)  # warm again after the drain: ids known, the day's rows in place
        ghz = [clock_ghz(lib)]
        timing = time_shapes(floor, engine, steady, span, cfg)
        ghz.append(clock_ghz(lib))
    finally:
        floor.close()
        engine.close()
    return {
        "devices": n_devices,
        "batches": {"first": len(first), "steady": len(steady)},
        "frames_per_repeat": steady.n_frames * cfg.passes,
        "clock_ghz": {"before": ghz[0], "after": ghz[1]},
        "check": checked,
        "timing": timing,
    }


# --- report and entry point ----------------------------------------------------------------


def report(doc: dict[str, Any]) -> str:
    """The printed table."""
    cfg, build = doc["config"], doc["build"]
    lines = [
        "",
        f"engine floor: decode + apply of compact frames, one core, {cfg['batch_size']:,}-frame "
        f"batches, {cfg['bad_rate']:.0%} bad frames"
        + ("  [--quick: not the target configuration]" if cfg["quick"] else ""),
        f"C: {build['version']}, {' '.join(build['flags'])}; engine: RollupC decode + apply "
        "from Python",
        f"thread CPU time, {cfg['repeats']} repeats of {cfg['passes']} passes over the steady "
        "batches, contenders in turns",
        "",
        f"{'devices':>9} {'contender':9} {'ns/frame':>9} {'min':>7} {'frames/s':>9} {'best':>7} "
        f"{'/ engine':>9}",
    ]
    for res in doc["results"]:
        t = res["timing"]
        eng = t["engine"]["ns_per_frame"]["median"]
        for name, row in t.items():
            ns = row["ns_per_frame"]
            lines.append(
                f"{res['devices']:>9,} {name:9} {ns['median']:>9.2f} {ns['min']:>7.2f} "
                f"{rate(1e9 / ns['median']):>9} {rate(1e9 / ns['min']):>7} "
                f"{ns['median'] / eng:>9.2f}"
            )
        ghz = res["clock_ghz"]
        best = min((n for n in t if n != "engine"), key=lambda n: t[n]["ns_per_frame"]["median"])
        lines.append(
            f"{'':9} fastest shape {best} {t[best]['ns_per_frame']['median']:.2f} ns/frame "
            f"(target 20); clock {ghz['before']:.2f} / {ghz['after']:.2f} GHz before / after"
        )
    lines.append("")
    lines.append(
        "check: every shape's accepted frames, and per device the day, the 14 counters and the "
        "coverage and fault bitmaps, equal RollupC's"
    )
    return "\n".join(lines)


def run(cfg: FloorConfig, log: Log = print) -> dict[str, Any]:
    """Build, check and time; the result document (JSON-able): ``config``, ``environment``,
    ``build``, ``results`` (one per fleet size: ``check`` counters per shape, ``timing`` per
    contender) and ``check``. Raises :class:`FloorMismatch` if a shape differs."""
    unknown = set(cfg.variants) - set(VARIANTS)
    if unknown:
        raise SystemExit(f"unknown variants: {', '.join(sorted(unknown))} (have {VARIANTS})")
    log(f"engine floor: {'quick' if cfg.quick else 'full'} run")
    lib, build = load_library()
    results = [run_size(lib, cfg, n, log) for n in cfg.devices]
    return {
        "bench": NAME,
        "schema": 1,
        "config": cfg.as_dict(),
        "environment": environment(),
        "build": build,
        "results": results,
        "check": {"agree": True, "problems": []},
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m bench floor_engine`` (defaults: the full run)."""
    parser.add_argument("--devices", help="comma-separated fleet sizes (default 1000,100000)")
    parser.add_argument("--repeats", type=int, help="timed repeats (default 7)")
    parser.add_argument("--passes", type=int, help="passes over the steady batches a repeat (20)")
    parser.add_argument("--steady-batches", type=int, help="steady batches (default 1,000)")
    parser.add_argument("--variants", help=f"comma-separated subset of {','.join(VARIANTS)}")


def config_from_args(args: argparse.Namespace) -> FloorConfig:
    cfg = FloorConfig.quick_config() if args.quick else FloorConfig()
    changes: dict[str, Any] = {}
    for key in ("repeats", "passes", "steady_batches"):
        value = getattr(args, key, None)
        if value is not None:
            if value < 1:
                raise SystemExit(f"--{key.replace('_', '-')} must be 1 or more")
            changes[key] = value
    if getattr(args, "devices", None):
        changes["devices"] = tuple(int(s) for s in args.devices.split(","))
        if min(changes["devices"]) < 1:
            raise SystemExit("--devices must be 1 or more")
    if getattr(args, "variants", None):
        changes["variants"] = tuple(s.strip() for s in args.variants.split(","))
    return replace(cfg, **changes)


def main(args: argparse.Namespace) -> dict[str, Any]:
    """Entry point of the ``floor_engine`` subcommand: run, print the table, return the doc."""
    doc = run(config_from_args(args))
    print(report(doc))
    return doc


if __name__ == "__main__":
    from bench import cli

    sys.exit(cli.main([NAME, *sys.argv[1:]]))
