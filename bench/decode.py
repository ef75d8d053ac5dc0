"""Decode benchmark: batch bodies to in-memory rollup state, on one core, nothing committed.

What is timed, per contender and per frame form (compact arrays, maps with short keys), is a
loop over pre-encoded batch bodies of a synthetic fleet (:mod:`core.fleet`):

* ``cython`` / ``python``: the rollup engines (``RollupC``, ``RollupPy``), ``decode`` then
  ``apply`` of every batch: parsing, judging each frame, interning ids, folding the frames
  into live day state (coverage and fault bitmaps, per device-day counters).
* ``baseline``: the obvious hand-written approach: ``msgpack.unpackb`` of the batch, then
  for each frame the same time-window check as the engines and one bit set in a per-device
  ``bytearray`` day bitmap held in a Python dict (coverage or fault). It keeps no counters
  and ignores battery and rssi, so it does less than the engines.
* ``msgspec``: decode only, for reference: ``msgspec.msgpack.Decoder`` of the whole batch into
  typed structs (``array_like`` frames, or frames with renamed short keys). No judging, no
  state.

Two passes are measured. The *first pass* runs a fresh engine (or dict) over one reporting
cycle, every device once: it interns all device ids and creates each device's day state.
*Steady state*, the headline, runs the warmed engine over the following batches (time moving
on, ids known), after one untimed pass over them. The Python twin and the baseline are timed
on a proportionally smaller share of the steady batches; rates are frames per second. The
contenders' steady repeats are taken in turns (one repeat of each, then the next round), so
that the machine's drift over the run touches them all alike and their ratios hold.

A second scenario (``large``) runs the compact form at 1,000,000 devices, each contender in a
fresh subprocess, and reads the process's RSS before and after the first pass: the growth per
device is the engine's memory per device.

Every run checks that the engines and the baseline accepted the same frames, and as many as
the generator says are valid, and that they know the same number of devices.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import pickle
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import msgpack
import msgspec

from bench.common import REPO, Turn, environment, rate, rss_bytes, time_in_turns, time_repeats
from core.fleet import BatchSet, Fleet, FrameForm, Traffic
from core.times import MS_THRESHOLD, NS_PER_S, S_PER_DAY, slots_per_day

NAME = "decode"
DESCRIPTION = "decode+apply throughput of the rollup engines vs a baseline and msgspec"

MAX_FUTURE_S = 300
MAX_BACKFILL_S = 7 * S_PER_DAY

Log = Callable[[str], object]

CONTENDERS = ("cython", "python", "baseline", "msgspec")
ENGINES = ("cython", "python")


@dataclass
class DecodeConfig:
    """What to run. The defaults are the full benchmark; :meth:`quick_config` a small one."""

    devices: int = 100_000
    devices_per_site: int = 200
    batch_size: int = 1_000
    forms: tuple[FrameForm, ...] = ("compact", "map")
    contenders: tuple[str, ...] = CONTENDERS
    steady_batches: int = 1_000
    #: fraction of ``steady_batches`` each slow contender is timed on (at least one batch)
    shares: dict[str, float] = field(default_factory=lambda: {"python": 0.01, "baseline": 0.2})
    repeats: int = 7
    #: repeats of the Python twin (its first pass always runs once)
    python_repeats: int = 3
    large_devices: int = 1_000_000
    large_steady_batches: int = 1_000
    large_contenders: tuple[str, ...] = ("cython", "baseline")
    bad_rate: float = 0.0
    slot_s: int = 60
    heartbeat_s: int = 60
    seed: int = 0
    quick: bool = False

    @classmethod
    def quick_config(cls) -> DecodeConfig:
        """A run of a few seconds: 5,000 devices, 20,000 at the large scale, 1 % bad frames."""
        return cls(
            devices=5_000,
            steady_batches=40,
            shares={"python": 0.05, "baseline": 0.5},
            repeats=3,
            python_repeats=2,
            large_devices=20_000,
            large_steady_batches=20,
            bad_rate=0.01,
            quick=True,
        )

    def share(self, contender: str, n_batches: int) -> int:
        return max(1, math.floor(n_batches * self.shares.get(contender, 1.0)))

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["forms"] = list(self.forms)
        d["contenders"] = list(self.contenders)
        d["large_contenders"] = list(self.large_contenders)
        return d


# --- contenders ----------------------------------------------------------------------------


class Contender:
    """One way of consuming batch bodies; ``run`` returns the frames it accepted."""

    name = "?"
    #: whether its accepted count is an engine's judgement (checked against the others)
    judges = True
    #: whether it keeps state, so that a first pass over a fresh state means something
    stateful = True

    def reset(self) -> None:
        """Start again from an empty state (untimed)."""

    def close(self) -> None:
        """Drop the state (frees memory between scenarios)."""

    def run(self, batches: BatchSet) -> int:
        raise NotImplementedError

    def n_devices(self) -> int | None:
        return None


class EngineContender(Contender):
    """A rollup engine: ``decode`` + ``apply`` of each batch."""

    def __init__(self, name: str, engine: type[Any], slot_s: int, heartbeat_s: int) -> None:
        self.name = name
        self.engine_cls = engine
        self.slot_s = slot_s
        self.heartbeat_s = heartbeat_s
        self.engine: Any = None

    def reset(self) -> None:
        self.engine = None
        gc.collect()
        self.engine = self.engine_cls(slot_s=self.slot_s, heartbeat_s=self.heartbeat_s)

    def close(self) -> None:
        self.engine = None

    def run(self, batches: BatchSet) -> int:
        decode = self.engine.decode
        apply = self.engine.apply
        accepted = 0
        for body, now_ns in zip(batches.bodies, batches.now_ns, strict=True):
            batch = decode(body, now_ns)
            apply(batch)
            accepted += batch.accepted
        return accepted

    def n_devices(self) -> int | None:
        return int(self.engine.n_devices)


class BaselineContender(Contender):
    """``msgpack.unpackb`` + a dict of per-device ``bytearray`` day bitmaps (per UTC day).

    Each bitmap holds the coverage bits of the day then its fault bits; a frame sets one bit
    (its slot; in the fault half if its status is not 0). Frames outside the engines' time
    window are not counted, so its accepted count can be checked against theirs.
    """

    name = "baseline"

    def __init__(self, form: FrameForm, slot_s: int) -> None:
        self.form = form
        self.slot_s = slot_s
        self.slots_per_day = slots_per_day(slot_s)
        self.by_day: dict[int, dict[str, bytearray]] = {}

    def reset(self) -> None:
        self.by_day = {}
        gc.collect()

    def close(self) -> None:
        self.by_day = {}

    def run(self, batches: BatchSet) -> int:
        unpackb = msgpack.unpackb
        by_day = self.by_day
        slot_s = self.slot_s
        spd = self.slots_per_day
        size = 2 * ((spd + 7) // 8)
        compact = self.form == "compact"
        accepted = 0
        day_now = -1
        bitmaps: dict[str, bytearray] = {}
        for body, now_ns in zip(batches.bodies, batches.now_ns, strict=True):
            newest = now_ns / NS_PER_S + MAX_FUTURE_S
            oldest = now_ns / NS_PER_S - MAX_BACKFILL_S
            for frame in unpackb(body)["frames"]:
                if compact:
                    dev, ts, status = frame[0], frame[1], frame[2]
                else:
                    dev, ts, status = frame["d"], frame["t"], frame.get("s", 0)
                if ts >= MS_THRESHOLD:
                    ts = ts / 1000
                if ts > newest or ts < oldest:
                    continue
                slot = int(ts) // slot_s
                day = slot // spd
                if day != day_now:
                    bitmaps = by_day.setdefault(day, {})
                    day_now = day
                bits = bitmaps.get(dev)
                if bits is None:
                    bits = bitmaps[dev] = bytearray(size)
                i = slot - day * spd
                if status:
                    i += spd
                bits[i >> 3] |= 1 << (i & 7)
                accepted += 1
        return accepted

    def n_devices(self) -> int | None:
        return len(set().union(*self.by_day.values()))


class CompactFrame(msgspec.Struct, array_like=True):
    """A compact frame ``[device, ts, status, battery, rssi]``, trailing fields optional."""

    device: str
    ts: int | float
    status: int = 0
    battery: int | float | None = None
    rssi: int | float | None = None


class CompactBatch(msgspec.Struct):
    gateway: str
    seq: int
    frames: list[CompactFrame]


_SHORT = {"device": "d", "ts": "t", "status": "s", "battery": "b", "rssi": "r"}


class MapFrame(msgspec.Struct, rename=_SHORT):
    """A map frame with short keys ``{"d", "t", "s", "b", "r"}``."""

    device: str
    ts: int | float
    status: int = 0
    battery: int | float | None = None
    rssi: int | float | None = None


class MapBatch(msgspec.Struct):
    gateway: str
    seq: int
    frames: list[MapFrame]


class MsgspecContender(Contender):
    """``msgspec`` typed decoding of whole batches; no judging, no state. Counts frames."""

    name = "msgspec"
    judges = False
    stateful = False

    def __init__(self, form: FrameForm) -> None:
        schema: type[CompactBatch | MapBatch] = CompactBatch if form == "compact" else MapBatch
        self.decoder: msgspec.msgpack.Decoder[CompactBatch | MapBatch] = msgspec.msgpack.Decoder(
            schema
        )

    def run(self, batches: BatchSet) -> int:
        decode = self.decoder.decode
        n = 0
        for body in batches.bodies:
            n += len(decode(body).frames)
        return n


def engine_class(name: str) -> tuple[type[Any] | None, str]:
    """The engine class for a contender name, or None and why it is missing."""
    from core.rollup import NO_EXTENSIONS, RollupC, RollupPy

    if name == "python":
        return RollupPy, ""
    if RollupC is None:
        why = "UPTALLY_NO_EXTENSIONS is set" if NO_EXTENSIONS else "core._rollup not built"
        return None, why
    return RollupC, ""


def make_contender(name: str, form: FrameForm, cfg: DecodeConfig) -> tuple[Contender | None, str]:
    if name in ENGINES:
        cls, why = engine_class(name)
        if cls is None:
            return None, why
        return EngineContender(name, cls, cfg.slot_s, cfg.heartbeat_s), ""
    if name == "baseline":
        return BaselineContender(form, cfg.slot_s), ""
    if name == "msgspec":
        return MsgspecContender(form), ""
    raise ValueError(f"unknown contender {name!r}")


# --- measuring -----------------------------------------------------------------------------


def measure_first(
    contender: Contender, first: BatchSet, first_repeats: int
) -> dict[str, Any] | None:
    """The first pass: a fresh state each repeat, every device new."""
    if not contender.stateful:
        contender.reset()
        return None
    m = time_repeats(
        lambda: contender.run(first),
        first_repeats,
        batches=len(first),
        frames=first.n_frames,
        setup=contender.reset,
    )
    out = m.as_dict()
    out["expected"] = first.n_accepted
    out["devices_known"] = contender.n_devices()
    return out


def run_fleet(cfg: DecodeConfig, log: Log) -> list[dict[str, Any]]:
    """The main scenario: every contender and form on ``cfg.devices`` devices.

    Per form, each contender's first pass is timed on its own (it starts from a fresh state
    every repeat); then every contender is warmed and their steady-state runs are timed in
    turns (bench.common.time_in_turns), so that their ratios do not depend on the machine's
    drift between one contender's block of repeats and the next.
    """
    fleet = Fleet(cfg.devices, cfg.devices_per_site)
    rows = []
    for form in cfg.forms:
        traffic = Traffic(
            fleet, form=form, batch_size=cfg.batch_size, bad_rate=cfg.bad_rate, seed=cfg.seed
        )
        first = traffic.batches(traffic.cycle_batches)
        steady = traffic.batches(cfg.steady_batches)
        log(
            f"  {form}: encoded {len(first) + len(steady):,} batches, "
            f"{(first.n_bytes + steady.n_bytes) / (first.n_frames + steady.n_frames):.1f} B/frame"
        )
        live: dict[str, tuple[Contender, dict[str, Any], BatchSet, int]] = {}
        turns: dict[str, Turn] = {}
        for name in cfg.contenders:
            contender, why = make_contender(name, form, cfg)
            row: dict[str, Any] = {"contender": name, "form": form, "devices": cfg.devices}
            rows.append(row)
            if contender is None:
                row["skipped"] = why
                log(f"  {form:8} {name:9} skipped: {why}")
                continue
            slow = name == "python"
            repeats = cfg.python_repeats if slow else cfg.repeats
            first_repeats = 1 if slow else min(cfg.repeats, 3)
            sub = steady.head(cfg.share(name, len(steady)))
            row["first_pass"] = measure_first(contender, first, first_repeats)
            row["judges"] = contender.judges
            warm = contender.run(sub)  # untimed: the state reaches its steady size
            live[name] = (contender, row, sub, warm)
            turns[name] = Turn(partial(contender.run, sub), repeats, len(sub), sub.n_frames)
        for name, m in time_in_turns(turns).items():
            contender, row, sub, warm = live[name]
            if m.accepted != warm:
                raise AssertionError(f"{name}: accepted {m.accepted}, {warm} on warm-up")
            row["steady"] = m.as_dict()
            row["steady"]["expected"] = sub.n_accepted
            contender.close()
            fp = row["first_pass"]
            log(
                f"  {form:8} {name:9} first pass {rate(fp and fp['best_fps']):>7}  "
                f"steady {rate(row['steady']['best_fps']):>7} best "
                f"{rate(row['steady']['median_fps']):>7} median"
            )
    return rows


# --- the large scenario, one subprocess per contender --------------------------------------


def run_large(cfg: DecodeConfig, log: Log) -> list[dict[str, Any]]:
    """Compact frames at ``cfg.large_devices`` devices; throughput and RSS growth per device."""
    if not cfg.large_devices or not cfg.large_contenders:
        return []
    rows: list[dict[str, Any]] = []
    todo = []
    for name in cfg.large_contenders:
        contender, why = make_contender(name, "compact", cfg)
        if contender is None:
            rows.append({"contender": name, "devices": cfg.large_devices, "skipped": why})
            log(f"  large    {name:9} skipped: {why}")
        else:
            todo.append(name)
    if not todo:
        return rows
    fleet = Fleet(cfg.large_devices, cfg.devices_per_site)
    traffic = Traffic(
        fleet, form="compact", batch_size=cfg.batch_size, bad_rate=cfg.bad_rate, seed=cfg.seed
    )
    first = traffic.batches(traffic.cycle_batches)
    steady = traffic.batches(cfg.large_steady_batches)
    del traffic
    log(f"  large: encoded {len(first) + len(steady):,} batches for {fleet.describe()}")
    with tempfile.TemporaryDirectory(prefix="uptally-bench-") as tmp:
        path = Path(tmp) / "batches.pickle"
        with open(path, "wb") as f:
            pickle.dump((first, steady), f, protocol=pickle.HIGHEST_PROTOCOL)
        del first, steady
        gc.collect()
        for name in todo:
            child_cfg = replace(cfg, contenders=(name,))
            proc = subprocess.run(
                [sys.executable, "-c", _CHILD, str(path), json.dumps(child_cfg.as_dict())],
                cwd=REPO,
                capture_output=True,
                text=True,
            )
            if proc.returncode:
                raise RuntimeError(f"large scenario ({name}) failed:\n{proc.stderr}")
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            log(
                f"  large    {name:9} first pass {rate(row['first_pass']['best_fps']):>7}  "
                f"steady {rate(row['steady']['best_fps']):>7} best "
                f"{rate(row['steady']['median_fps']):>7} median  "
                f"{row['memory']['bytes_per_device']:.0f} B/device"
            )
            rows.append(row)
    return rows


_CHILD = "import sys; from bench.decode import large_child; large_child(sys.argv[1:])"

MEMORY_NOTES = {
    "cython": (
        "RSS growth of a fresh process over the first pass (every device reports once, into "
        "a new engine): all the engine holds then, i.e. the interned device ids and their "
        "index, per-device data such as heartbeats, the live day state of one UTC day per "
        "device (coverage and fault bitmaps, a row of counters) and allocator overhead; not "
        "the interpreter, modules or the pre-encoded batch bodies, loaded before the first "
        "reading"
    ),
    "baseline": (
        "RSS growth of a fresh process over the first pass: the dict entries, the id strings "
        "kept as keys and one bytearray (coverage + fault bits of a day) per device"
    ),
}
MEMORY_NOTES["python"] = MEMORY_NOTES["cython"]


def large_child(argv: list[str]) -> None:
    """Subprocess body of :func:`run_large`: measure one contender, print one JSON line."""
    path, cfg_json = argv
    raw = json.loads(cfg_json)
    for key in ("forms", "contenders", "large_contenders"):
        raw[key] = tuple(raw[key])
    cfg = DecodeConfig(**raw)
    (name,) = cfg.contenders
    with open(path, "rb") as f:
        first, steady = pickle.load(f)
    contender, why = make_contender(name, "compact", cfg)
    assert contender is not None, why
    contender.reset()
    gc.collect()
    before = rss_bytes()
    m_first = time_repeats(
        lambda: contender.run(first), 1, batches=len(first), frames=first.n_frames
    )
    gc.collect()
    after = rss_bytes()
    n_devices = contender.n_devices()
    assert n_devices is not None
    sub = steady.head(cfg.share(name, len(steady)))
    contender.run(sub)
    m_steady = time_repeats(
        lambda: contender.run(sub), cfg.repeats, batches=len(sub), frames=sub.n_frames
    )
    row: dict[str, Any] = {
        "contender": name,
        "form": "compact",
        "devices": cfg.large_devices,
        "judges": contender.judges,
        "first_pass": {
            **m_first.as_dict(),
            "expected": first.n_accepted,
            "devices_known": n_devices,
        },
        "steady": {**m_steady.as_dict(), "expected": sub.n_accepted},
        "memory": {
            "rss_before": before,
            "rss_after": after,
            "devices": n_devices,
            "bytes_per_device": (after - before) / max(1, n_devices),
            "includes": MEMORY_NOTES.get(name, MEMORY_NOTES["cython"]),
        },
    }
    print(json.dumps(row))


# --- checks, targets, report ---------------------------------------------------------------


def check(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Every judging contender accepted what the generator says is valid, on each pass, and
    the judging contenders agree on the accepted frames and on the devices they know."""
    problems: list[str] = []
    compared = []
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for row in rows:
        if "skipped" in row or not row.get("judges"):
            continue
        groups.setdefault((row["form"], row["devices"]), []).append(row)
        for part in ("first_pass", "steady"):
            m = row.get(part)
            if m and m["accepted"] != m["expected"]:
                problems.append(
                    f"{row['contender']} {row['form']} {row['devices']:,} devices {part}: "
                    f"accepted {m['accepted']:,}, expected {m['expected']:,}"
                )
    for (form, devices), group in groups.items():
        firsts = {r["contender"]: r["first_pass"]["accepted"] for r in group if r["first_pass"]}
        known = {r["contender"]: r["first_pass"]["devices_known"] for r in group if r["first_pass"]}
        if len(set(firsts.values())) > 1:
            problems.append(f"{form} {devices:,}: first-pass accepted frames differ: {firsts}")
        if len(set(known.values())) > 1:
            problems.append(f"{form} {devices:,}: devices known differ: {known}")
        compared.append(
            {
                "form": form,
                "devices": devices,
                "first_pass_accepted": firsts,
                "devices_known": known,
            }
        )
    return {"agree": not problems, "problems": problems, "compared": compared}


