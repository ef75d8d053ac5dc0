"""End-to-end benchmark: gateway clients posting batches to a live server, durable commits.

What runs, per engine (the Cython extension, the Python twin with ``UPTALLY_NO_EXTENSIONS=1``,
and the HTTP floor), each against its own fresh server, all started before the first phase:

* The real server, ``python -m uptally serve``, as a child process on 127.0.0.1
  (:class:`server.testing.ProcessServer`, the harness the tests use too) with a fresh
  data directory on disk (fsync'd group commits as in production: nothing is weakened), the
  default writer and checkpoint settings (overridable with ``UPTALLY_*`` variables), and one
  tenant whose plan has no effective rate limit (``rate_fps = 1e12`` in a config file).
* The HTTP floor, :mod:`bench.floor_server`: aiohttp on uvloop reading each body and
  answering, no decoding and no store. What it carries bounds what any server can reach on
  this machine with this generator; the report gives each engine's share of it.
* The load generator, :mod:`bench.load`, in its own process: ``senders`` concurrent gateways
  (``bench-gw-00``...) posting pre-encoded batches in a closed loop over keep-alive
  connections; every body has a new ``seq`` and its own frames (devices of a 100,000-device
  fleet ``site-042/dev-00017`` in a shuffled cycle, timestamps rising over the last hour of
  the server's clock), so dedupe never short-circuits and every frame is accepted.
* First an untimed warm-up phase per server sends every device once (the server interns all
  ids), then one timed phase per batch size (100, 1,000, 10,000 frames), every engine's phase
  of one size before the next size, so that engines compared are measured minutes apart at
  most (this machine's speed drifts).

Measured per timed phase, over the window from the first request to the last answer:
acknowledged frames/s (frames the answers say were accepted, i.e. durably committed),
batches/s (200 answers), acknowledgement latency (from just before the request is sent to the
whole answer read, per batch: p50, p99, max), non-200 answers and transport errors (must be 0),
the generator's CPU time (``getrusage`` of its process over the window) and the server
process's CPU time (``/proc/PID/stat``, and per thread: the event-loop thread vs. the others,
i.e. decode pool and writer), each as a share of one core. A phase stops sending new batches
after ``duration_s`` or when its pre-encoded bodies run out, whichever comes first, then waits
for the batches in flight.

After the server stops (SIGTERM, exit code 0, which checkpoints everything), the store is
opened and the frames counted in the stored day blocks (sum of the per-device-day ``frames``
counters) must equal the frames acknowledged as accepted, warm-up included.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from bench.common import environment, rate
from bench.load import LoadProcess, LoadSpec
from core.fleet import Fleet
from server.testing import ProcessServer, cpu_seconds, free_port, provision

NAME = "e2e"
DESCRIPTION = "end-to-end ingest: concurrent gateways posting to a live server, durable commits"

ENGINES = ("floor", "cython", "python")
ENGINE_CODES = {"cython": "c", "python": "py", "floor": "floor"}

# --- the server ----------------------------------------------------------------------------

#: The one tenant of a benchmarked server, on the plan of :data:`CONFIG_TOML`.
TENANT = "bench"
CONFIG_TOML = """\
# written by bench/e2e.py: a plan without an effective rate limit
[plans.standard]
rate_fps = 1e12
"""


def start_server(
    data: Path, workdir: Path, engine: str, env: dict[str, str] | None = None
) -> ProcessServer:
    """``python -m uptally serve`` in a child process on 127.0.0.1, with its own config
    file and log file in ``workdir``; ``engine`` "python" sets ``UPTALLY_NO_EXTENSIONS=1``,
    "cython" clears it (and the server must then report the C engine). ``engine`` "floor"
    runs :mod:`bench.floor_server` instead: the same HTTP stack doing no work."""
    config = workdir / "uptally.toml"
    config.write_text(CONFIG_TOML)
    port = free_port()
    server = ProcessServer(
        data,
        config,
        port,
        log=workdir / f"server-{engine}.log",
        argv=["-m", "bench.floor_server", str(port)] if engine == "floor" else None,
        ready_timeout_s=60.0,
        **{"UPTALLY_NO_EXTENSIONS": "1" if engine == "python" else "", **(env or {})},
    )
    want = ENGINE_CODES[engine]
    if server.health.get("engine") != want:
        server.stop()
        raise RuntimeError(f"server runs engine {server.health.get('engine')!r}, not {want!r}")
    return server


def stored_frames(data: Path, tenant_id: int) -> tuple[int, int]:
    """(frames in the tenant's stored day blocks, records left in the log) of a closed
    store: the sum of the per-device-day ``frames`` counters over every day."""
    from core.store import Store

    with Store(data, readonly=True) as store:
        total = 0
        for day in store.stored_days(tenant_id):
            for _, _, stats in store.day_blocks(tenant_id, day, day):
                total += int(stats["frames"].sum())
        return total, store.log_records


# --- the benchmark -------------------------------------------------------------------------


@dataclass
class E2EConfig:
    """What to run. The defaults are the full benchmark; :meth:`quick_config` a small one.

    A timed phase sends at most ``max_frames`` (per engine) frames' worth of pre-encoded
    batches, and stops sending after ``duration_s`` (per engine).
    """

    devices: int = 100_000
    devices_per_site: int = 200
    senders: int = 16
    batch_sizes: tuple[int, ...] = (100, 1_000, 10_000)
    engines: tuple[str, ...] = ENGINES
    duration_s: dict[str, float] = field(
        default_factory=lambda: {"floor": 4.0, "cython": 8.0, "python": 4.0}
    )
    max_frames: dict[str, int] = field(
        default_factory=lambda: {"floor": 30_000_000, "cython": 30_000_000, "python": 600_000}
    )
    warmup_batch: int = 1_000
    #: extra ``UPTALLY_*`` settings for the servers (default: the server's own defaults)
    server_env: dict[str, str] = field(default_factory=dict)
    seed: int = 0
    quick: bool = False

    @classmethod
    def quick_config(cls) -> E2EConfig:
        """A run of well under 30 s: 20,000 devices, short phases."""
        return cls(
            devices=20_000,
            senders=8,
            duration_s={"floor": 1.0, "cython": 1.5, "python": 1.0},
            max_frames={"floor": 3_000_000, "cython": 3_000_000, "python": 60_000},
            quick=True,
        )

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["batch_sizes"] = list(self.batch_sizes)
        d["engines"] = list(self.engines)
        return d


def _extension_built() -> tuple[bool, str]:
    if os.environ.get("UPTALLY_NO_EXTENSIONS"):
        return False, "UPTALLY_NO_EXTENSIONS is set"
    try:
        import core._rollup  # noqa: F401
    except ImportError:
        return False, "core._rollup not built"
    return True, ""


#: Server metrics read around each phase (unlabelled series of ``/metrics``).
SERVER_SERIES = (
    "uptally_commit_seconds_sum",
    "uptally_commit_seconds_count",
    "uptally_group_batches_sum",
    "uptally_ack_seconds_sum",
    "uptally_ack_seconds_count",
)


def server_metrics(url: str) -> dict[str, float]:
    """The :data:`SERVER_SERIES` values of the server's ``/metrics`` now."""
    with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
        text = r.read().decode()
    out = dict.fromkeys(SERVER_SERIES, 0.0)
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in out:
            out[name] = float(value)
    return out


def run_phase(server: ProcessServer, spec: LoadSpec) -> dict[str, Any]:
    """One load phase against a running server, with the server's CPU and metrics read
    right before and right after the generator's timed part.

    Adds ``server_cpu_s`` / ``server_cpu_share`` (total, event-loop thread, other threads)
    and ``server``: group commits in the window, the writer's share of the window spent in
    ``Store.commit``, the mean batches per group and the mean server-side ack time (from
    the request's arrival in the handler to its answer)."""
    with LoadProcess(spec) as load:
        load.wait_ready()
        m0 = server_metrics(server.url)
        cpu0 = cpu_seconds(server.pid)
        wall0 = time.perf_counter()
        out = load.go()
        wall = time.perf_counter() - wall0
        cpu1 = cpu_seconds(server.pid)
        m1 = server_metrics(server.url)
    window = out["window_s"] or wall
    out["server_cpu_s"] = {k: cpu1[k] - cpu0[k] for k in cpu0}
    out["server_cpu_share"] = {k: v / window for k, v in out["server_cpu_s"].items()}
    d = {k: m1[k] - m0[k] for k in m0}
    commits = d["uptally_commit_seconds_count"]
    acks = d["uptally_ack_seconds_count"]
    out["server"] = {
        "commits": int(commits),
        "writer_commit_share": d["uptally_commit_seconds_sum"] / window,
        "mean_commit_ms": 1e3 * d["uptally_commit_seconds_sum"] / commits if commits else None,
        "mean_group_batches": d["uptally_group_batches_sum"] / commits if commits else None,
        "mean_server_ack_ms": 1e3 * d["uptally_ack_seconds_sum"] / acks if acks else None,
    }
    return out


class EngineRun:
    """One engine's server through the run: :meth:`start` (fresh data directory, server,
    warm-up), one :meth:`phase` per batch size, then :meth:`finish` (stop, and check the
    stored frames against the acknowledged ones). ``row`` collects the results."""

    def __init__(self, cfg: E2EConfig, engine: str, log: Any) -> None:
        self.cfg = cfg
        self.engine = engine
        self.log = log
        self.floor = engine == "floor"
        self.tmp = Path(tempfile.mkdtemp(prefix=f"uptally-e2e-{engine}-"))
        self.data = self.tmp / "data"
        self.row: dict[str, Any] = {"engine": engine, "phases": []}
        self.acked_total = 0
        self.server: ProcessServer | None = None
        self.tenant_id = 0
        self.base: LoadSpec | None = None

    def start(self) -> None:
        cfg, engine = self.cfg, self.engine
        if self.floor:
            token = "floor"
        else:
            setup = provision(self.data, {TENANT: "standard"})
            self.tenant_id, token = setup.tenant_ids[TENANT], setup.ingest[TENANT]
        self.server = start_server(self.data, self.tmp, engine, cfg.server_env)
        self.base = LoadSpec(
            url=self.server.url,
            token=token,
            senders=cfg.senders,
            devices=cfg.devices,
            devices_per_site=cfg.devices_per_site,
            seed=cfg.seed,
        )
        warm = replace(
            self.base,
            batch_size=cfg.warmup_batch,
            batches=math.ceil(cfg.devices / cfg.warmup_batch),
            duration_s=600.0,
            seq_base=0,
            window_s=(3_590, 3_560),
        )
        t0 = time.perf_counter()
        w = run_phase(self.server, warm)
        self.acked_total += w["frames_acked"]
        self.row["warmup"] = w
        self.log(
            f"  {engine:7} warm-up: {w['frames_acked']:,} frames (every device once) in "
            f"{time.perf_counter() - t0:.1f} s, failures {_failures(w)}"
        )

    def phase(self, i: int, size: int) -> None:
        assert self.server is not None and self.base is not None
        cfg, engine = self.cfg, self.engine
        spec = replace(
            self.base,
            batch_size=size,
            batches=max(cfg.senders, cfg.max_frames[engine] // size),
            duration_s=cfg.duration_s[engine],
            seq_base=i * 1_000_000_000,
            frame_base=i * 7_919,
        )
        r = run_phase(self.server, spec)
        r["spec"] = spec.as_dict()
        self.acked_total += r["frames_acked"]
        self.row["phases"].append(r)
        lat = r["latency_ms"]
        self.log(
            f"  {engine:7} {size:>6,}-frame batches: {rate(r['frames_per_s']):>6} "
            f"frames/s {r['batches_per_s']:>8,.0f} batches/s  p50 "
            f"{lat.get('p50', math.nan):7.2f} ms  p99 {lat.get('p99', math.nan):7.2f} "
            f"ms  failures {_failures(r)}  gen cpu {r['gen_cpu_share']:.2f}  server cpu "
            f"{r['server_cpu_share']['total']:.2f} ({r['window_s']:.1f} s, "
            f"ended by {r['ended_by']})"
        )

    def finish(self) -> dict[str, Any]:
        """Stop the server (if it started), check the store, remove the data directory."""
        try:
            if self.server is None:
                return self.row
            code = self.server.stop()
            self.row["server_exit"] = code
            if code != 0:
                self.row["server_log"] = self.server.output()[-2_000:]
            acked = self.acked_total
            stored, left = (acked, 0) if self.floor else stored_frames(self.data, self.tenant_id)
            self.row["check"] = {
                "acked_frames": acked,
                "stored_frames": None if self.floor else stored,
                "log_records_left": left,
                "server_exit": code,
                "pass": stored == acked and code == 0,
            }
            if not self.floor:
                self.log(
                    f"  {self.engine:7} stored frames {stored:,} vs acknowledged {acked:,}, "
                    f"exit {code}: {'PASS' if self.row['check']['pass'] else 'FAIL'}"
                )
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)
        return self.row


def _num(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _failures(r: dict[str, Any]) -> int:
    return int(sum(r["non_200"].values()) + sum(r["errors"].values()))


def _phase(rows: list[dict[str, Any]], engine: str, size: int) -> dict[str, Any] | None:
    for row in rows:
        if row["engine"] == engine and "phases" in row:
            for p in row["phases"]:
                if p["batch_size"] == size:
                    return p
    return None


TARGET_SIZE = 1_000


def targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's targets at 1,000-frame batches (``pass`` None when not measured)."""
    c = _phase(rows, "cython", TARGET_SIZE)
    p = _phase(rows, "python", TARGET_SIZE)
    fps = c["frames_per_s"] if c else None
    p99 = c["latency_ms"].get("p99") if c else None
    ratio = fps / p["frames_per_s"] if fps and p and p["frames_per_s"] else None
    out = [
        ("cython e2e >= 20M frames/s (1,000-frame batches)", fps, 20e6, ">="),
        ("cython p99 ack < 20 ms (1,000-frame batches)", p99, 20.0, "<"),
        ("cython >= 20x Python twin (1,000-frame batches)", ratio, 20.0, ">="),
    ]
    return [
        {
            "target": name,
            "value": value,
            "threshold": thr,
            "pass": None if value is None else (value >= thr if op == ">=" else value < thr),
        }
        for name, value, thr, op in out
    ]


def floor_summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per batch size: what the no-work HTTP floor carried, and the real servers' share of
    it (empty without a floor run)."""
    out = []
    for row in rows:
        if row["engine"] != "floor" or "phases" not in row:
            continue
        for f in row["phases"]:
            size = f["batch_size"]
            entry: dict[str, Any] = {
                "batch_size": size,
                "floor_frames_per_s": f["frames_per_s"],
                "floor_batches_per_s": f["batches_per_s"],
                "floor_p99_ms": f["latency_ms"].get("p99"),
            }
            for engine in ("cython", "python"):
                p = _phase(rows, engine, size)
                entry[f"{engine}_share"] = (
                    p["frames_per_s"] / f["frames_per_s"] if p and f["frames_per_s"] else None
                )
            out.append(entry)
    return out


def check(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Every phase had only 200 answers, nothing was rejected or deduplicated, and every
    engine's store holds exactly the acknowledged frames."""
    problems = []
    for row in rows:
        if "skipped" in row:
            continue
        for p in [row["warmup"], *row["phases"]]:
            if _failures(p):
                problems.append(
                    f"{row['engine']} {p['batch_size']}: non-200 {p['non_200']} "
                    f"errors {p['errors']}"
                )
            if p["rejected"] or p["duplicates"]:
                problems.append(
                    f"{row['engine']} {p['batch_size']}: {p['rejected']} rejected frames, "
                    f"{p['duplicates']} duplicate batches"
                )
        if not row["check"]["pass"]:
            problems.append(f"{row['engine']}: stored frames check failed {row['check']}")
    return {"agree": not problems, "problems": problems}


def run(cfg: E2EConfig, log: Any = print) -> dict[str, Any]:
    """Run the benchmark; returns the result document (JSON-able): ``config``,
    ``environment``, ``results`` (one row per engine: ``warmup``, ``phases``, ``check``),
    ``targets`` and ``check``."""
    log(
        f"e2e bench: {'quick' if cfg.quick else 'full'} run, {cfg.senders} senders, "
        f"{Fleet(cfg.devices, cfg.devices_per_site).describe()}"
    )
    rows: list[dict[str, Any]] = []
    runs: list[EngineRun] = []
    try:
        for engine in cfg.engines:
            if engine == "cython":
                built, why = _extension_built()
                if not built:
                    rows.append({"engine": engine, "skipped": why})
                    log(f"  {engine:7} skipped: {why}")
                    continue
            runs.append(EngineRun(cfg, engine, log))
            runs[-1].start()
        # every engine's phase of one batch size runs before the next size: this machine's
        # speed drifts over minutes, and engines compared a minute apart compare the drift
        for i, size in enumerate(cfg.batch_sizes, start=1):
            for er in runs:
                er.phase(i, size)
    finally:
        rows += [er.finish() for er in runs]
    return {
        "bench": NAME,
        "schema": 1,
        "config": cfg.as_dict(),
        "environment": environment(),
        "results": rows,
        "targets": targets(rows),
        "floor": floor_summary(rows),
        "check": check(rows),
    }


def report(doc: dict[str, Any]) -> str:
    """The printed table."""
    cfg = doc["config"]
    lines = [
        "",
        f"end to end, live server, durable commits: {cfg['senders']} concurrent gateways, "
        f"{Fleet(cfg['devices'], cfg['devices_per_site']).describe()}"
        + ("  [--quick: not the target configuration]" if cfg["quick"] else ""),
        "rates over first request .. last answer; latency = request start .. whole answer; "
        "cpu = share of one core",
        "",
        f"{'engine':7} {'batch':>6} {'frames/s':>9} {'batches/s':>10} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'max ms':>8} {'non-200':>7} {'gen cpu':>7} {'srv cpu':>7} "
        f"{'(loop':>6} {'other)':>6} {'frames':>12} {'secs':>5}",
    ]
    for row in doc["results"]:
        if "skipped" in row:
            lines.append(f"{row['engine']:7} skipped: {row['skipped']}")
            continue
        for p in row["phases"]:
            lat, cpu = p["latency_ms"], p["server_cpu_share"]
            lines.append(
                f"{row['engine']:7} {p['batch_size']:>6,} {rate(p['frames_per_s']):>9} "
                f"{p['batches_per_s']:>10,.0f} {lat.get('p50', math.nan):>8.2f} "
                f"{lat.get('p99', math.nan):>8.2f} {lat.get('max', math.nan):>8.1f} "
                f"{_failures(p):>7} {p['gen_cpu_share']:>7.2f} {cpu['total']:>7.2f} "
                f"{cpu['main']:>6.2f} {cpu['others']:>6.2f} {p['frames_acked']:>12,} "
                f"{p['window_s']:>5.1f}"
            )
    lines += [
        "",
        "inside the server (from /metrics): group commits, batches per group, time per commit,",
        "share of the window the writer thread spent committing, mean ack time in the handler",
        f"{'engine':7} {'batch':>6} {'commits/s':>10} {'group':>6} {'commit ms':>9} "
        f"{'writer busy':>11} {'handler ms':>10}",
    ]
    for row in doc["results"]:
        for p in row.get("phases", []):
            srv = p["server"]
            lines.append(
                f"{row['engine']:7} {p['batch_size']:>6,} {srv['commits'] / p['window_s']:>10,.0f} "
                f"{_num(srv['mean_group_batches'], 1):>6} {_num(srv['mean_commit_ms'], 2):>9} "
                f"{srv['writer_commit_share']:>11.2f} {_num(srv['mean_server_ack_ms'], 2):>10}"
            )
    lines.append("")
    for row in doc["results"]:
        if "check" in row and row["engine"] != "floor":
            c = row["check"]
            lines.append(
                f"{'PASS' if c['pass'] else 'FAIL'}  {row['engine']} store: {c['stored_frames']:,} "
                f"frames stored, {c['acked_frames']:,} acknowledged (warm-up included), server "
                f"exit {c['server_exit']}"
            )
    for t in doc["targets"]:
        verdict = {True: "PASS", False: "FAIL", None: "SKIP"}[t["pass"]]
        v = t["value"]
        shown = (
            "not measured"
            if v is None
            else rate(v)
            if t["threshold"] > 1000
            else f"{v:.3g} ms"
            if "ms" in t["target"]
            else f"{v:.3g}x"
        )
        lines.append(f"{verdict}  {t['target']:50} ({shown})")
    if doc.get("floor"):
        lines += [
            "",
            "HTTP floor: bench.floor_server (aiohttp + uvloop reading each body and answering,",
            "no decoding, no store) under the same generator, and each engine's share of it",
            f"{'batch':>6} {'floor frames/s':>14} {'floor req/s':>11} {'floor p99 ms':>12} "
            f"{'cython share':>12} {'python share':>12}",
        ]
        for f in doc["floor"]:
            lines.append(
                f"{f['batch_size']:>6,} {rate(f['floor_frames_per_s']):>14} "
                f"{f['floor_batches_per_s']:>11,.0f} {_num(f['floor_p99_ms'], 2):>12} "
                f"{_num(f['cython_share'], 2):>12} {_num(f['python_share'], 3):>12}"
            )
            if f["batch_size"] == TARGET_SIZE and f["floor_frames_per_s"] < 20e6:
                lines.append(
                    f"NOTE  at {TARGET_SIZE:,}-frame batches the HTTP stack alone carries "
                    f"{rate(f['floor_frames_per_s'])} frames/s here: the 20M target is out of "
                    "reach of any server on it"
                )
    chk = doc["check"]
    lines.append("")
    lines.append(
        "check: every answer 200, nothing rejected or deduplicated, stores hold exactly the "
        "acknowledged frames"
        if chk["agree"]
        else "check FAILED: " + "; ".join(chk["problems"])
    )
    return "\n".join(lines)


# --- command line --------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m bench e2e`` (all optional; defaults are the full run)."""
    parser.add_argument("--devices", type=int, help="fleet size (default 100,000)")
    parser.add_argument("--senders", type=int, help="concurrent gateways (default 16)")
    parser.add_argument("--batch-sizes", help="comma-separated (default 100,1000,10000)")
    parser.add_argument("--engines", help="comma-separated subset of floor,cython,python")
    parser.add_argument("--duration", type=float, help="seconds per Cython phase (default 8)")
    parser.add_argument(
        "--python-duration", type=float, help="seconds per Python-twin phase (default 4)"
    )
    parser.add_argument("--seed", type=int)


def config_from_args(args: argparse.Namespace) -> E2EConfig:
    cfg = E2EConfig.quick_config() if args.quick else E2EConfig()
    changes: dict[str, Any] = {}
    for key in ("devices", "senders", "seed"):
        value = getattr(args, key, None)
        if value is not None:
            changes[key] = value
    if getattr(args, "batch_sizes", None):
        changes["batch_sizes"] = tuple(int(s) for s in args.batch_sizes.split(","))
    if getattr(args, "engines", None):
        engines = tuple(s.strip() for s in args.engines.split(","))
        if set(engines) - set(ENGINES):
            raise SystemExit("engines are floor, cython and python")
        changes["engines"] = engines
    durations = dict(cfg.duration_s)
    if getattr(args, "duration", None) is not None:
        durations["cython"] = args.duration
    if getattr(args, "python_duration", None) is not None:
        durations["python"] = args.python_duration
    changes["duration_s"] = durations
    return replace(cfg, **changes)


def main(args: argparse.Namespace) -> dict[str, Any]:
    """Entry point of the ``e2e`` subcommand: run, print the table, return the document."""
    doc = run(config_from_args(args))
    print(report(doc))
    return doc
