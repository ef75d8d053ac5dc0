"""Evaluator benchmark: what one watching pass costs, and whether it delays acknowledgements.

Two parts, one results document (``bench/results/watch.json``):

**Pass cost** (in this process). A store of many tenants (by default 200 of 500 devices:
100,000 devices), each with five sites whose gateways send its devices' frames, and a day and
some minutes of history: the previous UTC day as day blocks built like the query bench's
(:func:`bench.query.fleet_day`: 95 % of device-days fully up, 4 % with gaps of up to an hour
and a fault, 1 % silent all day), then the day's first minutes ingested minute by minute
(one batch per site gateway) up to "now". So that a pass has work: 1 % of the devices stop
sending at midnight (quiet, with an ongoing outage), one site in ten tenants goes silent at
midnight (a gateway incident with its devices'), the last frame of 1 % reports a fault and
of 2 % a battery below the alert threshold. The store is checkpointed, then timed in turns
(one round of every contender, then the next round), over all tenants:

- baseline: :func:`core.query.current_status` of every tenant (the plain status query);
- ``first``: the first pass, as after a start with nothing stored (empty
  :class:`core.watch.WatchMemory`; it looks back 24 hours, opens every incident and raises
  every alert, and checks the SLA projection);
- ``steady``: a pass ``STEADY_AFTER_S`` later with the memory and the incidents the first
  pass left (its plans applied as the server's writer applies them): the pass the server
  makes every ``evaluate_interval_s``, with nothing new to say (target: at most
  :data:`STEADY_TARGET` x the baseline);
- ``steady_sla``: the same with the SLA projection due (once every 5 minutes).

Each pass is what the server's watcher does per tenant (:meth:`server.watch.Watcher._evaluate`:
the tenant's relevant incidents read, then :func:`core.watch.evaluate`), without the writer's
transaction.

**Acknowledgements with and without the evaluator** (a live server). The real server
(``python -m uptally serve`` via :class:`server.testing.ProcessServer`, fsync'd commits) with
``tenants`` tenants; a load generator process (:mod:`bench.load`) whose senders post
as site gateways of every tenant, round robin, each tenant's devices its own share of a
100,000-device fleet, at a fixed offered rate (open loop: each batch has its send time;
default half of a capacity measured first, closed loop, in the same run). The same store
is served in alternating phases, A (evaluator off: ``watch_start_grace_s`` longer than the
phase) and B (``watch_start_grace_s = 0``: running as shipped, a pass every 10 s, its
process up and past its first pass before the phase begins), A/B/A/B..., each a fresh server
process on the same data directory, so the two see the same store and the same machine
minutes apart. Compared: the acknowledgement latency p99 of all B phases'
batches over all A phases' (target: at most :data:`ACK_P99_TARGET`). That the evaluator
ran in B is checked in the store afterwards (watch memory stored, passes' alerts).
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import msgpack
import numpy as np

from bench.common import Turn, environment, time_in_turns
from bench.common import profile as profile_of
from bench.e2e import run_phase, start_server
from bench.load import LoadSpec
from bench.query import fleet_day
from core import ingest, query, watch
from core.fleet import Fleet
from core.rollup import ENGINE, RollupC
from core.store import Store, Tenant
from core.times import NS_PER_S, S_PER_DAY, slots_per_day
from server.testing import ProcessServer, provision

DESCRIPTION = "evaluator: one watching pass against the status query; ack p99 with it running"

#: 2026-11-22 00:00 UTC, the day whose first minutes are ingested; the day before is stored
DAY_S = 1_795_305_600
#: minutes of the day ingested before "now"
MINUTES = 10
#: "now" of the first pass: 15 s after the last frames (at :30 of the last minute), so that
#: the devices still sending are online at the steady pass too (their heartbeat is 60 s)
NOW_S = DAY_S + (MINUTES - 1) * 60 + 45
#: the steady pass comes this much later (the server's default evaluate_interval_s)
STEADY_AFTER_S = 10
STEADY_TARGET = 5.0
ACK_P99_TARGET = 1.10
CONTENDERS = ("baseline", "first", "steady", "steady_sla")
QUIET_RATE = 0.01
FAULT_RATE = 0.01
LOW_BATTERY_RATE = 0.02


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--devices-per-tenant", type=int, default=500)
    parser.add_argument("--sites", type=int, default=5, help="sites (gateways) per tenant")
    parser.add_argument("--repeat", type=int, default=5, help="rounds of every contender")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="profile the steady pass over every tenant (done anyway when it misses its target)",
    )
    parser.add_argument(
        "--skip-ack", action="store_true", help="the pass cost only, no live server"
    )
    parser.add_argument("--ack-tenants", type=int, help="tenants of the live server (default 20)")
    parser.add_argument(
        "--ack-devices", type=int, help="devices of the live server's fleet (default 100,000)"
    )
    parser.add_argument("--ack-pairs", type=int, help="A/B pairs of phases (default 3)")
    parser.add_argument("--ack-phase-s", type=float, help="seconds per phase (default 15)")
    parser.add_argument(
        "--ack-rate", type=float, help="offered batches/s (default: half the measured capacity)"
    )


# --- pass cost -----------------------------------------------------------------------------


@dataclass
class Setup:
    store: Store
    tenants: list[Tenant]
    build_s: float
    #: what the fleet was given, summed over the tenants
    shape: dict[str, int]


def _frames(
    ids: list[str], ts: int, rng: np.random.Generator, faulty: np.ndarray, low: np.ndarray
) -> list[list[object]]:
    status = np.where(faulty, 1, 0).tolist()
    battery = np.where(low, 10, rng.integers(40, 101, len(ids))).tolist()
    return [[i, ts, s, b, -70] for i, s, b in zip(ids, status, battery, strict=True)]


def build(path: str, tenants: int, devices: int, sites: int) -> Setup:
    """The store of the module's docstring, checkpointed at "now"."""
    t0 = time.perf_counter()
    store = Store(path, map_size=1 << 30)
    per_site = max(1, -(-devices // sites))
    fleet = Fleet(devices, per_site)
    ids = fleet.device_ids()
    rng = np.random.default_rng(42)
    day = DAY_S // S_PER_DAY
    out: list[Tenant] = []
    shape = dict.fromkeys(("quiet", "silent_sites", "faulty", "low_battery"), 0)
    # per tenant: which devices stop at midnight, which site goes silent, the last frames
    plans: list[tuple[Tenant, np.ndarray, int, np.ndarray, np.ndarray]] = []
    for k in range(tenants):
        tenant = store.add_tenant(f"tenant-{k:03d}", slot_s=60)
        ts = (day - 1) * S_PER_DAY + 30  # each device's first frame, the day before
        group = []
        for seq, site in enumerate(range(0, devices, per_site)):
            frames = [[i, ts, 0, 90, -70] for i in ids[site : site + per_site]]
            body = msgpack.packb({"gateway": ids[site].split("/")[0], "seq": seq, "frames": frames})
            group.append((tenant.id, ingest.decode(store.rollups[tenant.id], body, ts * NS_PER_S)))
        store.commit(group, (ts + 1) * NS_PER_S)
        n_slots = slots_per_day(tenant.slot_s)
        store.merge_days(tenant.id, [fleet_day(day - 1, devices, rng, n_slots)])
        quiet = rng.random(devices) < QUIET_RATE
        silent_site = sites - 1 if k % 10 == 0 and sites > 1 else -1
        faulty = rng.random(devices) < FAULT_RATE
        low = rng.random(devices) < LOW_BATTERY_RATE
        plans.append((tenant, quiet, silent_site, faulty, low))
        shape["quiet"] += int(quiet.sum())
        shape["silent_sites"] += silent_site >= 0
        shape["faulty"] += int(faulty.sum())
        shape["low_battery"] += int(low.sum())
        out.append(tenant)
    # the day's first minutes: one batch per site gateway a minute, every tenant in one commit
    for minute in range(MINUTES):
        ts = DAY_S + minute * 60 + 30
        group = []
        for tenant, quiet, silent_site, faulty, low in plans:
            last = minute == MINUTES - 1
            for s, site in enumerate(range(0, devices, per_site)):
                if s == silent_site:
                    continue
                members = [d for d in range(site, min(site + per_site, devices)) if not quiet[d]]
                if not members:
                    continue
                sel = np.array(members)
                frames = _frames(
                    [ids[d] for d in members],
                    ts,
                    rng,
                    faulty[sel] & last,
                    low[sel] & last,
                )
                body = msgpack.packb(
                    {"gateway": ids[site].split("/")[0], "seq": 1000 + minute, "frames": frames}
                )
                batch = ingest.decode(store.rollups[tenant.id], body, (ts + 1) * NS_PER_S)
                group.append((tenant.id, batch))
        results = store.commit(group, (ts + 1) * NS_PER_S)
        assert all(r.rejected == 0 for r in results), results[0]
    store.checkpoint(NOW_S * NS_PER_S)
    return Setup(store, out, time.perf_counter() - t0, shape)


def one_pass(store: Store, tenant: Tenant, now_ns: int, memory: watch.WatchMemory) -> watch.Plan:
    """A pass over one tenant as the server's watcher makes it (reading its incidents)."""
    everything = store.incidents(tenant.id)
    incidents = watch.relevant(everything, watch.look_back(tenant, now_ns, memory, everything))
    return watch.evaluate(
        store,
        tenant,
        now_ns,
        memory,
        incidents,
        gateway_seen=store.gateway_seen.get(tenant.id, {}),
        gateway_resumed=store.gateway_resumed.get(tenant.id, {}),
        started_ns=0,
    )


def _passes(setup: Setup, now_ns: int, memories: dict[int, watch.WatchMemory]) -> list[watch.Plan]:
    return [
        one_pass(setup.store, t, now_ns, memories.get(t.id) or watch.WatchMemory())
        for t in setup.tenants
    ]


def _status(setup: Setup, now_ns: int) -> list[query.DeviceStatus]:
    return [query.current_status(setup.store, t.id, now_ns) for t in setup.tenants]


def _apply(setup: Setup, plans: list[watch.Plan]) -> None:
    rows = [(p.tenant_id, p.ops, p.memory.to_record(), p.events) for p in plans]
    setup.store.apply_watch(rows, plans[0].now_ns)


def _summary(plans: list[watch.Plan]) -> dict[str, int]:
    ops = [op for p in plans for op in p.ops]
    events = [e for p in plans for e in p.events]
    return {
        "opened": sum(op[0] == "open" for op in ops),
        "opened_gateway": sum(op[0] == "open" and op[1].kind == "gateway" for op in ops),
        "closed": sum(op[0] == "close" for op in ops),
        "attached": sum(op[0] == "attach" for op in ops),
        "events": len(events),
        "alerts_firing": sum(e[0] == "alert.firing" for e in events),
        "alerts_announced": sum(len(p.memory.alerts) for p in plans),
    }


def pass_cost(
    tenants: int, devices: int, sites: int, repeat: int, profile: bool, quick: bool
) -> dict[str, Any]:
    now_ns = NOW_S * NS_PER_S
    steady_ns = now_ns + STEADY_AFTER_S * NS_PER_S
    with tempfile.TemporaryDirectory(prefix="uptally-bench-") as path:
        setup = build(path, tenants, devices, sites)
        print(
            f"watch bench ({ENGINE} engine installed): {tenants} tenants x {devices:,} devices"
            f" ({tenants * devices:,}), {sites} sites each, a day and {MINUTES} minutes of"
            f" history, built in {setup.build_s:.1f} s"
        )
        first = _passes(setup, now_ns, {})
        first_summary = _summary(first)
        _apply(setup, first)
        warm = {p.tenant_id: p.memory for p in first}
        due = {
            tid: watch.WatchMemory(**{**vars(m), "sla_checked_ns": 0}) for tid, m in warm.items()
        }
        results: dict[str, Any] = {}
        work = {
            "baseline": lambda: _status(setup, steady_ns),
            "first": lambda: _passes(setup, now_ns, {}),
            "steady": lambda: _passes(setup, steady_ns, warm),
            "steady_sla": lambda: _passes(setup, steady_ns, due),
        }

        def turn(name: str) -> Turn:
            def run() -> int:
                results[name] = work[name]()
                return 0

            return Turn(run, repeat, tenants, tenants * devices)

        timed = time_in_turns({name: turn(name) for name in CONTENDERS})
        steady_summary = _summary(results["steady"])
        seconds = {name: [ns / NS_PER_S for ns in timed[name].ns] for name in CONTENDERS}
        median = {name: statistics.median(s) for name, s in seconds.items()}
        ratios = {name: median[name] / median["baseline"] for name in CONTENDERS[1:]}
        verdict = None if quick else ratios["steady"] <= STEADY_TARGET
        rows = None
        if profile or verdict is False:
            rows = profile_of(lambda: _passes(setup, steady_ns, warm))
        problems = []
        if first_summary["opened"] == 0 or first_summary["alerts_firing"] == 0:
            problems.append("the first pass found nothing to open or raise")
        if steady_summary["opened"] or steady_summary["closed"] or steady_summary["events"]:
            problems.append(f"the steady pass changed something: {steady_summary}")
        setup.store.close()

    labels = {
        "baseline": "baseline: current_status, every tenant",
        "first": "first pass (empty memory, 24 h look-back, SLA)",
        "steady": f"steady pass ({STEADY_AFTER_S} s later, warm memory)",
        "steady_sla": "steady pass with the SLA projection due",
    }
    print(f"  medians of {repeat} rounds, all {tenants} tenants, contenders in turns:")
    for name in CONTENDERS:
        ratio = "" if name == "baseline" else f"  x{ratios[name]:6.2f}"
        print(
            f"  {labels[name]:<50} median {median[name]:8.3f} s  best {min(seconds[name]):8.3f} s"
            f"  per tenant {1000 * median[name] / tenants:7.2f} ms{ratio}"
        )
    target = "" if verdict is None else f"  target <= {STEADY_TARGET:g}: "
    print(f"  ratio steady pass / status query: {ratios['steady']:.2f}{target}", end="")
    print("" if verdict is None else ("PASS" if verdict else "FAIL"))
    print(f"  first pass: {first_summary}")
    if rows:
        print("  steady pass, own time by function (cProfile, one pass over every tenant):")
        for row in rows:
            print(f"    {row['own_s']:8.3f} s {row['calls']:>9,}  {row['function']}")
    if problems:
        print("  PROBLEMS:\n    " + "\n    ".join(problems))

    def row(name: str) -> dict[str, Any]:
        return {
            "median_s": median[name],
            "best_s": min(seconds[name]),
            "seconds": seconds[name],
            "per_tenant_ms": 1000 * median[name] / tenants,
        }

    return {
        "config": {
            "tenants": tenants,
            "devices_per_tenant": devices,
            "devices": tenants * devices,
            "sites_per_tenant": sites,
            "history": f"1 day + {MINUTES} min",
            "now_s": NOW_S,
            "steady_after_s": STEADY_AFTER_S,
            "repeats": repeat,
        },
        "fleet": setup.shape,
        "build_s": setup.build_s,
        "results": {name: row(name) for name in CONTENDERS},
        "ratios": ratios,
        "target": {"steady_ratio_max": STEADY_TARGET, "pass": verdict},
        "first_pass": first_summary,
        "steady_pass": steady_summary,
        "profile": rows,
        "problems": problems,
    }


# --- acknowledgements with and without the evaluator ---------------------------------------


@dataclass
class AckConfig:
    """The live-server part. ``rate_bps`` None: half the capacity measured first."""

    tenants: int = 20
    devices: int = 100_000  # over all tenants
    devices_per_site: int = 200
    senders: int = 16
    batch_size: int = 1_000
    pairs: int = 3  # A/B pairs of phases
    phase_s: float = 30.0  # three passes of the evaluator in each phase it runs in
    settle_s: float = 5.0  # after a start, before the phase (the first pass is done by then)
    capacity_s: float = 4.0
    rate_bps: float | None = None
    load_share: float = 0.5  # of the capacity, when rate_bps is None
    #: the evaluator's interval in both modes: the shipped default (a smoke run shortens it)
    interval_s: float = 10.0

    @classmethod
    def quick_config(cls) -> AckConfig:
        return cls(
            tenants=3,
            devices=3_000,
            senders=2,
            batch_size=100,
            pairs=1,
            phase_s=2.0,
            settle_s=1.5,
            capacity_s=1.0,
            interval_s=0.5,
        )


#: the evaluator off (its start grace outlasts any phase) and on, as often as it goes
#: off: the evaluator waits past the run; on: it runs from the start (both at the config's
#: interval, the shipped default)
MODES = {
    "off": {"UPTALLY_WATCH_START_GRACE_S": "86400"},
    "on": {"UPTALLY_WATCH_START_GRACE_S": "0"},
}


def _await_passes(url: str, count: int, timeout_s: float = 120.0) -> float:
    """Seconds until the server's evaluator has made ``count`` passes (its metrics)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        with urllib.request.urlopen(url + "/metrics", timeout=5) as answer:
            for line in answer.read().decode().splitlines():
                if (
                    line.startswith("uptally_watch_passes_total ")
                    and float(line.split()[1]) >= count
                ):
                    return time.monotonic() - started
        time.sleep(0.2)
    raise RuntimeError(f"the evaluator made fewer than {count} passes in {timeout_s} s")


def _stored_memories(data: Path, tenant_ids: list[int]) -> int:
    """How many tenants have an evaluator's memory stored (a closed store)."""
    with Store(data, readonly=True) as store:
        return sum(store.watch_memory(t) is not None for t in tenant_ids)


def ack_p99(cfg: AckConfig, log: Any = print) -> dict[str, Any]:
    """The A/B comparison of the module's docstring."""
    engine = "cython" if RollupC is not None else "python"
    tmp = Path(tempfile.mkdtemp(prefix="uptally-watch-"))
    data = tmp / "data"
    try:
        setup = provision(data, {f"tenant-{k:02d}": "standard" for k in range(cfg.tenants)})
        tenant_ids = list(setup.tenant_ids.values())
        base = LoadSpec(
            url="",
            token="",
            tokens=tuple(setup.ingest.values()),
            senders=cfg.senders,
            devices=cfg.devices,
            devices_per_site=cfg.devices_per_site,
            batch_size=cfg.batch_size,
        )
        per_tenant = max(1, cfg.devices // cfg.tenants)
        phase_no = 0
        problems: list[str] = []

        def phase(server: ProcessServer, **changes: Any) -> dict[str, Any]:
            nonlocal phase_no
            phase_no += 1
            spec = replace(base, url=server.url, seq_base=phase_no * 1_000_000_000, **changes)
            r = run_phase(server, spec)
            if r["non_200"] or r["errors"] or r["rejected"] or r["duplicates"]:
                problems.append(
                    f"phase {phase_no}: non-200 {r['non_200']} errors {r['errors']} "
                    f"rejected {r['rejected']} duplicates {r['duplicates']}"
                )
            return r

        # warm-up (every device of every tenant once) and the capacity, evaluator off
        every = {"UPTALLY_EVALUATE_INTERVAL_S": str(cfg.interval_s)}
        server = start_server(data, tmp, engine, {**MODES["off"], **every})
        try:
            warm = phase(
                server,
                batches=cfg.tenants * -(-per_tenant // cfg.batch_size),
                duration_s=600.0,
                window_s=(5, 0),
            )
            capacity = phase(
                server,
                batches=max(cfg.senders, int(cfg.capacity_s * 3_000)),
                duration_s=cfg.capacity_s,
                window_s=(0, -int(cfg.capacity_s) - 1),
            )
        finally:
            server.stop()
        rate = cfg.rate_bps or cfg.load_share * capacity["batches_per_s"]
        log(
            f"  live server ({engine} engine): {cfg.tenants} tenants x {per_tenant:,} devices,"
            f" {cfg.senders} senders of {cfg.batch_size:,}-frame batches; warm-up"
            f" {warm['frames_acked']:,} frames; capacity {capacity['batches_per_s']:,.0f}"
            f" batches/s (closed loop, p99 {capacity['latency_ms'].get('p99', math.nan):.1f} ms);"
            f" offered {rate:,.0f} batches/s"
        )
        phases: list[dict[str, Any]] = []
        samples: dict[str, list[float]] = {"off": [], "on": []}
        planned: dict[str, list[float]] = {"off": [], "on": []}
        for pair in range(cfg.pairs):
            for mode in MODES:
                server = start_server(data, tmp, engine, {**MODES[mode], **every})
                try:
                    if mode == "on":  # running: its process up and past its first passes
                        waited = _await_passes(server.url, 1)
                        log(f"  pair {pair}: the evaluator made its first passes in {waited:.1f} s")
                    time.sleep(cfg.settle_s)
                    r = phase(
                        server,
                        batches=max(cfg.senders, int(rate * cfg.phase_s)),
                        duration_s=cfg.phase_s,
                        rate_bps=rate,
                        samples=True,
                        window_s=(0, -int(cfg.phase_s) - 1),
                    )
                finally:
                    code = server.stop()
                if code != 0:
                    problems.append(f"server exit {code} after phase {mode} {pair}")
                samples[mode] += r.pop("latency_samples_ms")
                planned[mode] += r.pop("latency_planned_samples_ms")
                memories = _stored_memories(data, tenant_ids)
                lat, plan = r["latency_ms"], r["latency_planned_ms"]
                row = {
                    "pair": pair,
                    "evaluator": mode,
                    "batches_per_s": r["batches_per_s"],
                    "frames_per_s": r["frames_per_s"],
                    "acked": r["acked"],
                    "latency_ms": lat,
                    "latency_planned_ms": plan,
                    "server_cpu_share": r["server_cpu_share"],
                    "mean_server_ack_ms": r["server"]["mean_server_ack_ms"],
                    "commits": r["server"]["commits"],
                    "tenants_with_watch_memory": memories,
                }
                phases.append(row)
                log(
                    f"  pair {pair} evaluator {mode:>3}: {r['batches_per_s']:7,.0f} batches/s"
                    f"  ack p50 {lat['p50']:6.2f} p99 {lat['p99']:6.2f} max {lat['max']:7.1f} ms"
                    f"  (from planned send: p99 {plan['p99']:6.2f})  server cpu"
                    f" {r['server_cpu_share']['total']:.2f}  tenants with stored memory"
                    f" {memories}/{cfg.tenants}"
                )
        if phases[0]["tenants_with_watch_memory"]:
            problems.append("the evaluator ran in a phase that had it off")
        if not phases[1]["tenants_with_watch_memory"]:
            problems.append("no evaluator pass stored anything in a phase that had it on")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def pooled(values: list[float]) -> dict[str, float]:
        a = np.array(values)
        return {
            "batches": len(values),
            "p50": float(np.percentile(a, 50)),
            "p99": float(np.percentile(a, 99)),
            "max": float(a.max()),
        }

    ack = {mode: pooled(samples[mode]) for mode in MODES}
    ack_planned = {mode: pooled(planned[mode]) for mode in MODES}
    ratio = ack["on"]["p99"] / ack["off"]["p99"]
    ratio_planned = ack_planned["on"]["p99"] / ack_planned["off"]["p99"]
    per_pair = [
        phases[2 * i + 1]["latency_ms"]["p99"] / phases[2 * i]["latency_ms"]["p99"]
        for i in range(cfg.pairs)
    ]
    return {
        "config": {**asdict(cfg), "engine": engine, "offered_batches_per_s": rate, "modes": MODES},
        "capacity": {
            "batches_per_s": capacity["batches_per_s"],
            "frames_per_s": capacity["frames_per_s"],
            "latency_ms": capacity["latency_ms"],
        },
        "phases": phases,
        "pooled_ms": ack,
        "pooled_planned_ms": ack_planned,
        "ratio_p99": ratio,
        "ratio_p99_planned": ratio_planned,
        "ratio_p99_per_pair": per_pair,
        "problems": problems,
    }


# --- the whole suite -----------------------------------------------------------------------


def ack_config(args: argparse.Namespace) -> AckConfig:
    cfg = AckConfig.quick_config() if args.quick else AckConfig()
    changes = {
        key: value
        for key, value in (
            ("tenants", args.ack_tenants),
            ("devices", args.ack_devices),
            ("pairs", args.ack_pairs),
            ("phase_s", args.ack_phase_s),
            ("rate_bps", args.ack_rate),
        )
        if value is not None
    }
    return replace(cfg, **changes)


def main(args: argparse.Namespace) -> dict[str, Any]:
    quick = args.quick
    tenants = 4 if quick else args.tenants
    devices = 50 if quick else args.devices_per_tenant
    repeat = 2 if quick else args.repeat
    sites = min(args.sites, devices)
    cost = pass_cost(tenants, devices, sites, repeat, args.profile, quick)
    problems = list(cost["problems"])
    ack = None
    if not args.skip_ack:
        ack = ack_p99(ack_config(args))
        verdict = None if quick else ack["ratio_p99"] <= ACK_P99_TARGET
        ack["target"] = {"ratio_p99_max": ACK_P99_TARGET, "pass": verdict}
        problems += ack["problems"]
        on, off = ack["pooled_ms"]["on"], ack["pooled_ms"]["off"]
        target = "" if verdict is None else f"  target <= {ACK_P99_TARGET:g}: "
        print(
            f"  ack p99, all phases pooled: evaluator on {on['p99']:.2f} ms, off"
            f" {off['p99']:.2f} ms; ratio {ack['ratio_p99']:.3f}{target}"
            + ("" if verdict is None else ("PASS" if verdict else "FAIL"))
        )
        print(
            f"  from the planned send: ratio {ack['ratio_p99_planned']:.3f}; per pair"
            f" {', '.join(f'{x:.3f}' for x in ack['ratio_p99_per_pair'])}"
        )
    if problems:
        print("  PROBLEMS:\n    " + "\n    ".join(problems))
    return {
        "bench": "watch",
        "quick": quick,
        "environment": environment(),
        "engine": ENGINE,
        "pass_cost": cost,
        "ack": ack,
        "check": {"agree": not problems, "problems": problems},
    }
