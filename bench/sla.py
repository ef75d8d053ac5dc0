"""SLA month benchmark: ``month_sla`` for every tenant against the plain uptime query.

A store of many tenants (by default 200 of 500 devices: 100,000 devices) spread over five
IANA zones, each with the day blocks of its local month (2026-11: 30 days, 30 or 31 UTC day
blocks) built like the query bench's (``bench.query.fleet_day``: most device-days fully up,
a few with gaps and a fault, a few silent), its devices spread over sites (one gateway per
site reports each device once, so the sites are the gateways' names, as in production), and
three maintenance windows: a weekly tenant one, a one-off tenant one and a one-off of one
site.

Timed in turns (one round of every contender, then the next round), over all tenants:

- baseline: ``core.query.uptime`` over exactly the slots of the tenant's month;
- ``core.sla.attainment.month_sla`` of that month, once the month is complete
  (target: at most 2x the baseline);
- the same two for the month in progress (``now`` on the 22nd), where ``month_sla`` adds the
  projection's walk over the last 168 hours.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from datetime import time as clock
from typing import Any

import msgpack
import numpy as np

from bench.common import Turn, environment, time_in_turns
from bench.common import profile as common_profile
from bench.query import fleet_day
from core import query, zones
from core.fleet import Fleet
from core.rollup import ENGINE
from core.sla.attainment import MonthSla, month_sla, shown
from core.sla.windows import Window
from core.store import Store, Tenant
from core.times import NS_PER_DAY, NS_PER_S, slots_per_day

DESCRIPTION = "SLA month figures for many tenants against the plain uptime query (ratio)"

YEAR, MONTH = 2026, 11
#: 2026-12-01 06:00 UTC: November has ended in every zone below (New York last, at 05:00)
COMPLETE_NOW_S = 1_796_104_800
#: 2026-11-22 12:00 UTC: November in progress everywhere (the query bench's clock)
IN_PROGRESS_NOW_S = 1_795_348_800
ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Pacific/Auckland")
RATIO_TARGET = 2.0
CONTENDERS = ("baseline", "sla", "baseline_in_progress", "sla_in_progress")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--devices-per-tenant", type=int, default=500)
    parser.add_argument("--sites", type=int, default=5, help="sites (gateways) per tenant")
    parser.add_argument("--repeat", type=int, default=5, help="rounds of every contender")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="profile month_sla over every tenant (done anyway when the ratio misses its target)",
    )


@dataclass
class Setup:
    """What the timed work reads: the tenants and each one's month slots (as month_sla
    aligns them)."""

    store: Store
    tenants: list[Tenant]
    slots: list[tuple[int, int]]  # per tenant: [first, end) of the month's slots, in ns
    build_s: float


def _windows(k: int, tz: str, sites: int) -> list[dict[str, object]]:
    """A tenant's maintenance: weekly, one-off, and one-off for one site."""
    day = 3 + k % 20
    start = zones.local_to_ns(date(YEAR, MONTH, day), clock(22, 0), tz)
    return [
        {"scope": "tenant", "weekdays": "Sun", "at": "02:00", "duration_min": 120, "zone": tz},
        {
            "scope": "tenant",
            "start": zones.iso_local(start, tz),
            "end": zones.iso_local(start + 4 * 3600 * NS_PER_S, tz),
            "reason": "core switch upgrade",
        },
        {
            "scope": "site",
            "site": Fleet(sites, 1).device_id(k % sites).split("/")[0],
            "start": zones.iso_local(start + 2 * NS_PER_DAY, tz),
            "end": zones.iso_local(start + 2 * NS_PER_DAY + 6 * 3600 * NS_PER_S, tz),
            "reason": "site power work",
        },
    ]


