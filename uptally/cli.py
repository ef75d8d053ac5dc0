"""The ``uptally`` command. Subcommands grow with the server, SLA and billing."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
import tomllib
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

from core import __version__, query, support, users, zones
from core.billing import report
from core.billing.export import invoice_json, invoices_csv
from core.billing.subscriptions import Cancel, Change, Start
from core.fleet import demo_batches
from core.rollup import ENGINE
from core.sla import attainment
from core.sla.history import SETTABLE_STATES, state_at
from core.sla.windows import SCOPES, Window
from core.store import Store, Tenant, UnknownDevice, UnknownTenant
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
    env["UPTALLY_API"] = args.api or _api_url(_config(args.config))
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


def _api_url(config: Config) -> str:
    """Where the dashboard reaches the server for staff answers: the config's host and port,
    over loopback when the server listens on every address."""
    host = "127.0.0.1" if config.host in ("", "0.0.0.0") else config.host
    host = "[::1]" if host == "::" else f"[{host}]" if ":" in host else host
    return f"http://{host}:{config.port}"


def _tenant_settings(args: argparse.Namespace) -> dict[str, object]:
    """The tenant settings given on the command line, by ``Tenant`` field name."""
    given = {
        "plan": args.plan,
        "tz": args.tz,
        "currency": args.currency,
        "tax_rate": args.tax_rate,
        "display_name": args.display_name,
    }
    return {k: v for k, v in given.items() if v is not None}


def cmd_tenant_add(args: argparse.Namespace) -> int:
    config = _config(args.config)
    plan = args.plan or "standard"
    if plan not in config.tiers:  # an invalid choice, like argparse's own
        plans = ", ".join(sorted(config.tiers))
        raise UsageError(
            f"no plan {plan!r} (plans: {plans}; --config adds the plans of a config file)"
        )
    settings = _tenant_settings(args)
    settings.pop("plan", None)
    with _store(args, create=True) as store:
        try:
            tenant = store.add_tenant(args.name, plan=plan, slot_s=args.slot_s, **settings)
        except ValueError as exc:  # the name exists or is too long, a bad slot or setting
            raise CommandError(str(exc)) from exc
        _print_tenant(tenant, config)
    return 0


def _print_tenant(tenant: Tenant, config: Config) -> None:
    flag = (
        " (target above the upstream guarantee!)"
        if config.catalog.above_upstream(tenant.plan)
        else ""
    )
    print(
        f"tenant {tenant.name} (id {tenant.id}, plan {tenant.plan}{flag}, zone {tenant.tz}, "
        f"{tenant.currency}, tax {tenant.tax_rate} %, "
        f"shown as {tenant.display_name or tenant.name})"
    )


def _tenant_of(store: Store, name: str) -> Tenant:
    try:
        return store.tenant(name)
    except UnknownTenant:
        raise CommandError(f"no tenant {name!r}") from None


def cmd_tenant_set(args: argparse.Namespace) -> int:
    config = _config(args.config)
    changes = _tenant_settings(args)
    if not changes:
        raise UsageError("nothing to set (--plan, --tz, --tax-rate, --display-name)")
    with _store(args) as store:
        tenant = _tenant_of(store, args.name)
        try:
            tenant = store.set_tenant(tenant.id, **changes)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        _print_tenant(tenant, config)
    return 0


def cmd_tenant_list(args: argparse.Namespace) -> int:
    config = _config(args.config)
    with _store(args) as store:
        for tenant in store.tenants.values():
            _print_tenant(tenant, config)
    return 0


def cmd_tier_list(args: argparse.Namespace) -> int:
    catalog = _config(args.config).catalog
    upstream = "none" if catalog.upstream is None else f"{catalog.upstream} %"
    print(f"upstream guarantee: {upstream}")
    for name in sorted(catalog.tiers):
        tier = catalog.tiers[name]
        bands = ", ".join(f"<{below}: {credit} %" for below, credit in tier.credit_bands)
        flag = "  ! above the upstream guarantee" if catalog.above_upstream(name) else ""
        print(
            f"{name:<10} target {tier.uptime_target} %  credits {bands or 'none'}  "
            f"support {tier.support_hours.text}  base {tier.base_fee} {tier.currency}/month"
            f"{flag}"
        )
    return 0


def _instant(text: str | None) -> int:
    if text is None:
        return time.time_ns()
    try:
        return zones.parse_instant(text)
    except ValueError as exc:
        raise UsageError(f"--at {exc}") from None


def _by() -> str:
    return f"cli:{os.environ.get('USER') or os.environ.get('LOGNAME') or 'unknown'}"


def cmd_device_set(args: argparse.Namespace) -> int:
    if args.site is None and args.state is None:
        raise UsageError("nothing to set (--site, --state)")
    at = _instant(args.at)
    with _store(args) as store:
        tenant = _tenant_of(store, args.tenant)
        try:  # both checked before either is stored
            store.change_device(
                tenant.id,
                args.device,
                at,
                site=args.site,
                state=args.state,
                by=_by(),
                why=args.why or "",
            )
        except UnknownDevice:
            raise CommandError(f"no device {args.device!r} in {tenant.name}") from None
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        _print_device(store, tenant, args.device)
    return 0


def cmd_device_replace(args: argparse.Namespace) -> int:
    at = _instant(args.at)
    with _store(args) as store:
        tenant = _tenant_of(store, args.tenant)
        try:
            store.replace_device(tenant.id, args.old, args.new, at, by=_by(), why=args.why or "")
        except UnknownDevice as exc:
            raise CommandError(
                f"no device {exc.args[0]!r} in {tenant.name} (a replacement is linked once "
                "it has reported)"
            ) from None
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        _print_device(store, tenant, args.old)
        _print_device(store, tenant, args.new)
    return 0


def cmd_device_show(args: argparse.Namespace) -> int:
    with _store(args) as store:
        tenant = _tenant_of(store, args.tenant)
        try:
            _print_device(store, tenant, args.device)
        except UnknownDevice:
            raise CommandError(f"no device {args.device!r} in {tenant.name}") from None
    return 0


def _print_device(store: Store, tenant: Tenant, device_id: str) -> None:
    entries = store.device_lifecycle(tenant.id, device_id)
    dev = store.device_index(tenant.id, device_id)
    assert dev is not None
    sites = store.site_history(tenant.id)
    state = store.devstate(tenant.id, [dev])[0]
    first_ns = int(state["first_ms"]) * 1_000_000
    now = time.time_ns()
    print(
        f"{device_id}: site {sites.current(dev) or '(unassigned)'}, "
        f"{state_at(entries, now, first_ns)}"
    )
    when = lambda ns: zones.iso_local(ns, tenant.tz)  # noqa: E731
    for at, site in sites.changes.get(dev, []):
        print(f"  {when(at)}  site {site}")
    for e in entries:
        link = f" ({e.link})" if e.link else ""
        print(f"  {when(e.at_ns)}  {e.state}{link}  by {e.by or '?'}: {e.why or '-'}")
    for at, name in store.firmware_history(tenant.id, device_id):
        print(f"  {when(at)}  firmware {name}")


def cmd_window_add(args: argparse.Namespace) -> int:
    spec: dict[str, object] = {"scope": args.scope}
    if args.site is not None:
        spec["site"] = args.site
    if args.device is not None:
        spec["device"] = args.device
    for key, value in (
        ("start", args.start),
        ("end", args.end),
        ("weekdays", args.weekdays),
        ("at", args.at),
        ("duration_min", args.duration_min),
        ("zone", args.zone),
        ("first", args.first),
        ("last", args.last),
        ("reason", args.reason),
    ):
        if value is not None:
            spec[key] = value
    try:
        window = Window.from_spec(spec)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    window = dataclasses.replace(window, created_by=_by(), created_ns=time.time_ns())
    with _store(args) as store:
        tenant = _tenant_of(store, args.tenant)
        try:
            stored = store.add_window(tenant.id, window)
        except UnknownDevice:
            raise CommandError(f"no device {args.device!r} in {tenant.name}") from None
    print(f"window {stored.id}: {_describe(stored)}")
    return 0


def _describe(window: Window) -> str:
    scope = window.scope if window.scope == "tenant" else f"{window.scope} {window.target}"
    reason = f" — {window.reason}" if window.reason else ""
    return f"{scope}: {window.describe()}{reason}"


def cmd_window_list(args: argparse.Namespace) -> int:
    with _store(args) as store:
        tenant = _tenant_of(store, args.tenant)
        found = store.windows(tenant.id)
    if not found:
        print(f"no maintenance windows for {tenant.name}")
    for window in found:
        print(f"{window.id:>5}  {_describe(window)}")
    return 0


def cmd_window_delete(args: argparse.Namespace) -> int:
    with _store(args) as store:
        tenant = _tenant_of(store, args.tenant)
        try:
            store.delete_window(tenant.id, args.id)
        except KeyError:
            raise CommandError(f"no window {args.id} for {tenant.name}") from None
    print(f"window {args.id} deleted")
    return 0


def cmd_sla(args: argparse.Namespace) -> int:
    config = _config(args.config)
    now = time.time_ns()
    try:
        given = zones.parse_month(args.month) if args.month else None
    except ValueError as exc:
        raise UsageError(f"--month: {exc}") from None
    with _store(args) as store:
        tenant = _tenant_of(store, args.tenant)
        year, month = given or zones.month_of(now, tenant.tz)
        if args.site is not None and args.site not in store.site_history(tenant.id).sites():
            raise CommandError(f"no site {args.site!r} in {tenant.name}")
        sla = attainment.month_sla(store, tenant, year, month, now, site=args.site)
    figures = sla.to_json(config.catalog.above_upstream(tenant.plan))
    scope = f" site {args.site}" if args.site else ""
    state = "" if sla.complete else " (month to date)"
    print(f"{tenant.name}{scope} {sla.label} ({sla.zone}){state}")
    print(
        f"  attainment {figures['attainment'] or 'n/a'} % against {figures['target']} %: "
        f"{'met' if sla.met else 'missed'}; credit {figures['credit_percent']} %"
    )
    print(
        f"  slots: {sla.up:,} up, {sla.down:,} down, {sla.excluded:,} excluded; "
        f"{sla.devices:,} devices"
    )
    if not sla.complete:
        print(
            f"  projection {figures['projection'] or 'n/a'} % "
            f"(credit {figures['projected_credit_percent']} %)"
        )
    if figures["target_above_upstream"]:
        print("  ! the tier's target is above the upstream guarantee")
    for row in figures["sites"]:
        site = row["site"] or "(unassigned)"
        print(f"  {site:<24} {row['attainment'] or 'n/a':>8} %  {row['devices']} devices")
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


def cmd_incident_list(args: argparse.Namespace) -> int:
    with _store(args) as store:
        tenant = _tenant_of(store, args.tenant)
        found = store.incidents(tenant.id)
    shown = [i for i in reversed(found) if args.all or i.is_open][: args.limit]
    if not shown:
        print("no open incidents" if not args.all else "no incidents")
    local = _local(tenant)
    for i in shown:
        ended = f" → {local(i.end_ns)}" if i.end_ns >= 0 else ""
        joined = f" [{', '.join(i.devices)}]" if i.devices else ""
        part = f" (part of incident {i.gateway_incident})" if i.gateway_incident else ""
        answered = ""
        if i.acknowledged_ns >= 0:
            answered += f", acknowledged {local(i.acknowledged_ns)} by {i.acknowledged_by}"
        if i.resolved_by:
            answered += f", resolved by {i.resolved_by}: {i.resolve_note}"
        print(
            f"{i.id:>6}  {i.state:<19} {i.kind} {i.subject}{joined}{part}  "
            f"from {local(i.start_ns)}{ended}, detected {local(i.detected_ns)}{answered}"
        )
    return 0


def _local(tenant: Tenant) -> Callable[[int], str]:
    return lambda ns: zones.iso_local(ns, tenant.tz)


def _answer_incident(args: argparse.Namespace, action: str) -> int:
    note = args.note or ""
    if action == "resolve" and not note.strip():
        raise UsageError("resolving an incident needs --note")
    with _store(args) as store:
        tenant = _tenant_of(store, args.tenant)
        try:
            done = store.answer_incident(tenant.id, args.id, action, _by(), note, time.time_ns())
        except KeyError:
            raise CommandError(f"no incident {args.id} in {tenant.name}") from None
        except ValueError as exc:
            raise CommandError(str(exc)) from None
    print(f"incident {done.id}: {done.state}")
    return 0


def cmd_incident_ack(args: argparse.Namespace) -> int:
    return _answer_incident(args, "acknowledge")


def cmd_incident_resolve(args: argparse.Namespace) -> int:
    return _answer_incident(args, "resolve")


def cmd_incident_compliance(args: argparse.Namespace) -> int:
    """A month's response and resolve compliance against the tier's targets."""
    now = time.time_ns()
    if args.month is not None:
        try:
            year, month = zones.parse_month(args.month)
        except ValueError as exc:
            raise UsageError(f"--month: {exc}") from None
    with _store(args) as store:
        tenant = _tenant_of(store, args.tenant)
        if args.month is None:
            year, month = zones.month_of(now, tenant.tz)
        found = store.incidents(tenant.id)
    tier = tenant.tier
    figures = support.month_compliance(
        found,
        year,
        month,
        tenant.tz,
        tier.support_hours,
        tier.response_target_min,
        tier.resolve_target_min,
        now,
    )
    print(
        f"{tenant.name} {year:04d}-{month:02d} ({tenant.tz}), support hours "
        f"{tier.support_hours.text}"
    )
    for name, tally, target in (
        ("response", figures.response, tier.response_target_min),
        ("resolve", figures.resolve, tier.resolve_target_min),
    ):
        shown = support.shown_share(tally.share)
        share = "n/a" if shown is None else f"{shown} %"
        print(
            f"  {name:<8} within {target} min: {share} "
            f"({tally.met} met, {tally.missed} missed, {tally.pending} pending)"
        )
    if figures.excluded:
        print(f"  {figures.excluded} incident(s) not counted (cleared by backfill, or a gateway's)")
    return 0


def cmd_tenant_alerts(args: argparse.Namespace) -> int:
    with _store(args) as store:
        tenant = _tenant_of(store, args.tenant)
        overrides = dict(tenant.alerts)
        for item in args.set or ():
            key, sep, raw = item.partition("=")
            if not sep:
                raise UsageError(f"--set takes KEY=VALUE (a TOML value), not {item!r}")
            try:
                overrides[key.strip()] = tomllib.loads(f"v = {raw}")["v"]
            except tomllib.TOMLDecodeError:
                raise UsageError(f"{raw!r} is no TOML value (strings are quoted)") from None
        for key in args.clear or ():
            overrides.pop(key, None)
        if args.set or args.clear:
            try:
                tenant = store.set_tenant(tenant.id, alerts=overrides)
            except ValueError as exc:
                raise CommandError(str(exc)) from None
    rules = tenant.alert_rules.to_json()
    for key, value in rules.items():
        mark = "  (tenant)" if key in tenant.alerts else ""
        print(f"{key:<26} {json.dumps(value)}{mark}")
    return 0


def cmd_webhook_add(args: argparse.Namespace) -> int:
    events = [p.strip() for p in args.events.split(",")] if args.events else ["*"]
    with _store(args) as store:
        tenant = _tenant_of(store, args.tenant)
        try:
            secret, endpoint = store.add_endpoint(
                tenant.id, args.url, events, args.description or "", _by()
            )
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    print(secret)
    print(
        f"webhook {endpoint.id} of {tenant.name}: {endpoint.url} for {', '.join(endpoint.events)}"
        "; the secret above is shown only once",
        file=sys.stderr,
    )
    return 0


def cmd_webhook_list(args: argparse.Namespace) -> int:
    with _store(args) as store:
        tenant = _tenant_of(store, args.tenant)
        found = store.endpoints(tenant.id)
    if not found:
        print(f"no webhooks for {tenant.name}")
    for endpoint in found:
        shown = endpoint.to_json()
        description = f"  {endpoint.description}" if endpoint.description else ""
        disabled = "  (disabled)" if endpoint.disabled else ""
        print(
            f"{endpoint.id:>5}  {endpoint.url}  events {','.join(endpoint.events)}{description}"
            f"  created {shown['created_at']} by {endpoint.created_by or '?'}{disabled}"
        )
    return 0


def cmd_webhook_delete(args: argparse.Namespace) -> int:
    with _store(args) as store:
        tenant = _tenant_of(store, args.tenant)
        try:
            store.delete_endpoint(tenant.id, args.id)
        except KeyError:
            raise CommandError(f"no webhook {args.id} for {tenant.name}") from None
    print(f"webhook {args.id} deleted; its pending deliveries failed")
    return 0


def cmd_events(args: argparse.Namespace) -> int:
    """The alert log: events newest first, each delivery with its attempts."""
    with _store(args) as store:
        tenant = _tenant_of(store, args.tenant)
        found = store.events(tenant.id, limit=args.limit)
        urls = {e.id: e.url for e in store.endpoints(tenant.id)}
    if not found:
        print(f"no events for {tenant.name}")
    for event in found:
        shown = event.to_json()
        print(f"{event.name}  {shown['created_at']}  {event.type}")
        if not event.deliveries:
            print("  (no endpoint took it)")
        for delivery in event.deliveries:
            where = urls.get(delivery.endpoint_id, "deleted")
            state = delivery.state
            if state == "pending":
                state += f", next attempt {delivery.to_json()['next_attempt_at']}"
            elif state == "failed":
                state += f": {delivery.error}"
            print(f"  {delivery.name} to webhook {delivery.endpoint_id} ({where}): {state}")
            for attempt in delivery.attempts:
                answer = "no answer" if attempt.status is None else f"HTTP {attempt.status}"
                error = f"  {attempt.error}" if attempt.error and attempt.status is None else ""
                print(f"    {attempt.to_json()['at']}  {answer}{error}  {attempt.took_ms} ms")
    return 0


def _register_webhooks(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``uptally webhook add|list|delete`` and ``uptally events``."""
    webhook = sub.add_parser("webhook", help="webhook endpoints of tenants").add_subparsers(
        dest="action", required=True
    )
    hadd = webhook.add_parser("add", help="add an endpoint and print its secret once")
    hadd.add_argument("tenant")
    hadd.add_argument("url", help="http:// or https:// URL the events are POSTed to")
    hadd.add_argument(
        "--events", help='comma-separated patterns, "incident.*,alert.*" (default: "*", all)'
    )
    hadd.add_argument("--description")
    hadd.set_defaults(func=cmd_webhook_add)
    hlist = webhook.add_parser("list", help="a tenant's endpoints (never their secrets)")
    hlist.add_argument("tenant")
    hlist.set_defaults(func=cmd_webhook_list)
    hdel = webhook.add_parser("delete", help="delete an endpoint; its pending deliveries fail")
    hdel.add_argument("tenant")
    hdel.add_argument("id", type=int)
    hdel.set_defaults(func=cmd_webhook_delete)
    events = sub.add_parser("events", help="a tenant's alert log: events, deliveries, attempts")
    events.add_argument("tenant")
    events.add_argument("--limit", type=_at_least_one, default=20, help="default: 20")
    events.set_defaults(func=cmd_events)
    for p in (hadd, hlist, hdel, events):  # the store serve would open
        p.add_argument(
            "--data", help="store directory (default: UPTALLY_DATA, the config's data, else data)"
        )
        p.add_argument("--config", help="TOML file of uptally serve (its data and plans)")


