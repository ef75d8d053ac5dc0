"""The ``uptally`` command. Subcommands grow with the server, SLA and billing."""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Sequence

import msgpack

from core import __version__, query
from core.rollup import ENGINE
from core.store import Store, UnknownTenant

NS = 1_000_000_000


def _demo_batches(devices: int, hours: int, now_s: int, seed: int) -> list[bytes]:
    """A small fleet reporting every minute, with a few outages and faults, as batches."""
    rng = random.Random(seed)
    ids = [f"site-{i // 20:03d}/dev-{i:05d}" for i in range(devices)]
    outages = {
        dev: (rng.randrange(hours * 60), rng.randrange(5, 90))
        for dev in rng.sample(range(devices), max(1, devices // 10))
    }
    start = now_s - hours * 3600
    bodies: list[bytes] = []
    frames: list[list[object]] = []
    for minute in range(hours * 60):
        t = start + minute * 60
        for dev, device_id in enumerate(ids):
            gap = outages.get(dev)
            if gap and gap[0] <= minute < gap[0] + gap[1]:
                continue
            status = 3 if rng.random() < 0.0005 else 0
            battery = max(0.0, 100 - minute / 60 - dev % 13)
            frames.append([device_id, t + rng.random(), status, round(battery, 1), -60 - dev % 30])
            if len(frames) == 1000:
                bodies.append(
                    msgpack.packb({"gateway": "demo-gw", "seq": len(bodies), "frames": frames})
                )
                frames = []
    if frames:
        bodies.append(msgpack.packb({"gateway": "demo-gw", "seq": len(bodies), "frames": frames}))
    return bodies


def cmd_demo(args: argparse.Namespace) -> int:
    now_ns = time.time_ns()
    with Store(args.data) as store:
        try:
            tenant = store.tenant("demo")
        except UnknownTenant:
            tenant = store.add_tenant("demo")
        bodies = _demo_batches(args.devices, args.hours, now_ns // NS, args.seed)
        started = time.perf_counter()
        accepted = 0
        for body in bodies:
            accepted += store.ingest(tenant.id, body, now_ns).accepted
        store.checkpoint(now_ns)
        took = time.perf_counter() - started
        print(
            f"ingested {accepted:,} frames in {len(bodies)} batches in {took:.1f} s "
            f"({ENGINE} engine) into {args.data}"
        )
        _summary(store, tenant.id, now_ns, args.hours)
    return 0


def _summary(store: Store, tenant_id: int, now_ns: int, hours: int) -> None:
    start = now_ns - hours * 3600 * NS
    table = query.uptime(store, tenant_id, start, now_ns, now_ns)
    fleet = table.fleet_percent
    print(
        f"tenant {store.tenants[tenant_id].name}: {len(table.devices)} devices, "
        f"fleet uptime over {hours} h: {'-' if fleet is None else f'{fleet:.3f} %'}"
    )
    found = query.outages(store, tenant_id, start, now_ns, now_ns)
    ids = store.device_ids(tenant_id)
    for outage in sorted(found, key=lambda o: -o.duration_s)[:5]:
        print(
            f"  outage {ids[outage.device]}: {outage.duration_s / 60:.0f} min"
            f"{' (ongoing)' if outage.ongoing else ''}"
        )
    status = query.current_status(store, tenant_id, now_ns)
    states = {s: status.state.count(s) for s in sorted(set(status.state))}
    print("  now: " + ", ".join(f"{n} {s}" for s, n in states.items()))


def cmd_info(args: argparse.Namespace) -> int:
    now_ns = time.time_ns()
    with Store(args.data) as store:
        if not store.tenants:
            print("no tenants")
        for tenant in store.tenants.values():
            _summary(store, tenant.id, now_ns, args.hours)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="uptally", description=__doc__)
    parser.add_argument("--version", action="version", version=f"uptally {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="seed a small demo fleet and show its uptime")
    demo.add_argument("--data", default="data", help="store directory (default: data)")
    demo.add_argument("--devices", type=int, default=200)
    demo.add_argument("--hours", type=int, default=24)
    demo.add_argument("--seed", type=int, default=1)
    demo.set_defaults(func=cmd_demo)
    info = sub.add_parser("info", help="tenants, devices and fleet uptime of a store")
    info.add_argument("--data", default="data")
    info.add_argument("--hours", type=int, default=24)
    info.set_defaults(func=cmd_info)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
