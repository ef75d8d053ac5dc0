"""A device's site and lifecycle over time, as dated histories.

Sites: a device's site is, by default, the name of the gateway that first reported it
(``""``, unassigned, for a device registered before any frame); a change is dated and holds
from that instant on. A slot has the site its device had at the slot's start.

Lifecycle: ``provisioned`` until the first frame, then ``active``, unless staff set
``maintenance`` (excluded from the SLA until the device is set ``active`` again) or
``retired`` (final: its counted slots end; a replacement is a new device). Each entry says
who, when and why.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

LIFECYCLE_STATES = ("provisioned", "active", "maintenance", "retired")
#: what staff may set; ``provisioned`` is where every device starts, ``active`` its default
SETTABLE_STATES = ("active", "maintenance", "retired")


@dataclass
class SiteHistory:
    """The sites of a tenant's devices: a default per device index (the name of its first
    gateway, held as that gateway's id: ``first_gateway``, 0 for none, and ``gateways``, id
    -> name) and dated changes per device, ascending."""

    first_gateway: npt.NDArray[np.uint32]
    gateways: Mapping[int, str]
    changes: dict[int, list[tuple[int, str]]] = field(default_factory=dict)

    def default(self, dev: int) -> str:
        if dev >= len(self.first_gateway):
            return ""
        return self.gateways.get(int(self.first_gateway[dev]), "")

    def site_at(self, dev: int, at_ns: int) -> str:
        moves = self.changes.get(dev, [])
        i = bisect.bisect_right([at for at, _ in moves], at_ns)
        return moves[i - 1][1] if i else self.default(dev)

    def current(self, dev: int) -> str:
        moves = self.changes.get(dev)
        return moves[-1][1] if moves else self.default(dev)

    def spans(self, dev: int, start_ns: int, end_ns: int) -> list[tuple[int, int, str]]:
        """The device's sites over ``[start_ns, end_ns)``: ``(from, to, site)`` pieces."""
        out: list[tuple[int, int, str]] = []
        at, site = start_ns, self.site_at(dev, start_ns)
        for when, new in self.changes.get(dev, []):
            if start_ns < when < end_ns and new != site:
                out.append((at, when, site))
                at, site = when, new
        out.append((at, end_ns, site))
        return out

    def moved(self, start_ns: int, end_ns: int) -> set[int]:
        """Devices whose site changes inside ``(start_ns, end_ns)``."""
        return {dev for dev in self.changes if len(self.spans(dev, start_ns, end_ns)) > 1}

    def codes_at(self, at_ns: int, n: int) -> tuple[npt.NDArray[np.int64], list[str]]:
        """Every device's site at ``at_ns`` as an index into the returned names (sorted;
        ``""`` is unassigned): vectorised over the defaults, so 100,000 devices cost little."""
        gw = np.zeros(n, np.int64)
        m = min(n, len(self.first_gateway))
        gw[:m] = self.first_gateway[:m]
        site_of_gw = {int(g): self.gateways.get(int(g), "") for g in np.unique(gw)}
        moved = {dev: self.site_at(dev, at_ns) for dev in self.changes if dev < n}
        names = sorted(set(site_of_gw.values()) | set(moved.values()))
        index = {name: i for i, name in enumerate(names)}
        gw_ids = np.array(sorted(site_of_gw), np.int64)
        gw_codes = np.array([index[site_of_gw[g]] for g in sorted(site_of_gw)], np.int64)
        codes = gw_codes[np.searchsorted(gw_ids, gw)] if n else np.zeros(0, np.int64)
        for dev, site in moved.items():
            codes[dev] = index[site]
        return codes, names

    def sites(self) -> list[str]:
        """Every site named, sorted (unassigned left out)."""
        named = {self.gateways.get(int(g), "") for g in np.unique(self.first_gateway)}
        named |= {s for moves in self.changes.values() for _, s in moves}
        return sorted(named - {""})


@dataclass(frozen=True)
class LifecycleEntry:
    """One dated lifecycle change of a device: who set which state, when and why."""

    at_ns: int
    state: str
    by: str = ""
    why: str = ""
    #: the device it was replaced by (on a retirement) or replaces (on the new one)
    link: str = ""

    def to_record(self) -> dict[str, object]:
        return {"state": self.state, "by": self.by, "why": self.why, "link": self.link}

    @classmethod
    def from_record(cls, at_ns: int, record: dict[str, object]) -> LifecycleEntry:
        return cls(
            at_ns,
            str(record["state"]),
            str(record.get("by", "")),
            str(record.get("why", "")),
            str(record.get("link", "")),
        )


def maintenance_spans(entries: Sequence[LifecycleEntry]) -> list[tuple[int, int]]:
    """The ``[from, to)`` spans a device spent in lifecycle ``maintenance`` (``to`` is the
    next entry of another state, or open: the end of time)."""
    spans = []
    start = None
    for entry in entries:
        if entry.state == "maintenance" and start is None:
            start = entry.at_ns
        elif entry.state != "maintenance" and start is not None:
            spans.append((start, entry.at_ns))
            start = None
    if start is not None:
        spans.append((start, 2**63 - 1))
    return spans


def state_at(entries: Sequence[LifecycleEntry], at_ns: int, first_seen_ns: int) -> str:
    """The device's lifecycle state at ``at_ns``: the last entry by then, else ``active``
    once it has sent a frame (``first_seen_ns`` >= 0), else ``provisioned``."""
    state = None
    for entry in entries:
        if entry.at_ns <= at_ns:
            state = entry.state
    if state is None or state == "active":
        return "active" if 0 <= first_seen_ns <= at_ns or state == "active" else "provisioned"
    return state


def check_transition(entries: Sequence[LifecycleEntry], state: str) -> None:
    """A ValueError unless staff may set ``state`` now: a known state, and never out of
    ``retired`` (a retired device is replaced, not revived)."""
    if state not in SETTABLE_STATES:
        raise ValueError(f"state must be one of {', '.join(SETTABLE_STATES)}, not {state!r}")
    if entries and entries[-1].state == "retired":
        raise ValueError("the device is retired: retirement is final (replace it instead)")