def _date(text: str) -> date:
    """An argparse type: a local date, YYYY-MM-DD."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a date YYYY-MM-DD, not {text!r}") from None


def _month(text: str) -> tuple[int, int]:
    try:
        return zones.parse_month(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def cmd_subscription(args: argparse.Namespace) -> int:
    """``subscription start|change|cancel``: record one dated event of a tenant."""
    if args.action == "start":
        if args.tier is None:
            raise UsageError("subscription start needs --tier")
        event: Start | Change | Cancel = Start(
            args.on, args.tier, args.term or "monthly", args.trial_days or 0
        )
    elif args.action == "change":
        if args.trial_days is not None:
            raise UsageError("--trial-days goes with start only")
        event = Change(args.on, args.tier, args.term)
    else:
        if args.tier or args.term or args.trial_days is not None:
            raise UsageError("cancel takes only --on")
        event = Cancel(args.on)
    with _store(args) as store:
        tenant = _tenant_of(store, args.tenant)
        try:
            store.add_subscription_event(tenant.id, event, _by())
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        _print_subscription(store, tenant)
    return 0


def _print_subscription(store: Store, tenant: Tenant) -> None:
    records = store.subscription_records(tenant.id)
    if not records:
        print(f"{tenant.name}: no subscription")
    else:
        print(f"{tenant.name} ({tenant.tz}, {tenant.currency}):")
    for record in records:
        what = {
            "start": f"start {record['tier']}, {record['term']}"
            + (f", {record['trial_days']} trial days" if record["trial_days"] else ""),
            "change": "change to "
            + ", ".join(str(v) for v in (record["tier"], record["term"]) if v is not None),
            "cancel": "cancel (last billed day the day before)",
        }[record["kind"]]
        when = zones.iso_local(record["recorded_ns"], tenant.tz)
        print(f"  {record['on']}  {what}  (recorded {when} by {record['by'] or '?'})")


def cmd_subscription_show(args: argparse.Namespace) -> int:
    with _store(args) as store:
        _print_subscription(store, _tenant_of(store, args.tenant))
    return 0


def _invoice_line(record: dict[str, Any]) -> str:
    shown = "n/a" if record["attainment"] is None else f"{record['attainment']} %"
    return (
        f"{record['number']}  {record['tenant_name']}  {record['month']}  "
        f"total {record['total']} {record['currency']} (tax {record['tax']})  "
        f"{record['billable_devices']} devices, {record['frames']} frames, attainment {shown}"
    )


def cmd_close_month(args: argparse.Namespace) -> int:
    year, month = _month(args.month)
    prefix = args.prefix or _config(args.config).invoice_prefix  # [billing] invoice_prefix
    with _store(args) as store:
        try:
            issued = store.close_month(year, month, prefix=prefix)
        except ValueError as exc:
            raise CommandError(f"cannot close {args.month}: {exc}") from exc
        if not issued:
            closed = store.closed_months().get(args.month)
            if closed is not None:
                print(
                    f"{args.month} was closed already, at "
                    f"{zones.iso_local(closed['closed_ns'], 'UTC')}: "
                    f"{len(closed['numbers'])} invoices; nothing issued"
                )
                return 0
    print(f"{args.month} closed: {len(issued)} invoices issued")
    for record in issued:
        print(f"  {_invoice_line(record)}")
    return 0


def cmd_invoice_list(args: argparse.Namespace) -> int:
    with _store(args) as store:
        tenant = _tenant_of(store, args.tenant)
        found = store.invoices(tenant.id)
    if not found:
        print(f"no invoices for {tenant.name}")
    for record in found:
        print(_invoice_line(record))
    return 0


def cmd_invoice_show(args: argparse.Namespace) -> int:
    with _store(args) as store:
        try:
            record = store.invoice(args.number)
        except KeyError:
            raise CommandError(f"no invoice {args.number!r}") from None
    sys.stdout.write(invoices_csv([record]) if args.csv else invoice_json(record))
    return 0


def cmd_invoice_export(args: argparse.Namespace) -> int:
    year, month = _month(args.month)
    with _store(args) as store:
        if args.month not in store.closed_months():
            raise CommandError(f"{args.month} is not closed (uptally close-month {args.month})")
        records = store.month_invoices(year, month)
    text = invoices_csv(records)
    try:
        with open(args.csv, "w", newline="", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        raise CommandError(f"cannot write {args.csv}: {exc.strerror}") from exc
    print(f"{len(records)} invoices of {args.month} written to {args.csv}")
    return 0


def _shown(value: str | None, unit: str = " %") -> str:
    return "n/a" if value is None else f"{value}{unit}"


def print_revenue(document: dict[str, Any]) -> None:
    """The revenue document as text: per currency, a paragraph per month, a line per tenant."""
    if not document["currencies"]:
        print(f"no closed month with MRR from {document['from']} to {document['to']}")
    for currency, block in document["currencies"].items():
        print(f"{currency}, {document['from']} to {document['to']}:")
        for row in block["months"]:
            if not row["closed"]:
                print(f"  {row['month']}  not closed (uptally close-month {row['month']})")
                continue
            moved = row["movements"]
            print(
                f"  {row['month']}  MRR {row['mrr_start']} -> {row['mrr_end']}, ARR {row['arr']},"
                f" valuation {row['valuation']}"
            )
            print(
                "    movements: "
                + ", ".join(f"{kind} {size}" for kind, size in moved.items())
                + ("  (reconciles)" if row["reconciles"] else "  (DOES NOT RECONCILE)")
            )
            print(
                f"    logo churn {_shown(row['logo_churn'])} ({row['churned']} of"
                f" {row['tenants_at_start']}), NRR {_shown(row['nrr'])}, GRR {_shown(row['grr'])}"
                f" (cohort {row['retention_cohort']}), {row['devices']} devices,"
                f" {_shown(row['revenue_per_device'], '')} a device"
            )
            cost = "n/a" if row["cost"] is None else row["cost"]
            margin = "n/a" if row["margin"] is None else row["margin"]
            print(f"    revenue {row['revenue']}, cost {cost}, margin {margin}")
            for t in row["tenants"]:
                moved_text = (
                    "" if t["movement"] is None else f" {t['movement']} {t['movement_size']}"
                )
                t_cost = "n/a" if t["cost"] is None else t["cost"]
                t_margin = "n/a" if t["margin"] is None else t["margin"]
                print(
                    f"      {t['tenant']}: MRR {t['mrr']}{moved_text}, revenue {t['revenue']},"
                    f" cost {t_cost}, margin {t_margin}"
                )


def cmd_revenue(args: argparse.Namespace) -> int:
    first, last = _month(args.first), _month(args.last)
    config = _config(args.config)
    try:
        report.month_range(first, last)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    with _store(args) as store:
        document = report.revenue_document(store, first, last, config.costs, config.arr_multiple)
    if args.json:
        print(json.dumps(document, indent=2))
    else:
        print_revenue(document)
    return 0


def cmd_what_if(args: argparse.Namespace) -> int:
    config = _config(args.config)
    try:
        counts = report.device_counts(args.devices, None, None, None)
        document = report.what_if_document(
            args.tier, config.tiers, counts, args.heartbeat_s, config.costs, args.days, args.term
        )
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if args.json:
        print(json.dumps(document, indent=2))
        return 0
    costs = "no [costs] configured: cost 0" if document["costs"] is None else "costs of [costs]"
    print(
        f"{document['tier']} ({document['currency']}, {document['term']}), {document['days']}"
        f" days at one frame per {document['heartbeat_s']} s; {costs}:"
    )
    for p in document["points"]:
        print(
            f"  {p['devices']} devices: {p['frames']} frames, revenue {p['revenue']}"
            f" (MRR {p['mrr']}), cost {p['cost']}, margin {p['margin']}"
            f" ({_shown(p['margin_percent'])})"
        )
    return 0


def _register_billing(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``uptally subscription ...``, ``uptally close-month`` and ``uptally invoice ...``."""
    subscription = sub.add_parser(
        "subscription", help="tenants' subscriptions: dated start, change, cancel"
    ).add_subparsers(dest="action", required=True)
    events = []
    for action, text in (
        ("start", "start (or reactivate) a subscription on a local date"),
        ("change", "a new tier and/or term from 00:00 local of a date"),
        ("cancel", "end a subscription: the last billed day is the day before --on"),
    ):
        p = subscription.add_parser(action, help=text)
        p.add_argument("tenant")
        p.add_argument("--on", type=_date, required=True, help="local date, YYYY-MM-DD")
        p.add_argument("--tier", help="the tier's name (start: required)")
        p.add_argument("--term", choices=["monthly", "annual"], help="start: default monthly")
        p.add_argument("--trial-days", type=int, help="start: free days from --on (default 0)")
        p.set_defaults(func=cmd_subscription)
        events.append(p)
    sshow = subscription.add_parser("show", help="a tenant's subscription events")
    sshow.add_argument("tenant")
    sshow.set_defaults(func=cmd_subscription_show)
    close = sub.add_parser(
        "close-month", help="issue a month's invoices and close it (frames in it are refused)"
    )
    close.add_argument("month", help="YYYY-MM, each tenant's local month")
    close.add_argument(
        "--prefix", help="of the invoice numbers (default: [billing] invoice_prefix, else INV)"
    )
    close.set_defaults(func=cmd_close_month)
    revenue = sub.add_parser(
        "revenue", help="revenue figures per currency and closed month (as GET /v1/revenue)"
    )
    revenue.add_argument("--from", dest="first", required=True, help="YYYY-MM")
    revenue.add_argument("--to", dest="last", required=True, help="YYYY-MM")
    revenue.add_argument("--json", action="store_true", help="the API's JSON document")
    revenue.set_defaults(func=cmd_revenue)
    what_if = sub.add_parser(
        "what-if", help="revenue, cost and margin of a tier at N devices (as GET /v1/what-if)"
    )
    what_if.add_argument("tier")
    what_if.add_argument("--devices", required=True, help="device counts: 1000 or 10,100,1000")
    what_if.add_argument(
        "--heartbeat-s", type=_at_least_one, help="one frame a device per S s (default: the tier's)"
    )
    what_if.add_argument("--days", type=_at_least_one, default=30, help="default: 30")
    what_if.add_argument("--term", choices=["monthly", "annual"], default="monthly")
    what_if.add_argument("--json", action="store_true", help="the API's JSON document")
    what_if.add_argument("--config", help="TOML file of uptally serve (its tiers and [costs])")
    what_if.set_defaults(func=cmd_what_if)
    invoice = sub.add_parser("invoice", help="issued invoices").add_subparsers(
        dest="action", required=True
    )
    ilist = invoice.add_parser("list", help="a tenant's invoices, in issue order")
    ilist.add_argument("tenant")
    ilist.set_defaults(func=cmd_invoice_list)
    ishow = invoice.add_parser("show", help="one invoice as JSON (--csv: as CSV)")
    ishow.add_argument("number")
    ishow.add_argument("--csv", action="store_true")
    ishow.set_defaults(func=cmd_invoice_show)
    iexport = invoice.add_parser("export", help="a closed month's invoices as one CSV file")
    iexport.add_argument("month", help="YYYY-MM")
    iexport.add_argument("--csv", required=True, metavar="FILE")
    iexport.set_defaults(func=cmd_invoice_export)
    for p in (*events, sshow, close, revenue, ilist, ishow, iexport):  # the store serve opens
        p.add_argument(
            "--data", help="store directory (default: UPTALLY_DATA, the config's data, else data)"
        )
        p.add_argument("--config", help="TOML file of uptally serve (its data and tiers)")


