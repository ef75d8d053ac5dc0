"""Simulated fleets of gateways and devices, and the msgpack batch bodies they send.

One generator for the demo, the benchmarks and the tests:

* :class:`Fleet` names the devices; :class:`Traffic` plays it forward as a steady stream of
  batches (:class:`BatchSet`), as the decode benchmarks replay it in memory;
* :class:`BodyFactory` encodes the same kind of batches with numpy, millions of frames in a
  fraction of a second, for the load generator that posts them to a live server;
* :func:`demo_batches` is the demo's fleet: minute heartbeats over some hours, with outages
  and faults to show.

A :class:`Fleet` is a set of device ids like ``site-042/dev-00017`` (sites of
``devices_per_site`` devices). A :class:`Traffic` generator plays the fleet forward in time:
every device reports once per ``interval_s`` in a fixed shuffled order, consecutive frames go
into batches of ``batch_size`` (so the frames of one batch are different devices whenever the
fleet is at least a batch large), and time advances batch by batch. Each call to
:meth:`Traffic.batches` continues where the previous one stopped.

Frames carry status 0 on ``1 - fault_rate`` of them (else 1..3), battery (integer percent) on
``battery_rate`` and rssi (integer dBm) on ``rssi_rate``. A ``bad_rate`` fraction of frames
get a timestamp the server must reject (an hour ahead of ``now`` or eight days old), so a
consumer's count of accepted frames can be checked against :attr:`BatchSet.accepted`.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any, Literal

import msgpack
import numpy as np

from core.times import NS_PER_S, S_PER_DAY, S_PER_HOUR

__all__ = [
    "BatchSet",
    "BodyFactory",
    "Fleet",
    "FrameForm",
    "Traffic",
    "demo_batches",
    "frame_dtype",
    "timestamps",
]

FrameForm = Literal["compact", "map"]
TsUnit = Literal["s", "ms"]

#: How far after the newest frame of a batch the simulated server clock is, in seconds.
NOW_LAG_S = 1
#: Offsets of rejected timestamps from the batch's ``now``: an hour ahead, eight days back.
BAD_FUTURE_S = S_PER_HOUR
BAD_OLD_S = 8 * S_PER_DAY


@dataclass(frozen=True)
class Fleet:
    """``n_devices`` device ids, ``devices_per_site`` to a site (the last site may be short)."""

    n_devices: int
    devices_per_site: int = 200

    def __post_init__(self) -> None:
        if self.n_devices <= 0 or self.devices_per_site <= 0:
            raise ValueError("a fleet needs at least one device and one device per site")

    @classmethod
    def of_sites(cls, n_sites: int, devices_per_site: int) -> Fleet:
        """A fleet of ``n_sites`` full sites."""
        return cls(n_sites * devices_per_site, devices_per_site)

    @property
    def n_sites(self) -> int:
        return math.ceil(self.n_devices / self.devices_per_site)

    def _widths(self) -> tuple[int, int]:
        return (
            max(3, len(str(self.n_sites - 1))),
            max(5, len(str(self.devices_per_site - 1))),
        )

    def device_id(self, index: int) -> str:
        """The id of device ``index`` (0-based), e.g. ``site-042/dev-00017``."""
        site, dev = divmod(index, self.devices_per_site)
        ws, wd = self._widths()
        return f"site-{site:0{ws}d}/dev-{dev:0{wd}d}"

    def device_ids(self) -> list[str]:
        """All ids, by index."""
        ws, wd = self._widths()
        dps = self.devices_per_site
        return [f"site-{i // dps:0{ws}d}/dev-{i % dps:0{wd}d}" for i in range(self.n_devices)]

    def describe(self) -> str:
        return f"{self.n_devices:,} devices ({self.n_sites:,} sites x {self.devices_per_site:,})"


@dataclass
class BatchSet:
    """Encoded batch bodies and what a server needs to judge them.

    ``now_ns[i]`` is the server clock to pass when decoding ``bodies[i]``; ``frames[i]`` is
    the number of frames in it and ``accepted[i]`` how many of them a correct server accepts.
    """

    form: FrameForm
    bodies: list[bytes] = field(default_factory=list)
    now_ns: list[int] = field(default_factory=list)
    frames: list[int] = field(default_factory=list)
    accepted: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.bodies)

    @property
    def n_frames(self) -> int:
        return sum(self.frames)

    @property
    def n_accepted(self) -> int:
        return sum(self.accepted)

    @property
    def n_bytes(self) -> int:
        return sum(len(b) for b in self.bodies)

    def head(self, n_batches: int) -> BatchSet:
        """The first ``n_batches`` batches (sharing the bodies)."""
        return BatchSet(
            self.form,
            self.bodies[:n_batches],
            self.now_ns[:n_batches],
            self.frames[:n_batches],
            self.accepted[:n_batches],
        )


class Traffic:
    """A fleet's heartbeats as a stream of batches; see the module docstring."""

    def __init__(
        self,
        fleet: Fleet,
        *,
        form: FrameForm = "compact",
        batch_size: int = 1_000,
        interval_s: int = 60,
        start_s: int = 1_767_225_600,  # 2026-01-01T00:00:00Z
        ts_unit: TsUnit = "s",
        fault_rate: float = 0.01,
        battery_rate: float = 0.95,
        rssi_rate: float = 0.95,
        bad_rate: float = 0.0,
        n_gateways: int = 50,
        seed: int = 0,
    ) -> None:
        if form not in ("compact", "map"):
            raise ValueError(f"unknown frame form {form!r}")
        if ts_unit not in ("s", "ms"):
            raise ValueError(f"unknown timestamp unit {ts_unit!r}")
        if batch_size <= 0 or interval_s <= 0:
            raise ValueError("batch_size and interval_s must be positive")
        self.fleet = fleet
        self.form: FrameForm = form
        self.batch_size = batch_size
        self.interval_s = interval_s
        self.start_s = start_s
        self.ts_unit: TsUnit = ts_unit
        self.fault_rate = fault_rate
        self.battery_rate = battery_rate
        self.rssi_rate = rssi_rate
        self.bad_rate = bad_rate
        self.n_gateways = n_gateways
        self._rng = np.random.default_rng(seed)
        self._ids = fleet.device_ids()
        self._order = self._rng.permutation(fleet.n_devices)
        self._frame_no = 0  # frames generated so far: the position in time
        self._batch_no = 0

    @property
    def cycle_batches(self) -> int:
        """Batches in one reporting interval: the batches that reach every device once."""
        return math.ceil(self.fleet.n_devices / self.batch_size)

    @property
    def clock_s(self) -> float:
        """Simulated time of the next frame, in Unix seconds."""
        return self.start_s + self._frame_no * self.interval_s / self.fleet.n_devices

    def batches(self, n_batches: int) -> BatchSet:
        """Generate and encode the next ``n_batches`` batches."""
        out = BatchSet(self.form)
        for _ in range(n_batches):
            body, now_ns, n, accepted = self._next_batch()
            out.bodies.append(body)
            out.now_ns.append(now_ns)
            out.frames.append(n)
            out.accepted.append(accepted)
        return out

    def _next_batch(self) -> tuple[bytes, int, int, int]:
        n = self.batch_size
        n_dev = self.fleet.n_devices
        rng = self._rng
        g = np.arange(self._frame_no, self._frame_no + n, dtype=np.int64)
        devs = self._order[g % n_dev].tolist()
        ts_s = self.start_s + (g * self.interval_s) // n_dev
        now_s = int(ts_s[-1]) + NOW_LAG_S
        bad = rng.random(n) < self.bad_rate
        n_bad = int(bad.sum())
        if n_bad:
            ts_s = ts_s.copy()
            future = rng.random(n) < 0.5
            ts_s[bad & future] = now_s + BAD_FUTURE_S
            ts_s[bad & ~future] = now_s - BAD_OLD_S
        ts = ts_s * 1000 if self.ts_unit == "ms" else ts_s
        status = np.where(rng.random(n) < self.fault_rate, rng.integers(1, 4, n), 0).tolist()
        battery = rng.integers(5, 101, n).tolist()
        has_battery = (rng.random(n) < self.battery_rate).tolist()
        rssi = rng.integers(-120, -39, n).tolist()
        has_rssi = (rng.random(n) < self.rssi_rate).tolist()
        ids = self._ids
        frames: list[Any] = []
        append = frames.append
        if self.form == "compact":
            for d, t, s, b, hb, r, hr in zip(
                devs, ts.tolist(), status, battery, has_battery, rssi, has_rssi, strict=True
            ):
                if hr:
                    append([ids[d], t, s, b if hb else None, r])
                elif hb:
                    append([ids[d], t, s, b])
                else:
                    append([ids[d], t, s])
        else:
            for d, t, s, b, hb, r, hr in zip(
                devs, ts.tolist(), status, battery, has_battery, rssi, has_rssi, strict=True
            ):
                frame = {"d": ids[d], "t": t, "s": s}
                if hb:
                    frame["b"] = b
                if hr:
                    frame["r"] = r
                append(frame)
        body = msgpack.packb(
            {
                "gateway": f"gw-{self._batch_no % self.n_gateways:03d}",
                "seq": self._batch_no,
                "frames": frames,
            }
        )
        self._frame_no += n
        self._batch_no += 1
        return body, now_s * NS_PER_S, n, n - n_bad


