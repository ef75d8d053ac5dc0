"""A tenant fed minute by minute, for the watching's tests: times in seconds from T0."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import msgpack

from core.incidents import Incident
from core.store import Store, Tenant
from core.times import NS_PER_S
from core.watch import Plan, WatchMemory, evaluate

#: 2026-01-05T00:00Z, a Monday: slots of 60 s start on the minute
T0 = 1_767_571_200


def ns(seconds: float) -> int:
    return int((T0 + seconds) * NS_PER_S)


class Fed:
    """A store and one tenant; ``minute`` sends one batch per gateway with a frame at :30 of
    the minute from every device ``alive`` says is sending. Times are seconds from ``t0``
    (default :data:`T0`; the dashboard's tests feed the last hours before now)."""

    def __init__(self, store: Store, tenant: Tenant, t0: int = T0) -> None:
        self.store, self.tenant, self.t0 = store, tenant, t0
        self.seq: dict[str, int] = {}
        self.memory = WatchMemory()
        self.incidents: dict[int, Incident] = {}

    def ns(self, seconds: float) -> int:
        return int((self.t0 + seconds) * NS_PER_S)

    def send(self, gateway: str, frames: list[list[object]], at_s: float) -> None:
        self.seq[gateway] = self.seq.get(gateway, 0) + 1
        body = msgpack.packb({"gateway": gateway, "seq": self.seq[gateway], "frames": frames})
        result = self.store.ingest(self.tenant.id, body, self.ns(at_s))
        assert result.rejected == 0, result.errors

    def minutes(
        self,
        gateways: dict[str, list[str]],
        first: int,
        last: int,
        alive: Callable[[str, int], bool] = lambda device, minute: True,
    ) -> None:
        """Minutes ``first`` to ``last`` (inclusive): frames at :30, sent at :31."""
        for minute in range(first, last + 1):
            for gateway, devices in gateways.items():
                frames = [[d, self.t0 + minute * 60 + 30, 0] for d in devices if alive(d, minute)]
                if frames:
                    self.send(gateway, frames, minute * 60 + 31)

    def late(self, gateway: str, device: str, minutes: Iterable[int], at_s: float) -> None:
        """Frames of ``device`` for past ``minutes``, arriving at ``at_s``."""
        self.send(gateway, [[device, self.t0 + m * 60 + 30, 0] for m in minutes], at_s)

    def plan(self, at_s: float) -> Plan:
        """A pass at ``at_s`` over the slots checkpointed then (nothing stored)."""
        self.store.checkpoint(self.ns(at_s))
        return evaluate(
            self.store,
            self.store.tenants[self.tenant.id],
            self.ns(at_s),
            self.memory,
            self.store.incidents(self.tenant.id),
            gateway_seen=self.store.gateway_seen.get(self.tenant.id, {}),
            gateway_resumed=self.store.gateway_resumed.get(self.tenant.id, {}),
            started_ns=0,
        )

    def run(self, at_s: float) -> Plan:
        """A pass at ``at_s``, applied as the server applies it."""
        plan = self.plan(at_s)
        self.store.apply_watch(
            [(self.tenant.id, plan.ops, plan.memory.to_record(), plan.events)], plan.now_ns
        )
        self.memory = plan.memory
        return plan

    def current(self) -> list[Incident]:
        return self.store.incidents(self.tenant.id)