def _password(args: argparse.Namespace) -> tuple[str, bool]:
    """The password read from standard input (``--password-stdin``), else a new one to show
    once; and whether it was made here."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n"), False
    return users.new_password(), True


def cmd_user_add(args: argparse.Namespace) -> int:
    if args.staff == (args.tenant is not None):
        raise UsageError("a user is --staff or of one --tenant")
    password, made = _password(args)
    with _store(args) as store:
        tenant_id = None if args.staff else _tenant_of(store, args.tenant).id
        try:
            user = store.add_user(args.email, password, tenant_id=tenant_id, role=args.role)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
    where = "staff" if user.staff else f"{args.tenant} {user.role}"
    print(f"user {user.id} {user.email} ({where})")
    if made:
        print(f"password (shown once): {password}")
    return 0


def cmd_user_list(args: argparse.Namespace) -> int:
    with _store(args) as store:
        found = store.users()
        names = {t.id: t.name for t in store.tenants.values()}
    if not found:
        print("no users")
    for user in found:
        where = "staff" if user.staff else f"{names.get(user.tenant_id or 0, '?')} {user.role}"
        flags = " disabled" if user.disabled else ""
        flags += " locked" if user.locked_until_ns > time.time_ns() else ""
        print(f"{user.id:>5}  {user.email:<40} {where}{flags}")
    return 0


def _change_user(args: argparse.Namespace, **changes: object) -> int:
    with _store(args) as store:
        try:
            user = store.change_user(args.email, **changes)  # type: ignore[arg-type]
        except KeyError:
            raise CommandError(f"no user {args.email}") from None
        except ValueError as exc:
            raise CommandError(str(exc)) from None
    state = "disabled" if user.disabled else "enabled"
    print(f"user {user.email}: {state}; its sessions end")
    return 0


def cmd_user_disable(args: argparse.Namespace) -> int:
    return _change_user(args, disabled=True)


def cmd_user_enable(args: argparse.Namespace) -> int:
    return _change_user(args, disabled=False)


def cmd_user_reset(args: argparse.Namespace) -> int:
    password, made = _password(args)
    code = _change_user(args, password=password)
    if made:
        print(f"new password (shown once): {password}")
    return code


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
    dashboard.add_argument(
        "--api",
        help="the server's URL, for staff answers (default: the config's host and port, "
        "http://127.0.0.1:8080)",
    )
    dashboard.set_defaults(func=cmd_dashboard)

    tenant = sub.add_parser("tenant", help="manage tenants").add_subparsers(
        dest="action", required=True
    )
    add = tenant.add_parser("add", help="add a tenant")
    add.add_argument("name")
    add.add_argument("--slot-s", type=int, default=60)
    tset = tenant.add_parser("set", help="change a tenant's tier, zone, tax rate or name")
    tset.add_argument("name")
    for p in (add, tset):
        p.add_argument("--plan", help="its service tier (default for add: standard)")
        p.add_argument("--tz", help="IANA time zone of its days and months (default UTC)")
        p.add_argument("--currency", help="ISO 4217 code (default USD); never changes")
        p.add_argument("--tax-rate", help='percent, a decimal string like "19" (default 0)')
        p.add_argument("--display-name", help="the name its users see")
    add.set_defaults(func=cmd_tenant_add)
    tset.set_defaults(func=cmd_tenant_set)
    tlist = tenant.add_parser("list", help="tenants and their settings")
    tlist.set_defaults(func=cmd_tenant_list)

    tier = sub.add_parser("tier", help="service tiers").add_subparsers(dest="action", required=True)
    tiers = tier.add_parser("list", help="tiers, flagged when above the upstream guarantee")
    tiers.add_argument("--config", help="TOML file of uptally serve (its tiers)")
    tiers.set_defaults(func=cmd_tier_list)

    device = sub.add_parser("device", help="sites and lifecycle of devices").add_subparsers(
        dest="action", required=True
    )
    dset = device.add_parser("set", help="move a device to a site, set its lifecycle state")
    dset.add_argument("tenant")
    dset.add_argument("device")
    dset.add_argument("--site")
    dset.add_argument("--state", choices=SETTABLE_STATES)
    drep = device.add_parser("replace", help="retire OLD and link NEW, which takes its site")
    drep.add_argument("tenant")
    drep.add_argument("old")
    drep.add_argument("new")
    for p in (dset, drep):
        p.add_argument("--why", help="the reason, kept in the history")
        p.add_argument("--at", help="when, ISO 8601 with an offset (default: now)")
    dset.set_defaults(func=cmd_device_set)
    drep.set_defaults(func=cmd_device_replace)
    dshow = device.add_parser("show", help="a device's site, lifecycle and firmware history")
    dshow.add_argument("tenant")
    dshow.add_argument("device")
    dshow.set_defaults(func=cmd_device_show)

    window = sub.add_parser("window", help="maintenance windows").add_subparsers(
        dest="action", required=True
    )
    wadd = window.add_parser("add", help="add a one-off or recurring maintenance window")
    wadd.add_argument("tenant")
    wadd.add_argument("--scope", choices=SCOPES, default="tenant")
    wadd.add_argument("--site", help="the site of a site window")
    wadd.add_argument("--device", help="the device of a device window")
    wadd.add_argument("--start", help="one-off: ISO 8601 with an offset")
    wadd.add_argument("--end", help="one-off: ISO 8601 with an offset")
    wadd.add_argument("--weekdays", help='recurring: "Mon-Fri", "Sat,Sun"')
    wadd.add_argument("--at", help="recurring: local start, HH:MM")
    wadd.add_argument("--duration-min", type=int, help="recurring: minutes")
    wadd.add_argument("--zone", help="recurring: IANA zone of --at")
    wadd.add_argument("--first", help="recurring: first date, YYYY-MM-DD")
    wadd.add_argument("--last", help="recurring: last date (inclusive)")
    wadd.add_argument("--reason")
    wadd.set_defaults(func=cmd_window_add)
    wlist = window.add_parser("list", help="a tenant's maintenance windows")
    wlist.add_argument("tenant")
    wlist.set_defaults(func=cmd_window_list)
    wdel = window.add_parser("delete", help="delete a maintenance window")
    wdel.add_argument("tenant")
    wdel.add_argument("id", type=int)
    wdel.set_defaults(func=cmd_window_delete)

    sla = sub.add_parser("sla", help="a tenant's SLA figures for a month")
    sla.add_argument("tenant")
    sla.add_argument("--month", help="YYYY-MM in the tenant's zone (default: this month)")
    sla.add_argument("--site")
    sla.set_defaults(func=cmd_sla)

    incident = sub.add_parser(
        "incident", help="incidents: list, acknowledge, resolve"
    ).add_subparsers(dest="action", required=True)
    ilist = incident.add_parser("list", help="open incidents, newest first (--all: every one)")
    ilist.add_argument("tenant")
    ilist.add_argument("--all", action="store_true")
    ilist.add_argument("--limit", type=_at_least_one, default=50)
    ilist.set_defaults(func=cmd_incident_list)
    iack = incident.add_parser("ack", help="acknowledge an incident")
    iack.add_argument("tenant")
    iack.add_argument("id", type=int)
    iack.add_argument("--note")
    iack.set_defaults(func=cmd_incident_ack)
    ires = incident.add_parser("resolve", help="resolve an incident, with a note")
    ires.add_argument("tenant")
    ires.add_argument("id", type=int)
    ires.add_argument("--note", required=True)
    ires.set_defaults(func=cmd_incident_resolve)
    icomp = incident.add_parser("compliance", help="a month's response and resolve compliance")
    icomp.add_argument("tenant")
    icomp.add_argument("--month", help="YYYY-MM in the tenant's zone (default: this month)")
    icomp.set_defaults(func=cmd_incident_compliance)
    talerts = tenant.add_parser("alerts", help="a tenant's alert rules; --set/--clear overrides")
    talerts.add_argument("tenant")
    talerts.add_argument("--set", action="append", metavar="KEY=VALUE")
    talerts.add_argument("--clear", action="append", metavar="KEY")
    talerts.set_defaults(func=cmd_tenant_alerts)

    user = sub.add_parser("user", help="dashboard users").add_subparsers(
        dest="action", required=True
    )
    uadd = user.add_parser("add", help="a staff user or a tenant's; prints a password once")
    uadd.add_argument("email")
    uadd.add_argument("--staff", action="store_true", help="reads every tenant")
    uadd.add_argument("--tenant", help="the tenant the user belongs to")
    uadd.add_argument("--role", choices=users.ROLES, default="viewer", help="default: viewer")
    uadd.add_argument("--password-stdin", action="store_true", help="read it, do not make one")
    uadd.set_defaults(func=cmd_user_add)
    user.add_parser("list", help="users (never their passwords)").set_defaults(func=cmd_user_list)
    for name, func, text in (
        ("disable", cmd_user_disable, "disable a user: its sessions end"),
        ("enable", cmd_user_enable, "enable a disabled user"),
        ("reset", cmd_user_reset, "a new password (prints it once); lifts a lockout"),
    ):
        one = user.add_parser(name, help=text)
        one.add_argument("email")
        if name == "reset":
            one.add_argument("--password-stdin", action="store_true")
        one.set_defaults(func=func)

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
    _register_webhooks(sub)
    _register_billing(sub)
    for p in (
        info,
        dashboard,
        add,
        tset,
        tlist,
        *device.choices.values(),
        *window.choices.values(),
        sla,
        *incident.choices.values(),
        *user.choices.values(),
        talerts,
        *token.choices.values(),
    ):  # the store serve would open
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
