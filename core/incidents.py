"""Incidents: what the watching raises, and what staff answer.

The rules are those of ``docs/service.md`` ("Incidents", "Decided edges"):

* A **device** incident opens when a device has ``min_outage`` (its tier's, default 5)
  consecutive down slots; it starts at the first of them and closes at the start of the next
  up slot.
* A **gateway** incident opens when a gateway has sent no accepted batch for 5 of its
  devices' heartbeats; it starts at its last accepted batch and closes at its next one.
  Device incidents of its devices that start while it is silent are attached to it (their
  ``gateway_incident``) rather than raised on their own.
* An open incident whose slots all turn up (frames that arrived late) closes as
  ``cleared_by_backfill`` and stays in the log.
* ``detected_ns`` is when the server first saw it; staff acknowledge it and resolve it with a
  note, or the close resolves it.

An incident is a plain record; the table ``core/store/incidents.py`` keeps them, the
evaluator (:mod:`core.watch`) opens and closes them, written by the writer thread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from core.times import iso

KINDS = ("device", "gateway")
#: open: raised, unanswered; acknowledged: staff answered it, still open; resolved: closed
#: (by its close or by staff); cleared_by_backfill: late frames showed it never happened
STATES = ("open", "acknowledged", "resolved", "cleared_by_backfill")
OPEN_STATES = ("open", "acknowledged")


@dataclass
class Incident:
    id: int
    tenant_id: int
    kind: str  # "device" or "gateway"
    subject: str  # the device id or the gateway name
    start_ns: int  # the first down slot's start; a gateway's last accepted batch
    detected_ns: int
    state: str = "open"
    end_ns: int = -1  # the close: the next up slot's start, a gateway's next batch; -1 open
    #: the gateway incident a device incident is attached to (0: none)
    gateway_incident: int = 0
    #: a gateway incident's devices (their ids), in the order they were attached
    devices: list[str] = field(default_factory=list)
    acknowledged_ns: int = -1
    acknowledged_by: str = ""
    acknowledge_note: str = ""
    resolved_ns: int = -1
    resolved_by: str = ""  # "" when the close resolved it
    resolve_note: str = ""

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Incident:
        return cls(**record)

    def to_json(self, tenant_name: str, local: Callable[[int], str | None] = iso) -> dict[str, Any]:
        """The API's and the events' answer: instants as ISO 8601 (UTC, or as ``local``
        writes them), null where not (yet) set."""

        def when(ns: int) -> str | None:
            return local(ns) if ns >= 0 else None

        return {
            "id": self.id,
            "tenant": tenant_name,
            "kind": self.kind,
            self.kind: self.subject,
            "state": self.state,
            "started_at": when(self.start_ns),
            "ended_at": when(self.end_ns),
            "detected_at": when(self.detected_ns),
            "acknowledged_at": when(self.acknowledged_ns),
            "acknowledged_by": self.acknowledged_by or None,
            "acknowledge_note": self.acknowledge_note or None,
            "resolved_at": when(self.resolved_ns),
            "resolved_by": self.resolved_by or None,
            "resolve_note": self.resolve_note or None,
            "gateway_incident": self.gateway_incident or None,
            "devices": list(self.devices) if self.kind == "gateway" else None,
        }
