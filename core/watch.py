"""The watching: one evaluation pass over a tenant's stored slots and latest values, which
opens and closes incidents and raises and clears alerts.

A pass reads (any thread, no write): the device runs of down slots from the day blocks
(:func:`core.query.outages`, maintenance excluded as for the SLA), the devices' latest values
(:func:`core.query.current_status`), the gateways' last accepted batches (kept by the
writer, :attr:`core.store.Store.gateway_seen`) and the tenant's incidents. It answers a
:class:`Plan`: incident operations, events and the memory to keep; the writer thread applies
it in one transaction with its events' outbox rows (:meth:`core.store.Store.apply_watch`),
so a restart neither loses nor repeats an incident or an event.

Rules (``docs/incidents.md``): a device incident at ``min_outage`` consecutive down slots,
from the first to the next up slot; a gateway incident after 5 of its devices' heartbeats
without an accepted batch, its devices' incidents that start while it is silent attached to
it; an open incident whose slots all turned up is ``cleared_by_backfill``. Alerts: a device
quiet (no frame for its heartbeat plus a grace), reporting a fault, its battery below a
threshold; a gateway silent; the month's projection below the target; the device count at
a level of the cap. One event per state change; a device that changed state more than 4
times in 30 minutes sends one ``device.flapping`` event, then none until it has held one
state for 30 minutes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt

from core import query, zones
from core.batch import BATTERY_NONE
from core.dayblock import KIND_EMPTY, KIND_FULL
from core.incidents import OPEN_STATES, Incident
from core.sla import attainment
from core.store import Store, Tenant
from core.times import NS_PER_MS, NS_PER_S, S_PER_HOUR, iso, slots_per_day

#: a gateway incident opens after this many of its devices' heartbeats without a batch
SILENT_HEARTBEATS = 5
#: more state changes than this within FLAP_WINDOW_NS is flapping
FLAP_CHANGES = 4
FLAP_WINDOW_NS = 30 * 60 * NS_PER_S
#: how far the first pass of a tenant looks back for runs of down slots
FIRST_LOOK_NS = 24 * S_PER_HOUR * NS_PER_S
#: and at most this far (frames may come this late: the ingest's max_backfill_s)
MAX_LOOK_NS = 7 * 24 * S_PER_HOUR * NS_PER_S
#: the SLA projection is computed at most this often (it walks the month)
SLA_EVERY_NS = 5 * 60 * NS_PER_S

#: a device's states, as flapping counts their changes
LABELS = ("inactive", "online", "offline", "fault")
#: alert rules, by the subject they are about
DEVICE_RULES = ("quiet", "fault", "battery")
RULES = (*DEVICE_RULES, "gateway_silent", "device_cap", "sla_at_risk")


@dataclass
class WatchMemory:
    """What a tenant's evaluator keeps across passes (``watch`` table; ``states`` in memory
    only: a restart seeds it from its first pass, counting no change)."""

    evaluated_ns: int = 0
    #: announced alerts: key ("quiet:DEVICE", "device_cap", ...) -> {"level", "since_ns"}
    alerts: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: devices' state changes within the flapping window, and the flapping devices (since)
    changes: dict[str, list[int]] = field(default_factory=dict)
    flapping: dict[str, int] = field(default_factory=dict)
    sla_checked_ns: int = 0
    #: the pass time last stored
    stored_ns: int = 0
    #: when the watching of the tenant began (its first pass): runs that ended before it
    #: are history, not news, and raise nothing, in that pass or any later one
    began_ns: int = 0
    #: each device's state at the last pass (a code of LABELS), in memory only
    states: npt.NDArray[np.int8] = field(
        default_factory=lambda: np.zeros(0, np.int8), compare=False
    )

    def to_record(self) -> dict[str, Any]:
        """What is stored: the pass's time only goes with a change of the rest (a restart
        looks back from the last stored pass; the SLA check just runs again)."""
        return {
            "evaluated_ns": self.stored_ns,
            "alerts": self.alerts,
            "changes": self.changes,
            "flapping": self.flapping,
            "began_ns": self.began_ns,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any] | None) -> WatchMemory:
        if not record:
            return cls()
        return cls(
            evaluated_ns=record.get("evaluated_ns", 0),
            alerts=dict(record.get("alerts", {})),
            changes={k: list(v) for k, v in record.get("changes", {}).items()},
            flapping=dict(record.get("flapping", {})),
            stored_ns=record.get("evaluated_ns", 0),
            began_ns=record.get("began_ns", 0),
        )


@dataclass
class Plan:
    """One pass's outcome for one tenant. ``ops`` in order, applied by the writer:

    * ``("open", incident)``: a new incident; its ``id`` is a negative placeholder that later
      ops (and a device incident's ``gateway_incident``) may name, replaced when stored;
    * ``("close", id, end_ns, state)``: state ``resolved`` (its close) or
      ``cleared_by_backfill``; an incident staff resolved already gets its ``end_ns`` only;
    * ``("attach", device incident id, gateway incident id)``.
    """

    tenant_id: int
    now_ns: int
    ops: list[tuple[Any, ...]] = field(default_factory=list)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    memory: WatchMemory = field(default_factory=WatchMemory)

    @property
    def changes_anything(self) -> bool:
        return bool(self.ops or self.events)


def _overlaps(incident: Incident, start_ns: int, end_ns: int) -> bool:
    until = incident.end_ns if incident.end_ns >= 0 else 2**63 - 1
    return incident.start_ns < end_ns and start_ns < until


def evaluate(
    store: Store,
    tenant: Tenant,
    now_ns: int,
    memory: WatchMemory,
    incidents: Iterable[Incident],
    *,
    gateway_seen: Mapping[str, int] | None = None,
    gateway_resumed: Mapping[str, int] | None = None,
    started_ns: int = 0,
) -> Plan:
    """One pass over ``tenant`` as of ``now_ns``: reads only. ``incidents`` are the tenant's
    (at least those open or overlapping the look-back); ``gateway_seen`` its gateways' last
    accepted batch and ``gateway_resumed`` the first batch after a silence (by name), as the
    writer knows them since ``started_ns``."""
    plan = Plan(tenant.id, now_ns, memory=_copy(memory))
    mem = plan.memory
    if not mem.began_ns:
        mem.began_ns = now_ns
    known = list(incidents)
    slot_ns = tenant.slot_s * NS_PER_S
    tier = tenant.tier
    rules = tenant.alert_rules
    ids = store.device_ids(tenant.id)
    n = len(ids)
    status = query.current_status(store, tenant.id, now_ns)
    state = store.devstate(tenant.id)

    # --- gateways: silence, from the later of the last batch and what the devices last sent
    gateway_of = store.first_gateway_ids(tenant.id)[:n]
    names = store.gateway_names(tenant.id)
    seen = dict(gateway_seen or {})
    resumed = dict(gateway_resumed or {})
    active = (state["last_ms"] >= 0) & ~(
        (state["retired_ms"] >= 0) & (state["retired_ms"] * NS_PER_MS <= now_ns)
    )
    heartbeat_s = np.where(state["heartbeat_s"] > 0, state["heartbeat_s"], tenant.heartbeat_s)
    silent: dict[str, tuple[int, int]] = {}  # gateway -> (silent since, its heartbeat ns)
    for gw, name in names.items():
        members = np.flatnonzero((gateway_of == gw) & active)
        if not len(members):
            continue
        last = seen.get(name)
        if last is None:  # not heard since this start: what its devices last sent, or the start
            last = max(int(state["last_ms"][members].max()) * NS_PER_MS, started_ns)
        silent[name] = (last, int(heartbeat_s[members].max()) * NS_PER_S)

    open_gateways = {i.subject: i for i in known if i.kind == "gateway" and i.is_open}
    placeholder = [0]

    def new_id() -> int:
        placeholder[0] -= 1
        return placeholder[0]

    gateway_incidents: dict[str, list[Incident]] = {}
    for incident in known:
        if incident.kind == "gateway":
            gateway_incidents.setdefault(incident.subject, []).append(incident)
    for name, (last, hb_ns) in silent.items():
        current = open_gateways.get(name)
        if current is not None:
            back = seen.get(name)
            if back is not None and back > current.start_ns:
                end = resumed.get(name, back)
                plan.ops.append(("close", current.id, max(end, current.start_ns), "resolved"))
                current.end_ns = max(end, current.start_ns)
            continue
        if now_ns - last >= SILENT_HEARTBEATS * hb_ns:
            incident = Incident(new_id(), tenant.id, "gateway", name, last, now_ns)
            plan.ops.append(("open", incident))
            gateway_incidents.setdefault(name, []).append(incident)

    def gateway_incident_at(dev: int, start_ns: int) -> Incident | None:
        name = names.get(int(gateway_of[dev])) if dev < len(gateway_of) else None
        for g in gateway_incidents.get(name or "", ()):
            if g.state != "cleared_by_backfill" and _overlaps(g, start_ns, start_ns + 1):
                return g
        return None

    # --- device incidents: runs of down slots in the stored slots, maintenance excluded
    ended = min(now_ns, store.blocks_complete_until_ns()) // slot_ns * slot_ns
    devices = [i for i in known if i.kind == "device"]
    open_devices = [i for i in devices if i.is_open]
    look_from = look_back(tenant, now_ns, mem, known)
    index = {device_id: dev for dev, device_id in enumerate(ids)}
    excl = attainment.exclusions(
        store.windows(tenant.id),
        store.site_history(tenant.id),
        store.lifecycle(tenant.id),
        index,
        n,
        slot_ns,
        look_from,
        now_ns,
    )
    # open incidents first: still down, closed by an up slot, or cleared by late frames
    if open_devices:
        devs = sorted({index[i.subject] for i in open_devices if i.subject in index})
        runs = query.outages(
            store,
            tenant.id,
            look_from,
            now_ns,
            now_ns,
            min_outage=1,
            devices=devs,
            exclusions=excl,
        )
        by_device: dict[int, list[query.Outage]] = {}
        for run in runs:
            by_device.setdefault(run.device, []).append(run)
        for incident in open_devices:
            dev = index.get(incident.subject, -1)
            after = [r for r in by_device.get(dev, ()) if r.end_ns > incident.start_ns]
            if not after:
                plan.ops.append(("close", incident.id, incident.start_ns, "cleared_by_backfill"))
                incident.state = "cleared_by_backfill"
            elif not after[0].ongoing:
                plan.ops.append(("close", incident.id, after[0].end_ns, "resolved"))
                incident.end_ns = after[0].end_ns
    # a staff-resolved incident whose run has ended gets its end
    for incident in devices:
        if incident.state == "resolved" and incident.end_ns < 0 and incident.resolved_by:
            if incident.subject not in index:
                continue
            dev = index[incident.subject]
            runs = query.outages(
                store,
                tenant.id,
                incident.start_ns,
                now_ns,
                now_ns,
                min_outage=1,
                devices=[dev],
                exclusions=excl,
            )
            found = next((r for r in runs if r.end_ns > incident.start_ns), None)
            if found is None or not found.ongoing:
                end = incident.start_ns if found is None else found.end_ns
                plan.ops.append(("close", incident.id, end, "resolved"))
                incident.end_ns = end
    # new runs of min_outage slots that no incident covers yet
    by_subject: dict[str, list[Incident]] = {}
    for incident in devices:
        by_subject.setdefault(incident.subject, []).append(incident)
    # only the devices with a slot not up in the period can have a run in it: the query's
    # walk of whole days (every device of a day still in progress is "busy") is paid for
    # those alone, with the same runs (the query treats devices one by one)
    candidates = _not_up(store, tenant.id, n, slot_ns, look_from, max(ended, look_from))
    runs = (
        query.outages(
            store,
            tenant.id,
            look_from,
            max(ended, look_from),
            now_ns,
            min_outage=tier.min_outage,
            devices=candidates.tolist(),
            exclusions=excl,
        )
        if len(candidates)
        else []
    )
    for run in runs:
        if not run.ongoing and run.end_ns <= mem.began_ns:
            continue  # it ended before the watching began: history, not news
        device_id = ids[run.device]
        mine = by_subject.setdefault(device_id, [])
        if any(
            _overlaps(i, run.start_ns, run.end_ns) for i in mine if i.state != "cleared_by_backfill"
        ):
            continue
        incident = Incident(new_id(), tenant.id, "device", device_id, run.start_ns, now_ns)
        g = gateway_incident_at(run.device, run.start_ns)
        if g is not None:
            incident.gateway_incident = g.id
        # the op holds the incident as opened: the writer applies the close after it (an
        # incident stored with its end already set would stay open, and be closed again by
        # every later pass)
        plan.ops.append(("open", replace(incident)))
        if not run.ongoing:
            plan.ops.append(("close", incident.id, run.end_ns, "resolved"))
            incident = replace(incident, end_ns=run.end_ns)
        mine.append(incident)
    # device incidents raised before their gateway's incident was known join it
    for incident in open_devices:
        if incident.gateway_incident or incident.state == "cleared_by_backfill":
            continue
        at = index.get(incident.subject)
        g = None if at is None else gateway_incident_at(at, incident.start_ns)
        if g is not None:
            plan.ops.append(("attach", incident.id, g.id))

    # --- alerts: what fires now, against what was announced (numpy over every device; a
    # Python loop only over those that fire)
    firing: dict[str, dict[str, Any]] = {}
    m = len(status.ids)
    labels = np.asarray(status.state, dtype=object)
    live = labels != "inactive"
    last_ns = status.last_seen_ns[:m]
    device_hb_ns = heartbeat_s[:m].astype(np.int64) * NS_PER_S
    grace_ns = rules.quiet_grace_s * NS_PER_S
    # planned work raises no device alert either: devices inside maintenance now are quiet
    live = live & ~_in_maintenance(excl, m, now_ns)
    quiet = live & (last_ns >= 0) & (now_ns - last_ns >= device_hb_ns + grace_ns)
    for dev in np.flatnonzero(quiet).tolist():
        firing[f"quiet:{status.ids[dev]}"] = {
            "level": "quiet",
            "last_seen": iso(int(last_ns[dev])),
            "threshold_s": int(device_hb_ns[dev]) // NS_PER_S + rules.quiet_grace_s,
        }
    if rules.fault:
        for dev in np.flatnonzero(live & (labels == "fault")).tolist():
            firing[f"fault:{status.ids[dev]}"] = {
                "level": "fault",
                "status": int(status.last_status[dev]),
            }
    if rules.battery_below > 0:
        tenths = state["batt_last"][:m].astype(np.int64)  # exact: tenths of a percent
        # exact: a whole count of tenths lies below 15.55 % (155.5 tenths) when below 156
        low = live & (tenths != BATTERY_NONE) & (tenths < math.ceil(rules.battery_below * 10))
        for dev in np.flatnonzero(low).tolist():
            firing[f"battery:{status.ids[dev]}"] = {
                "level": "low",
                "battery": str(Decimal(int(tenths[dev])) / 10),
                "threshold": str(rules.battery_below),
            }
    for name, (last, gw_hb_ns) in silent.items():
        if now_ns - last >= rules.gateway_silent_heartbeats * gw_hb_ns:
            firing[f"gateway_silent:{name}"] = {
                "level": "silent",
                "last_seen": iso(last),
                "threshold_s": rules.gateway_silent_heartbeats * gw_hb_ns // NS_PER_S,
            }
    cap = tenant.device_cap
    if cap > 0:
        retired = (state["retired_ms"] >= 0) & (state["retired_ms"] * NS_PER_MS <= now_ns)
        count = int(np.count_nonzero(~retired))  # the devices it has, as the cap counts them
        reached = [level for level in rules.cap_levels if count * 100 >= level * cap]
        if reached:
            firing["device_cap"] = {"level": reached[-1], "devices": count, "cap": cap}
    if rules.sla_at_risk:
        if now_ns - mem.sla_checked_ns >= SLA_EVERY_NS:
            mem.sla_checked_ns = now_ns
            year, month = zones.month_of(now_ns, tenant.tz)
            figures = attainment.month_sla(store, tenant, year, month, now_ns)
            if figures.projection is not None and figures.projection < figures.target:
                firing["sla_at_risk"] = {
                    "level": "at_risk",
                    "month": figures.label,
                    "projection": attainment.shown(figures.projection),
                    "target": str(figures.target),
                }
        elif "sla_at_risk" in mem.alerts:  # not checked this pass: as announced
            firing["sla_at_risk"] = mem.alerts["sla_at_risk"]

    # --- flapping: a device's state changes, counted over the window
    codes = np.zeros(m, np.int8)
    for code, label in enumerate(LABELS):
        codes[labels == label] = code
    before = mem.states
    changed = np.zeros(m, np.bool_)
    k = min(len(before), m)
    # a device coming to life (from inactive: never seen, or not yet checkpointed) is no flap
    changed[:k] = (before[:k] != codes[:k]) & (before[:k] != 0)
    mem.states = codes
    window_from = now_ns - FLAP_WINDOW_NS
    for dev in sorted({*np.flatnonzero(changed).tolist(), *_indexes(mem.changes, index)}):
        device_id = ids[dev]
        changes = [t for t in mem.changes.get(device_id, ()) if t > window_from]
        if changed[dev]:
            changes.append(now_ns)
        if changes:
            mem.changes[device_id] = changes
        else:
            mem.changes.pop(device_id, None)
        if device_id in mem.flapping:
            if not changes:  # it held one state for the window: it speaks again
                del mem.flapping[device_id]
        elif len(changes) > FLAP_CHANGES:
            mem.flapping[device_id] = now_ns
            data = {"device": device_id, "changes": len(changes), "window_min": 30}
            plan.events.append(("device.flapping", {**data, "state": LABELS[codes[dev]]}))

    def muted(key: str) -> bool:
        rule, _, subject = key.partition(":")
        return rule in DEVICE_RULES and subject in mem.flapping

    for key in sorted(set(firing) | set(mem.alerts)):
        if muted(key):
            continue
        now_alert, was = firing.get(key), mem.alerts.get(key)
        rule, _, subject = key.partition(":")
        if now_alert is not None and (was is None or was.get("level") != now_alert["level"]):
            since = now_ns if was is None else was.get("since_ns", now_ns)
            mem.alerts[key] = {**now_alert, "since_ns": since}
            plan.events.append(("alert.firing", _alert(rule, subject, now_alert)))
        elif now_alert is None and was is not None:
            del mem.alerts[key]
            plan.events.append(("alert.resolved", _alert(rule, subject, was)))
    mem.evaluated_ns = now_ns
    kept = (mem.alerts, mem.changes, mem.flapping, mem.began_ns)
    if plan.changes_anything or kept != (
        memory.alerts,
        memory.changes,
        memory.flapping,
        memory.began_ns,
    ):
        mem.stored_ns = now_ns
    return plan


def _alert(rule: str, subject: str, info: Mapping[str, Any]) -> dict[str, Any]:
    about = {"gateway_silent": "gateway"}.get(rule, "device" if rule in DEVICE_RULES else None)
    out: dict[str, Any] = {"rule": rule}
    if about is not None:
        out[about] = subject
    out.update({k: v for k, v in info.items() if k != "since_ns"})
    return out


def _copy(memory: WatchMemory) -> WatchMemory:
    return WatchMemory(
        memory.evaluated_ns,
        {k: dict(v) for k, v in memory.alerts.items()},
        {k: list(v) for k, v in memory.changes.items()},
        dict(memory.flapping),
        memory.sla_checked_ns,
        memory.stored_ns,
        memory.began_ns,
        memory.states,
    )


def _not_up(
    store: Store, tenant_id: int, n: int, slot_ns: int, start_ns: int, end_ns: int
) -> npt.NDArray[np.int64]:
    """The devices (of the first ``n``) with a slot in ``[start_ns, end_ns)`` that the day
    blocks do not hold up (not covered, or faulted), ascending: a superset of those with a
    down slot there (scope and exclusions only take slots away)."""
    first, last = start_ns // slot_ns, -(-end_ns // slot_ns)
    if end_ns <= start_ns or not n:
        return np.zeros(0, np.int64)
    n_slots = slots_per_day(slot_ns // NS_PER_S)
    first_day, last_day = first // n_slots, (last - 1) // n_slots
    blocks = {day: block for day, block, _ in store.day_blocks(tenant_id, first_day, last_day)}
    hit = np.zeros(n, np.bool_)
    for day in range(first_day, last_day + 1):
        block = blocks.get(day)
        if block is None:  # no data that day: every device is down
            return np.arange(n, dtype=np.int64)
        a, b = max(first - day * n_slots, 0), min(last - day * n_slots, n_slots)
        k = min(n, block.n)
        hit[k:] = True  # devices the block does not know
        cov, fault = block.cov_kind[:k], block.fault_kind[:k]
        hit[:k] |= (cov == KIND_EMPTY) | (fault == KIND_FULL)
        up_all_day = (cov == KIND_FULL) & (fault == KIND_EMPTY)
        partial = np.flatnonzero(~up_all_day & ~hit[:k])  # the rows to look into
        if len(partial):
            rows_cov, rows_fault = block.rows(partial)
            lo = a // 8
            up = rows_cov[:, lo : (b + 7) // 8] & ~rows_fault[:, lo : (b + 7) // 8]
            bits = np.unpackbits(up, axis=1, bitorder="little")[:, a - 8 * lo : b - 8 * lo]
            hit[partial[~bits.all(axis=1)]] = True
    return np.flatnonzero(hit).astype(np.int64)


def _in_maintenance(excl: Any, n: int, now_ns: int) -> npt.NDArray[np.bool_]:
    """The devices a maintenance window (or lifecycle ``maintenance``) covers at ``now_ns``."""

    def covers(windows: Iterable[tuple[int, int]]) -> bool:
        return any(a <= now_ns < b for a, b in windows)

    out = np.zeros(n, np.bool_)
    if covers(excl.tenant):
        out[:] = True
    for devices, windows in excl.all_groups():
        if covers(windows):
            out[devices[devices < n]] = True
    return out


def _indexes(devices: Mapping[str, object], index: Mapping[str, int]) -> list[int]:
    return [index[d] for d in devices if d in index]


def look_back(
    tenant: Tenant, now_ns: int, memory: WatchMemory, incidents: Iterable[Incident]
) -> int:
    """Where a pass looks back from for runs of down slots: a few slots before the last pass
    (the first pass: a day), and back to the start of every open device incident, within
    the longest backfill. A caller that keeps only :func:`relevant` incidents must keep
    those reaching past this, or the pass finds their runs again as new."""
    slot_ns = tenant.slot_s * NS_PER_S
    look_from = (
        memory.evaluated_ns - (tenant.tier.min_outage + 1) * slot_ns
        if memory.evaluated_ns
        else now_ns - FIRST_LOOK_NS
    )
    starts = [i.start_ns for i in incidents if i.kind == "device" and i.is_open]
    return max(min([look_from, *starts]), now_ns - MAX_LOOK_NS, 0)


def relevant(incidents: Iterable[Incident], look_from_ns: int) -> list[Incident]:
    """The incidents a pass needs: the open ones and those that reach past ``look_from_ns``."""
    return [
        i for i in incidents if i.state in OPEN_STATES or i.end_ns < 0 or i.end_ns > look_from_ns
    ]