def build(
    path: str,
    tenants: int,
    devices: int,
    sites: int,
    before_checkpoint: Callable[[Store, list[Tenant]], None] | None = None,
) -> Setup:
    """The store (see the module's docstring); the blocks are merged, not ingested, but every
    device's first frame goes through ingest from its site's gateway. ``before_checkpoint``
    (the month-close bench's frames) runs once every tenant is built, before the checkpoint
    that folds the live state into the blocks."""
    t0 = time.perf_counter()
    store = Store(path, map_size=1 << 30)
    fleet = Fleet(devices, max(1, -(-devices // sites)))
    ids = fleet.device_ids()
    rng = np.random.default_rng(42)
    out: list[Tenant] = []
    slots: list[tuple[int, int]] = []
    for k in range(tenants):
        tz = ZONES[k % len(ZONES)]
        tenant = store.add_tenant(f"tenant-{k:03d}", slot_s=60, tz=tz)
        slot_ns = tenant.slot_s * NS_PER_S
        start_ns, end_ns = zones.month_bounds(YEAR, MONTH, tz)
        first_day, last_day = start_ns // NS_PER_DAY, (end_ns - 1) // NS_PER_DAY
        ts = first_day * NS_PER_DAY // NS_PER_S + 30  # each device's first frame
        for seq, site in enumerate(range(0, devices, fleet.devices_per_site)):
            frames = [[i, ts, 0, 100, -70] for i in ids[site : site + fleet.devices_per_site]]
            gateway = ids[site].split("/")[0]
            body = msgpack.packb({"gateway": gateway, "seq": seq, "frames": frames})
            result = store.ingest(tenant.id, body, (ts + 1) * NS_PER_S)
            assert result.accepted == len(frames), result
        n_slots = slots_per_day(tenant.slot_s)
        days = [fleet_day(day, devices, rng, n_slots) for day in range(first_day, last_day + 1)]
        store.merge_days(tenant.id, days)
        for spec in _windows(k, tz, sites):
            store.add_window(tenant.id, Window.from_spec(spec))
        out.append(tenant)
        slots.append((-(-start_ns // slot_ns) * slot_ns, -(-end_ns // slot_ns) * slot_ns))
    if before_checkpoint is not None:
        before_checkpoint(store, out)
    store.checkpoint(COMPLETE_NOW_S * NS_PER_S)  # the first frames, and the cut at "now"
    return Setup(store, out, slots, time.perf_counter() - t0)


def _baseline(setup: Setup, now_ns: int) -> list[query.UptimeTable]:
    """The plain query of the slots month_sla counts: the month's, up to the last ended one."""
    return [
        query.uptime(setup.store, tenant.id, first, min(end, _ended(tenant, now_ns)), now_ns)
        for tenant, (first, end) in zip(setup.tenants, setup.slots, strict=True)
    ]


def _ended(tenant: Tenant, now_ns: int) -> int:
    slot_ns = tenant.slot_s * NS_PER_S
    return now_ns // slot_ns * slot_ns


def _sla(setup: Setup, now_ns: int) -> list[MonthSla]:
    return [month_sla(setup.store, tenant, YEAR, MONTH, now_ns) for tenant in setup.tenants]


def _check(base: list[query.UptimeTable], sla: list[MonthSla], tenants: list[Tenant]) -> list[str]:
    """The SLA counts the baseline's slots less the excluded ones: the same period, never
    more up or down, and some slots excluded by the windows."""
    problems = []
    for table, figures, tenant in zip(base, sla, tenants, strict=True):
        base_up, base_down = int(table.up.sum()), int(table.down.sum())
        period = base_up + base_down + int(table.excluded.sum())
        if figures.up + figures.down + figures.excluded != period:
            problems.append(f"{tenant.name}: {figures.label} covers other slots than uptime")
        if figures.up > base_up or figures.down > base_down:
            problems.append(f"{tenant.name}: more counted than uptime saw")
        if figures.excluded <= int(table.excluded.sum()):
            problems.append(f"{tenant.name}: no slot excluded by its windows")
    return problems


def _figures(sla: MonthSla) -> dict[str, Any]:
    keys = ("complete", "up", "down", "excluded", "devices", "attainment", "projection")
    answer = sla.to_json()
    return {key: answer[key] for key in keys} | {"sites": len(answer["sites"])}


def main(args: argparse.Namespace) -> dict[str, Any]:
    tenants = 4 if args.quick else args.tenants
    devices = 50 if args.quick else args.devices_per_tenant
    repeat = 2 if args.quick else args.repeat
    sites = min(args.sites, devices)
    complete_ns, in_progress_ns = COMPLETE_NOW_S * NS_PER_S, IN_PROGRESS_NOW_S * NS_PER_S
    with tempfile.TemporaryDirectory(prefix="uptally-bench-") as path:
        setup = build(path, tenants, devices, sites)
        print(
            f"sla bench ({ENGINE} engine installed): {tenants} tenants x {devices:,} devices"
            f" ({tenants * devices:,}) in {len(ZONES)} zones, month {YEAR}-{MONTH:02d},"
            f" built in {setup.build_s:.1f} s"
        )
        results: dict[str, Any] = {}
        work = {
            "baseline": lambda: _baseline(setup, complete_ns),
            "sla": lambda: _sla(setup, complete_ns),
            "baseline_in_progress": lambda: _baseline(setup, in_progress_ns),
            "sla_in_progress": lambda: _sla(setup, in_progress_ns),
        }

        def turn(name: str) -> Turn:
            def run() -> int:
                results[name] = work[name]()
                return 0

            return Turn(run, repeat, tenants, tenants * devices)

        timed = time_in_turns({name: turn(name) for name in CONTENDERS})
        problems = _check(results["baseline"], results["sla"], setup.tenants)
        problems += _check(
            results["baseline_in_progress"], results["sla_in_progress"], setup.tenants
        )
        seconds = {name: [ns / NS_PER_S for ns in timed[name].ns] for name in CONTENDERS}
        median = {name: statistics.median(s) for name, s in seconds.items()}
        ratio = median["sla"] / median["baseline"]
        ratio_in_progress = median["sla_in_progress"] / median["baseline_in_progress"]
        verdict = None if args.quick else ratio <= RATIO_TARGET
        profile = None
        if args.profile or verdict is False:
            profile = common_profile(lambda: _sla(setup, complete_ns))
        example = results["sla"][0], results["sla_in_progress"][0]
        setup.store.close()

    labels = {
        "baseline": "baseline: uptime over the month's slots",
        "sla": "month_sla, month complete",
        "baseline_in_progress": "baseline, month in progress",
        "sla_in_progress": "month_sla, month in progress (+ 168 h walk)",
    }
    print(f"  medians of {repeat} rounds, all {tenants} tenants, contenders in turns:")
    for name in CONTENDERS:
        print(
            f"  {labels[name]:<46} median {median[name]:8.3f} s  best {min(seconds[name]):8.3f} s"
            f"  per tenant {1000 * median[name] / tenants:6.2f} ms"
        )
    target = "" if verdict is None else f"  target <= {RATIO_TARGET:g}: "
    print(f"  ratio sla / baseline, month complete: {ratio:.2f}{target}", end="")
    print("" if verdict is None else ("PASS" if verdict else "FAIL"))
    print(f"  ratio sla / baseline, month in progress: {ratio_in_progress:.2f}")
    complete, running = example
    print(
        f"  {complete.tenant} ({complete.zone}): attainment {shown(complete.attainment)} %,"
        f" month to date on the 22nd {shown(running.attainment)} %,"
        f" projection {shown(running.projection)} %"
    )
    if profile:
        print("  month_sla, own time by function (cProfile, one pass over every tenant):")
        for row in profile:
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
        "bench": "sla",
        "config": {
            "tenants": tenants,
            "devices_per_tenant": devices,
            "devices": tenants * devices,
            "sites_per_tenant": sites,
            "zones": list(ZONES),
            "windows_per_tenant": len(_windows(0, "UTC", sites)),
            "month": f"{YEAR}-{MONTH:02d}",
            "complete_now": zones.iso_local(complete_ns, "UTC"),
            "in_progress_now": zones.iso_local(in_progress_ns, "UTC"),
            "repeats": repeat,
            "quick": args.quick,
        },
        "environment": environment(),
        "engine": ENGINE,
        "build_s": setup.build_s,
        "results": {name: row(name) for name in CONTENDERS},
        "ratio": ratio,
        "ratio_in_progress": ratio_in_progress,
        "target": {"ratio_max": RATIO_TARGET, "pass": verdict},
        "example": {
            "tenant": complete.tenant,
            "zone": complete.zone,
            "complete": _figures(complete),
            "in_progress": _figures(running),
        },
        "profile": profile,
        "check": {"agree": not problems, "problems": problems},
    }