# --- a vectorised encoder of compact batches ------------------------------------------


def frame_dtype(id_len: int) -> np.dtype[Any]:
    """The bytes of one compact frame ``[id, ts, status, battery, rssi]`` as msgpack encodes
    it, for ``ts`` in 2**16..2**32-1 (uint32), ``status`` 0..127 and ``battery`` 0..127
    (positive fixints) and ``rssi`` in -128..-33 (int8): a fixed 11 + ``id_len`` bytes."""
    id_head = [("id_h", "u1")] if id_len < 32 else [("id_h", "u1"), ("id_n", "u1")]
    return np.dtype(
        [("arr", "u1")]
        + id_head
        + [
            ("id", f"S{id_len}"),
            ("ts_h", "u1"),
            ("ts", ">u4"),
            ("status", "u1"),
            ("battery", "u1"),
            ("rssi_h", "u1"),
            ("rssi", "i1"),
        ]
    )


class BodyFactory:
    """Batch bodies of a fleet, byte for byte what ``msgpack.packb`` makes of
    ``{"gateway": g, "seq": s, "frames": [[id, ts, status, battery, rssi], ...]}``, built with
    numpy so that millions of frames take a fraction of a second.

    Frame ``g`` of a run goes to device ``order[g % n_devices]`` (a fixed shuffle, so each
    batch holds different devices whenever the fleet is larger than a batch); its timestamp
    is given by the caller (see :meth:`frames`). Status is 0 on 99 % of frames (else 1..3),
    battery 5..100 %, rssi -120..-40 dBm.
    """

    def __init__(self, fleet: Fleet, seed: int = 0) -> None:
        self.fleet = fleet
        ids = fleet.device_ids()
        self.id_len = len(ids[0])
        if any(len(i) != self.id_len for i in ids) or not ids[0].isascii():
            raise ValueError("the encoder needs ASCII ids of one length")
        self.ids = np.array([i.encode() for i in ids], dtype=f"S{self.id_len}")
        self.dtype = frame_dtype(self.id_len)
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(fleet.n_devices)

    def frames(self, first: int, n: int, ts: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """``n`` encoded frames, numbers ``first`` .. ``first + n - 1``, with timestamps
        ``ts`` (Unix seconds, one per frame), as a structured array whose bytes are the
        concatenated msgpack frames."""
        rng = self.rng
        out = np.empty(n, self.dtype)
        out["arr"] = 0x95
        if self.id_len < 32:
            out["id_h"] = 0xA0 | self.id_len
        else:
            out["id_h"] = 0xD9
            out["id_n"] = self.id_len
        g = np.arange(first, first + n, dtype=np.int64)
        out["id"] = self.ids[self.order[g % self.fleet.n_devices]]
        if ts.min() < 1 << 16 or ts.max() >= 1 << 32:
            raise ValueError("timestamps must fit the uint32 encoding")
        out["ts_h"] = 0xCE
        out["ts"] = ts
        out["status"] = np.where(rng.random(n) < 0.01, rng.integers(1, 4, n), 0)
        out["battery"] = rng.integers(5, 101, n)
        out["rssi_h"] = 0xD0
        out["rssi"] = rng.integers(-120, -39, n)
        return out

    @staticmethod
    def body(gateway: str, seq: int, frames: np.ndarray[Any, Any]) -> bytes:
        """One batch body around already encoded frames."""
        packer = msgpack.Packer()
        head = (
            b"\x83"
            + packer.pack("gateway")
            + packer.pack(gateway)
            + packer.pack("seq")
            + packer.pack(seq)
            + packer.pack("frames")
            + packer.pack_array_header(len(frames))
        )
        return head + frames.tobytes()


def timestamps(first: int, n: int, total: int, t_lo: int, t_hi: int) -> np.ndarray[Any, Any]:
    """Timestamps of frames ``first..first+n-1`` out of ``total``, rising evenly from
    ``t_lo`` to ``t_hi`` (Unix seconds)."""
    g = np.arange(first, first + n, dtype=np.int64)
    return t_lo + (g * (t_hi - t_lo)) // max(1, total)


# --- the demo's fleet -------------------------------------------------------------------


def demo_batches(devices: int, hours: int, now_s: int, seed: int) -> list[bytes]:
    """The demo's fleet: ``devices`` devices (``site-000/dev-00000``, 20 to a site, numbered
    across the fleet) reporting every minute for ``hours`` hours up to just before ``now_s``,
    a tenth of them silent once for 5 to 90 minutes and a few frames faulty, as batches of up
    to 1,000 frames from each site's gateway (``site-000``: the devices' default site). The
    same arguments give the same bodies."""
    rng = random.Random(seed)
    ids = [f"site-{i // 20:03d}/dev-{i:05d}" for i in range(devices)]
    outages = {
        dev: (rng.randrange(hours * 60), rng.randrange(5, 90))
        for dev in rng.sample(range(devices), max(1, devices // 10))
    }
    start = now_s - hours * S_PER_HOUR + 60  # the last frames arrive just before now
    bodies: list[bytes] = []
    pending: dict[str, list[list[object]]] = {}
    sent: dict[str, int] = {}

    def flush(gateway: str) -> None:
        seq = sent[gateway] = sent.get(gateway, -1) + 1
        frames = pending.pop(gateway)
        bodies.append(msgpack.packb({"gateway": gateway, "seq": seq, "frames": frames}))

    for minute in range(hours * 60):
        t = start + minute * 60
        for dev, device_id in enumerate(ids):
            gap = outages.get(dev)
            if gap and gap[0] <= minute < gap[0] + gap[1]:
                continue
            status = 3 if rng.random() < 0.0005 else 0
            battery = max(0.0, 100 - minute / 60 - dev % 13)
            gateway = device_id.split("/")[0]
            frames = pending.setdefault(gateway, [])
            frames.append([device_id, t + rng.random(), status, round(battery, 1), -60 - dev % 30])
            if len(frames) == 1000:
                flush(gateway)
    for gateway in list(pending):
        flush(gateway)
    return bodies