def _find(rows: list[dict[str, Any]], contender: str, form: str) -> dict[str, Any] | None:
    for row in rows:
        if row["contender"] == contender and row["form"] == form and "skipped" not in row:
            return row
    return None


def ratios(rows: list[dict[str, Any]], forms: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Steady-state Cython rate over the baseline's and msgspec's, per form."""
    out: dict[str, dict[str, Any]] = {}
    for form in forms:
        c = _find(rows, "cython", form)
        out[form] = {}
        for other in ("baseline", "msgspec", "python"):
            o = _find(rows, other, form)
            if c is None or o is None:
                out[form][f"cython/{other}"] = None
                continue
            out[form][f"cython/{other}"] = {
                "best": c["steady"]["best_fps"] / o["steady"]["best_fps"],
                "median": c["steady"]["median_fps"] / o["steady"]["median_fps"],
            }
    return out


def targets(
    rows: list[dict[str, Any]], large: list[dict[str, Any]], rat: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """The issue's targets, judged on steady-state medians (None: not measured)."""

    def fps(found: dict[str, Any] | None) -> float | None:
        return found["steady"]["median_fps"] if found else None

    def ratio(form: str, key: str) -> float | None:
        r = rat.get(form, {}).get(key)
        return r["median"] if r else None

    big = next((r for r in large if r["contender"] == "cython" and "skipped" not in r), None)
    spec = [
        ("cython compact >= 50M frames/s", fps(_find(rows, "cython", "compact")), 50e6),
        ("cython compact >= 30x baseline", ratio("compact", "cython/baseline"), 30.0),
        ("cython compact >= 5x msgspec", ratio("compact", "cython/msgspec"), 5.0),
        ("cython map >= 20M frames/s", fps(_find(rows, "cython", "map")), 20e6),
        ("cython compact at 1M devices >= 10M frames/s", fps(big), 10e6),
    ]
    return [
        {
            "target": text,
            "threshold": threshold,
            "value": value,
            "pass": None if value is None else value >= threshold,
        }
        for text, value, threshold in spec
    ]


def report(doc: dict[str, Any]) -> str:
    """The printed table."""
    cfg = doc["config"]
    fleet = Fleet(cfg["devices"], cfg["devices_per_site"])
    lines = [
        "",
        f"decode+apply in memory, one core: {fleet.describe()}, "
        f"{cfg['batch_size']:,}-frame batches"
        + ("  [--quick: not the target configuration]" if cfg["quick"] else ""),
        "rates in frames/s; steady = warm engine, ids known (best / median of repeats); "
        "first pass = fresh engine, interns every id",
        "",
        f"{'contender':10} {'form':8} {'devices':>9} {'first pass':>10} {'steady best':>12} "
        f"{'median':>8} {'steady frames':>14} {'repeats':>7}",
    ]
    for row in doc["results"] + doc["large"]:
        head = f"{row['contender']:10} {row.get('form', 'compact'):8} {row['devices']:>9,}"
        if "skipped" in row:
            lines.append(f"{head} skipped: {row['skipped']}")
            continue
        fp, st = row["first_pass"], row["steady"]
        lines.append(
            f"{head} {rate(fp and fp['best_fps']):>10} {rate(st['best_fps']):>12} "
            f"{rate(st['median_fps']):>8} {st['frames']:>14,} {st['repeats']:>7}"
        )
    lines.append("")
    for form, rs in doc["ratios"].items():
        parts = []
        for key, r in rs.items():
            parts.append(f"{key} " + ("-" if r is None else f"{r['median']:.3g}x"))
        lines.append(f"ratios {form:8} (steady medians): " + ", ".join(parts))
    for row in doc["large"]:
        if "memory" in row:
            mem = row["memory"]
            lines.append(
                f"memory   {row['contender']:9} {mem['bytes_per_device']:.0f} B/device at "
                f"{row['devices']:,} devices "
                f"(RSS {mem['rss_before'] / 2**20:.0f} -> {mem['rss_after'] / 2**20:.0f} MiB)"
            )
    for name in sorted({row["contender"] for row in doc["large"] if "memory" in row}):
        lines.extend(
            textwrap.wrap(
                f"{name} memory: {MEMORY_NOTES[name]}",
                width=100,
                initial_indent="  ",
                subsequent_indent="    ",
            )
        )
    lines.append("")
    for t in doc["targets"]:
        verdict = {True: "PASS", False: "FAIL", None: "SKIP"}[t["pass"]]
        value = t["value"]
        shown = (
            "not measured"
            if value is None
            else (rate(value) if t["threshold"] > 1000 else f"{value:.3g}x")
        )
        lines.append(f"{verdict}  {t['target']:48} ({shown}, steady median)")
    chk = doc["check"]
    lines.append("")
    if chk["agree"]:
        lines.append(
            "check: engines and baseline accepted the same frames (as many as generated valid) "
            "and know the same devices"
        )
    else:
        lines.append("check FAILED: " + "; ".join(chk["problems"]))
    return "\n".join(lines)


def run(cfg: DecodeConfig, log: Log = print) -> dict[str, Any]:
    """Run the benchmark and return its result document (JSON-able): ``config``,
    ``environment``, ``results`` (one row per contender and form, with ``first_pass`` and
    ``steady`` measurements), ``large`` (the 1M-device rows, with ``memory``), ``ratios``,
    ``targets`` (``pass`` True/False, None if not measured) and ``check``."""
    log(f"decode bench: {'quick' if cfg.quick else 'full'} run")
    rows = run_fleet(cfg, log)
    large = run_large(cfg, log)
    rat = ratios(rows, cfg.forms)
    doc: dict[str, Any] = {
        "bench": NAME,
        "schema": 1,
        "config": cfg.as_dict(),
        "environment": environment(),
        "results": rows,
        "large": large,
        "ratios": rat,
        "targets": targets(rows, large, rat),
        "check": check(rows + large),
    }
    return doc


# --- command line --------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m bench decode`` (all optional; defaults are the full run)."""
    parser.add_argument("--devices", type=int, help="fleet size (default 100,000)")
    parser.add_argument("--batch-size", type=int, help="frames per batch (default 1,000)")
    parser.add_argument("--steady-batches", type=int, help="steady-state batches (default 1,000)")
    parser.add_argument("--repeats", type=int, help="timed repeats (default 7)")
    parser.add_argument(
        "--large-devices", type=int, help="devices of the large scenario, 0 to skip (1,000,000)"
    )
    parser.add_argument(
        "--contenders",
        help=f"comma-separated subset of {','.join(CONTENDERS)}",
    )
    parser.add_argument("--forms", help="comma-separated subset of compact,map")
    parser.add_argument("--bad-rate", type=float, help="fraction of frames to be rejected")
    parser.add_argument("--seed", type=int)


def config_from_args(args: argparse.Namespace) -> DecodeConfig:
    cfg = DecodeConfig.quick_config() if args.quick else DecodeConfig()
    changes: dict[str, Any] = {}
    for key in ("devices", "batch_size", "steady_batches", "repeats", "large_devices", "seed"):
        value = getattr(args, key, None)
        if value is not None:
            changes[key] = value
    if getattr(args, "bad_rate", None) is not None:
        changes["bad_rate"] = args.bad_rate
    if getattr(args, "contenders", None):
        names = tuple(s.strip() for s in args.contenders.split(","))
        unknown = set(names) - set(CONTENDERS)
        if unknown:
            raise SystemExit(f"unknown contenders: {', '.join(sorted(unknown))}")
        changes["contenders"] = names
        changes["large_contenders"] = tuple(n for n in cfg.large_contenders if n in names)
    if getattr(args, "forms", None):
        forms = tuple(s.strip() for s in args.forms.split(","))
        if set(forms) - {"compact", "map"}:
            raise SystemExit("forms are compact and map")
        changes["forms"] = forms
    return replace(cfg, **changes)


def main(args: argparse.Namespace) -> dict[str, Any]:
    """Entry point of the ``decode`` subcommand: run, print the table, return the document."""
    doc = run(config_from_args(args))
    print(report(doc))
    return doc
