"""The ``uptally`` command. Subcommands grow with the server, SLA and billing."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Sequence

from core import __version__, query
from core.fleet import demo_batches
from core.rollup import ENGINE
from core.store import Store, UnknownTenant
from core.times import NS_PER_S, S_PER_HOUR
from server.config import Config


class CommandError(Exception):
    """A mistake of the command's user (an unknown tenant, a missing file): reported in one
    line, exit status 1, no traceback."""

    status = 1


class UsageError(CommandError):
    """Options that do not go together or name no choice: exit status 2, like the usage
    errors argparse finds itself."""

    status = 2


def _at_least_one(text: str) -> int:
    """An argparse type: a whole number of devices or hours, 1 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def cmd_demo(args: argparse.Namespace) -> int:
    now_ns = time.time_ns()
    with Store(args.data) as store:
        try:
            tenant = store.tenant("demo")
        except UnknownTenant:
            tenant = store.add_tenant("demo")
        bodies = demo_batches(args.devices, args.hours, now_ns // NS_PER_S, args.seed)
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
        _demo_tokens(store, tenant.id, args.data)
    return 0


def _demo_tokens(store: Store, tenant_id: int, data: str) -> None:
    """Demo credentials, made once and kept in DATA/demo-tokens.json (readable by the owner
    only). A real deployment prints secrets once and keeps only their hashes."""
    path = os.path.join(data, "demo-tokens.json")
    if not os.path.exists(path):
        tokens = {
            "ingest": store.add_token(tenant_id, "ingest")[0],
            "read": store.add_token(tenant_id, "read")[0],
            "staff": store.add_token(None, "staff")[0],
        }
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(tokens, f, indent=2)
    print(f"demo tokens (ingest, read, staff): {path}")


def _summary(store: Store, tenant_id: int, now_ns: int, hours: int) -> None:
    start = now_ns - hours * S_PER_HOUR * NS_PER_S
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
    with _store(args) as store:
        if not store.tenants:
            print("no tenants")
        for tenant in store.tenants.values():
            _summary(store, tenant.id, now_ns, args.hours)
    return 0


def _store(args: argparse.Namespace, *, create: bool = False) -> Store:
    """The store ``uptally serve`` would open: ``--data``, else the ``data`` of ``--config``,
    overridden by ``UPTALLY_DATA``. Only ``create`` makes one where there is none, so that a
    mistyped directory is refused rather than answered from a new, empty store. Its tenants
    get the tiers of the config, as in ``uptally serve``."""
    data = _data_dir(args, create=create)
    try:
        return Store(data, tiers=_config(args.config).tiers)
    except OSError as exc:  # a file, or a directory that cannot be made
        raise CommandError(f"cannot open the store in {data}: {exc.strerror}") from exc


def _data_dir(args: argparse.Namespace, *, create: bool = False) -> str:
    config = _config(args.config)  # checked even beside --data, as serve checks it
    data: str = args.data or config.data
    if not create and not os.path.exists(os.path.join(data, "data.mdb")):
        raise CommandError(f"no store in {data} (uptally tenant add makes one)")
    return data


def _config(path: str | None) -> Config:
    try:
        return Config.load(path)
    except OSError as exc:
        raise CommandError(f"cannot read the config {path}: {exc.strerror}") from exc
    except ValueError as exc:  # TOML syntax, unknown settings, bad values
        raise CommandError(f"config {path or '(environment)'}: {exc}") from exc


def cmd_serve(args: argparse.Namespace) -> int:
    from server.app import serve

    config = _config(args.config)
    if args.data:
        config = dataclasses.replace(config, data=args.data)
    serve(config)
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    """Replace this process with ``streamlit run dashboard/app.py`` on the store serve uses."""
    env = dict(os.environ, UPTALLY_DATA=os.path.abspath(_data_dir(args)))
    if args.config:
        env["UPTALLY_CONFIG"] = os.path.abspath(args.config)
    app = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "dashboard")
    argv = [sys.executable, "-m", "streamlit", "run", os.path.join(app, "app.py")]
    argv += [
        f"--server.address={args.host}",
        f"--server.port={args.port}",
        "--server.headless=true",  # no browser to open; asks nothing on first start
        "--browser.gatherUsageStats=false",  # sends nothing anywhere
        "--server.fileWatcherType=none",
        "--client.toolbarMode=viewer",
    ]
    sys.stdout.flush()
    os.execve(sys.executable, argv, env)
    return 0  # not reached


