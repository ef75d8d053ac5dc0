"""Month close benchmark: ``Store.close_month`` against the SLA month figures of the same data.

The SLA bench's store (``bench.sla.build``: by default 200 tenants of 500 devices, 100,000
devices in five IANA zones, the day blocks of local November 2026, three maintenance windows
a tenant), with two things a close needs on top:

- frames through the store's ingest, so that ``frame_quarters`` holds every quarter hour of
  each tenant's month (one batch a tenant and UTC day, a frame in each of its quarters from
  a device of the first site, committed in one group a day); the checkpoint after them folds
  them into the day blocks beside the merged history;
- a subscription history for every tenant: standard, basic and premium tiers, monthly and
  annual terms, a few tier or term changes in mid-November, one cancellation on the 20th and
  a few 14-day trials begun in late October that run into November.

The checkpoint's cut is 2026-12-01 06:00 UTC, past the month's end in every zone.

Timed in turns over all tenants (one round of each, then the next round), medians:

- baseline: ``core.sla.attainment.month_sla`` of November for every tenant billed in it, at
  the tier its month ends on (the figures the close puts on each invoice);
- ``Store.close_month`` of November (target: at most 1.5x the baseline). A close writes (a
  second one does nothing), so each round closes its own copy of the store, copied with the
  store closed before the rounds and opened untimed just before its close.

Checked: every close issued the invoices expected (a tenant with a billed or trial day in
November) with gapless numbers, the same invoices in every round, a second close issues
nothing, each invoice's up/down/excluded/attainment are the baseline's, and every billed
non-trial tenant's frames were counted.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import msgpack

from bench import sla
from bench.common import Turn, environment, profile, time_in_turns
from core import ingest, zones
from core.batch import QUARTER_NS
from core.billing.invoice import invoice_number
from core.billing.subscriptions import Cancel, Change, Event, Start, spans
from core.fleet import Fleet
from core.rollup import ENGINE
from core.sla.attainment import MonthSla, month_sla, shown
from core.store import Store, Tenant
from core.tiers import DEFAULT_TIERS
from core.times import NS_PER_DAY, NS_PER_S

DESCRIPTION = "month close of many tenants against their SLA month figures (ratio)"

YEAR, MONTH = sla.YEAR, sla.MONTH
NOW_NS = sla.COMPLETE_NOW_S * NS_PER_S  # the close's clock and the checkpoint's cut
#: when the subscription events were recorded (2026-11-01 00:00 UTC; only kept, not used)
RECORDED_NS = 1_793_491_200 * NS_PER_S
PREFIX = "INV"
RATIO_TARGET = 1.5
CONTENDERS = ("baseline", "close")
TIERS = ("standard", "basic", "premium")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--devices-per-tenant", type=int, default=500)
    parser.add_argument("--sites", type=int, default=5, help="sites (gateways) per tenant")
    parser.add_argument("--repeat", type=int, default=5, help="rounds of every contender")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="profile one close (done anyway when the ratio misses its target)",
    )


def subscription(k: int) -> list[Event]:
    """Tenant ``k``'s events: a tier by ``k % 3``, annual every fourth, and by ``k % 40`` a
    mid-month tier change (2, 22), a mid-month term change (12) or a trial begun on Oct 25
    (3); tenant 4 cancels on Nov 20 (its last billed day the 19th)."""
    tier, role = TIERS[k % len(TIERS)], k % 40
    term = "annual" if k % 4 == 1 else "monthly"
    if role == 3:
        return [Start(date(YEAR, MONTH - 1, 25), tier, "monthly", trial_days=14)]
    events: list[Event] = [Start(date(YEAR, 1 + k % (MONTH - 1), 1 + k % 28), tier, term)]
    if k == 4:
        events.append(Cancel(date(YEAR, MONTH, 20)))
    elif role in (2, 22):
        events.append(Change(date(YEAR, MONTH, 10 + k % 10), tier=TIERS[(k + 1) % len(TIERS)]))
    elif role == 12:
        events.append(Change(date(YEAR, MONTH, 16), term="annual"))
    return events


def ingest_quarters(store: Store, tenants: list[Tenant], devices: int, sites: int) -> int:
    """A frame in every quarter hour of each tenant's local month, through decode and commit:
    one batch a tenant and UTC day (from the first site's gateway), a commit a day, each at
    the end of its day. Returns the frames accepted."""
    fleet = Fleet(devices, max(1, -(-devices // sites)))
    ids = fleet.device_ids()[: fleet.devices_per_site]
    gateway = ids[0].split("/")[0]
    months = {t.id: zones.month_bounds(YEAR, MONTH, t.tz) for t in tenants}
    first_day = min(start for start, _ in months.values()) // NS_PER_DAY
    last_day = (max(end for _, end in months.values()) - 1) // NS_PER_DAY
    accepted = 0
    for day in range(first_day, last_day + 1):
        now_ns = (day + 1) * NS_PER_DAY + 60 * NS_PER_S
        group = []
        for tenant in tenants:
            start, end = months[tenant.id]
            lo, hi = max(start, day * NS_PER_DAY), min(end, (day + 1) * NS_PER_DAY)
            quarters = range(lo // QUARTER_NS, hi // QUARTER_NS)
            if not quarters:
                continue
            frames = [
                [ids[q % len(ids)], q * QUARTER_NS // NS_PER_S + 7, 0, 100, -70] for q in quarters
            ]
            body = msgpack.packb({"gateway": gateway, "seq": 1_000 + day, "frames": frames})
            group.append((tenant.id, ingest.decode(store.rollups[tenant.id], body, now_ns)))
        for result in store.commit(group, now_ns):
            accepted += result.accepted
            assert not result.rejected, result
    return accepted


def build(path: str, tenants: int, devices: int, sites: int) -> tuple[sla.Setup, int]:
    """The SLA bench's store with the quarter frames and every tenant's subscription."""
    frames = [0]

    def extra(store: Store, built: list[Tenant]) -> None:
        frames[0] = ingest_quarters(store, built, devices, sites)
        for k, tenant in enumerate(built):
            for event in subscription(k):
                store.add_subscription_event(tenant.id, event, "bench", RECORDED_NS)

    setup = sla.build(path, tenants, devices, sites, before_checkpoint=extra)
    return setup, frames[0]


def last_tiers(store: Store, tenants: list[Tenant]) -> dict[int, str]:
    """Each billed tenant's tier on the month's last billed day (unbilled tenants absent)."""
    out = {}
    for tenant in tenants:
        billed = spans(store.subscription(tenant.id), YEAR, MONTH)
        if billed:
            out[tenant.id] = billed[-1].tier
    return out


def _baseline(store: Store, tenants: list[Tenant], tiers: dict[int, str]) -> list[MonthSla]:
    return [
        month_sla(store, t, YEAR, MONTH, NOW_NS, tier=DEFAULT_TIERS[tiers[t.id]])
        for t in tenants
        if t.id in tiers
    ]


def _copy(src: Path, dest: Path) -> None:
    """A fresh copy of the store's LMDB directory (the store must be closed)."""
    shutil.copytree(src, dest)


def _check(
    rounds: list[list[dict[str, Any]]],
    second: list[dict[str, Any]],
    baseline: list[MonthSla],
    tenants: list[Tenant],
    tiers: dict[int, str],
) -> list[str]:
    problems = []
    expected = [invoice_number(PREFIX, 2026, seq) for seq in range(1, len(tiers) + 1)]
    for r, issued in enumerate(rounds):
        if [inv["number"] for inv in issued] != expected:
            problems.append(f"round {r}: {len(issued)} invoices, not {len(expected)} gapless")
        if issued != rounds[0]:
            problems.append(f"round {r}: other invoices than round 0")
    if second:
        problems.append(f"a second close issued {len(second)} invoices")
    billed = [t for t in tenants if t.id in tiers]
    for invoice, figures, tenant in zip(rounds[0], baseline, billed, strict=False):
        made = invoice["computed_from"]
        if invoice["tenant"] != tenant.id:
            problems.append(f"{invoice['number']}: tenant {invoice['tenant']}, not {tenant.id}")
            continue
        exact = None if figures.attainment is None else str(figures.attainment)
        if (made["up"], made["down"], made["excluded"], made["attainment_exact"]) != (
            figures.up,
            figures.down,
            figures.excluded,
            exact,
        ):
            problems.append(f"{tenant.name}: invoice figures differ from month_sla's")
        trial_only = all(s["trial"] for s in invoice["spans"])
        if not trial_only and made["frames"] <= 0:
            problems.append(f"{tenant.name}: no frames counted")
    return problems


def _profile(path: Path) -> list[dict[str, Any]]:
    """cProfile of one close on a fresh copy: the functions with the most own time."""
    with Store(path, map_size=1 << 30) as store:
        return profile(lambda: store.close_month(YEAR, MONTH, NOW_NS, PREFIX))


def main(args: argparse.Namespace) -> dict[str, Any]:
    tenants = 5 if args.quick else args.tenants
    devices = 50 if args.quick else args.devices_per_tenant
    repeat = 2 if args.quick else args.repeat
    sites = min(args.sites, devices)
    with tempfile.TemporaryDirectory(prefix="uptally-bench-") as tmp:
        root = Path(tmp)
        original = root / "store"
        setup, frames = build(str(original), tenants, devices, sites)
        tiers = last_tiers(setup.store, setup.tenants)
        setup.store.close()
        t0 = time.perf_counter()
        copies = [root / f"copy-{r}" for r in range(repeat)]
        for copy in copies:
            _copy(original, copy)
        copy_s = time.perf_counter() - t0
        size = sum(f.stat().st_size for f in original.iterdir())
        print(
            f"close bench ({ENGINE} engine installed): {tenants} tenants x {devices:,} devices"
            f" ({tenants * devices:,}) in {len(sla.ZONES)} zones, month {YEAR}-{MONTH:02d},"
            f" {frames:,} quarter frames ingested, {len(tiers)} tenants billed;"
            f" built in {setup.build_s:.1f} s, {size / 2**20:,.0f} MiB copied {repeat}x"
            f" in {copy_s:.1f} s"
        )
        store = Store(original, map_size=1 << 30)
        billed = sorted((t for t in store.tenants.values() if t.id in tiers), key=lambda t: t.id)
        results: dict[str, Any] = {}
        closes: list[list[dict[str, Any]]] = []
        second: list[dict[str, Any]] = []
        pending = list(copies)
        opened: list[Store] = []

        def baseline() -> int:
            results["baseline"] = _baseline(store, billed, tiers)
            return len(results["baseline"])

        def open_copy() -> None:
            opened.append(Store(pending.pop(0), map_size=1 << 30))

        def close() -> int:
            issued = opened[-1].close_month(YEAR, MONTH, NOW_NS, PREFIX)
            closes.append(issued)
            return len(issued)

        units = len(billed), len(billed) * devices
        timed = time_in_turns(
            {
                "baseline": Turn(baseline, repeat, *units),
                "close": Turn(close, repeat, *units, setup=open_copy),
            }
        )
        for copy_store in opened:  # each closed already: a second close issues nothing
            second.extend(copy_store.close_month(YEAR, MONTH, NOW_NS, PREFIX))
            copy_store.close()
        problems = _check(closes, second, results["baseline"], billed, tiers)
        seconds = {name: [ns / NS_PER_S for ns in timed[name].ns] for name in CONTENDERS}
        median = {name: statistics.median(s) for name, s in seconds.items()}
        ratio = median["close"] / median["baseline"]
        verdict = None if args.quick else ratio <= RATIO_TARGET
        store.close()
        hot = None
        if args.profile or verdict is False:
            _copy(original, root / "profile")
            hot = _profile(root / "profile")
        example = closes[0][0] if closes and closes[0] else None

    labels = {
        "baseline": "baseline: month_sla of every billed tenant",
        "close": "close_month",
    }
    print(f"  medians of {repeat} rounds, all {len(billed)} billed tenants, in turns:")
    for name in CONTENDERS:
        print(
            f"  {labels[name]:<46} median {median[name]:8.3f} s  best {min(seconds[name]):8.3f} s"
            f"  per tenant {1000 * median[name] / max(len(billed), 1):6.2f} ms"
        )
    target = "" if verdict is None else f"  target <= {RATIO_TARGET:g}: "
    print(f"  ratio close / baseline: {ratio:.2f}{target}", end="")
    print("" if verdict is None else ("PASS" if verdict else "FAIL"))
    if example is not None:
        print(
            f"  {example['number']} {example['tenant_name']} ({example['zone']}):"
            f" {example['billable_devices']} devices, {example['frames']:,} frames,"
            f" attainment {shown(results['baseline'][0].attainment)} %,"
            f" total {example['total']} {example['currency']}"
        )
    if hot:
        print("  close_month, own time by function (cProfile, one close):")
        for row in hot:
            print(f"    {row['own_s']:8.3f} s {row['calls']:>9,}  {row['function']}")
    if problems:
        print("  PROBLEMS:\n    " + "\n    ".join(problems))

    def row(name: str) -> dict[str, Any]:
        return {
            "median_s": median[name],
            "best_s": min(seconds[name]),
            "seconds": seconds[name],
            "per_tenant_ms": 1000 * median[name] / max(len(billed), 1),
        }

    return {
        "bench": "close",
        "config": {
            "tenants": tenants,
            "devices_per_tenant": devices,
            "devices": tenants * devices,
            "sites_per_tenant": sites,
            "zones": list(sla.ZONES),
            "month": f"{YEAR}-{MONTH:02d}",
            "now": zones.iso_local(NOW_NS, "UTC"),
            "quarter_frames": frames,
            "billed_tenants": len(billed),
            "store_mib": round(size / 2**20, 1),
            "repeats": repeat,
            "quick": args.quick,
        },
        "environment": environment(),
        "engine": ENGINE,
        "build_s": setup.build_s,
        "copy_s": copy_s,
        "results": {name: row(name) for name in CONTENDERS},
        "ratio": ratio,
        "target": {"ratio_max": RATIO_TARGET, "pass": verdict},
        "example": None
        if example is None
        else {key: example[key] for key in ("number", "tenant_name", "zone", "total")},
        "profile": hot,
        "check": {"agree": not problems, "problems": problems},
    }