def cmd_tenant_add(args: argparse.Namespace) -> int:
    config = _config(args.config)
    if args.plan not in config.tiers:  # an invalid choice, like argparse's own
        plans = ", ".join(sorted(config.tiers))
        raise UsageError(
            f"no plan {args.plan!r} (plans: {plans}; --config adds the plans of a config file)"
        )
    with _store(args, create=True) as store:
        try:
            tenant = store.add_tenant(args.name, plan=args.plan, slot_s=args.slot_s)
        except ValueError as exc:  # the name exists or is too long, a bad slot
            raise CommandError(str(exc)) from exc
    print(f"tenant {tenant.name} (id {tenant.id}, plan {tenant.plan})")
    return 0


def cmd_token_add(args: argparse.Namespace) -> int:
    if args.staff and (args.tenant or args.scope):
        raise UsageError("--staff takes neither --tenant nor --scope")
    if not args.staff and not args.tenant:
        raise UsageError("--tenant NAME or --staff is required")
    with _store(args) as store:
        if args.staff:
            secret, token = store.add_token(None, "staff")
        else:
            try:
                tenant = store.tenant(args.tenant)
            except UnknownTenant:
                raise CommandError(f"no tenant {args.tenant!r}") from None
            secret, token = store.add_token(tenant.id, args.scope or "ingest")
    print(secret)
    print(f"token {token.id} ({token.scope}); the secret above is shown only once", file=sys.stderr)
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    with _store(args) as store:
        try:
            token = store.revoke_token(args.id)
        except KeyError:
            raise CommandError(f"no token {args.id}") from None
    print(f"token {token.id} revoked")
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    with _store(args) as store:
        names = {t.id: t.name for t in store.tenants.values()}
        for token in store.tokens():
            tenant = "*" if token.tenant_id is None else names.get(token.tenant_id, "?")
            state = "revoked" if token.revoked_ns else "live"
            print(f"{token.id:>5}  {token.scope:<7} {tenant:<24} upt_{token.prefix}…  {state}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="uptally", description=__doc__)
    parser.add_argument("--version", action="version", version=f"uptally {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="seed a small demo fleet and show its uptime")
    demo.add_argument("--data", default="data", help="store directory (default: data)")
    demo.add_argument("--devices", type=_at_least_one, default=200)
    demo.add_argument("--hours", type=_at_least_one, default=24)
    demo.add_argument("--seed", type=int, default=1)
    demo.set_defaults(func=cmd_demo)
    info = sub.add_parser("info", help="tenants, devices and fleet uptime of a store")
    info.add_argument("--hours", type=_at_least_one, default=24)
    info.set_defaults(func=cmd_info)
    serve = sub.add_parser("serve", help="run the ingest and read API server")
    serve.add_argument("--config", help="TOML file (see docs/operations.md)")
    serve.add_argument("--data", help="store directory (overrides the config)")
    serve.set_defaults(func=cmd_serve)

    dashboard = sub.add_parser("dashboard", help="run the Streamlit dashboard (read-only)")
    dashboard.add_argument("--host", default="127.0.0.1", help="default: 127.0.0.1")
    dashboard.add_argument("--port", type=int, default=8501, help="default: 8501")
    dashboard.set_defaults(func=cmd_dashboard)

    tenant = sub.add_parser("tenant", help="manage tenants").add_subparsers(
        dest="action", required=True
    )
    add = tenant.add_parser("add", help="add a tenant")
    add.add_argument("name")
    add.add_argument("--plan", default="standard")
    add.add_argument("--slot-s", type=int, default=60)
    add.set_defaults(func=cmd_tenant_add)

    token = sub.add_parser("token", help="manage API tokens").add_subparsers(
        dest="action", required=True
    )
    tadd = token.add_parser("add", help="create a token and print its secret once")
    tadd.add_argument("--tenant")
    tadd.add_argument("--scope", choices=["ingest", "read"], help="default: ingest")
    tadd.add_argument("--staff", action="store_true", help="a staff token: reads every tenant")
    tadd.set_defaults(func=cmd_token_add)
    trev = token.add_parser("revoke", help="revoke a token at once")
    trev.add_argument("id", type=int)
    trev.set_defaults(func=cmd_token_revoke)
    token.add_parser("list", help="list tokens (never their secrets)").set_defaults(
        func=cmd_token_list
    )
    for p in (info, dashboard, add, *token.choices.values()):  # the store serve would open
        p.add_argument(
            "--data", help="store directory (default: UPTALLY_DATA, the config's data, else data)"
        )
        p.add_argument("--config", help="TOML file of uptally serve (its data and plans)")
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except CommandError as exc:
        print(f"uptally: {exc}", file=sys.stderr)
        return exc.status
    except BrokenPipeError:
        # the reader went away (`uptally info | head`): stop quietly, as Unix tools do; stdout
        # goes to devnull so that flushing it at exit does not raise again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a tool killed by it


if __name__ == "__main__":
    sys.exit(main())
