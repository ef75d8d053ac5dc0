"""The load generator of the end-to-end benchmark: gateways posting batches to a live server.

A phase of load (:class:`LoadSpec`) runs in its own process (:class:`LoadProcess`), so that
its CPU is not the server's nor the caller's: ``senders`` concurrent aiohttp senders over
keep-alive connections, each posting as its own gateway (``bench-gw-00``...) one batch at a
time and waiting for the answer (a closed loop). Every body is encoded before the timed part
starts (:func:`encode_phase`, with :class:`core.fleet.BodyFactory`); every body has a new
``seq`` and its own frames (compact form, ``[device, ts, status, battery, rssi]``, devices of
the fleet in a shuffled cycle, timestamps rising over a window of the server's clock), so
dedupe never short-circuits and every frame is accepted.

What a phase measures (:class:`LoadResult`), over the window from the first request to the
last answer: the answers (200 or not, accepted and rejected frames, duplicates), transport
errors, acknowledgement latency per batch (from just before the request is sent to the whole
answer read) and the generator's own CPU time (``getrusage`` of its process). A phase stops
sending new batches after ``duration_s`` or when its bodies run out, whichever comes first,
then waits for the batches in flight.
"""

from __future__ import annotations

import asyncio
import json
import math
import pickle
import resource
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import msgpack
import numpy as np

from bench.common import REPO
from core.fleet import BodyFactory, Fleet, timestamps


@dataclass
class LoadSpec:
    """One phase of load: ``senders`` gateways, each posting its share of ``batches``
    batches of ``batch_size`` frames in a closed loop, for at most ``duration_s`` seconds.

    Frame timestamps rise from ``now - window_s[0]`` to ``now - window_s[1]`` (``now`` read
    when the bodies are encoded) across the phase. Sequence numbers are
    ``seq_base + i`` for a sender's ``i``-th batch, so phases with distinct ``seq_base``
    never collide. ``frame_base`` shifts where in the fleet's cycle the phase starts.
    """

    url: str
    token: str
    batch_size: int = 1_000
    batches: int = 1_000
    senders: int = 16
    duration_s: float = 10.0
    devices: int = 100_000
    devices_per_site: int = 200
    seq_base: int = 0
    frame_base: int = 0
    window_s: tuple[int, int] = (3_540, 60)
    gateway_prefix: str = "bench-gw"
    seed: int = 0
    timeout_s: float = 120.0
    #: several tenants: their ingest tokens; batch ``k`` goes to tenant ``k % len(tokens)``,
    #: each tenant with a fleet of its own of ``devices // len(tokens)`` devices (the same
    #: ids in every tenant) where every frame is healthy but those of a fixed 1 % of its
    #: devices (faulty) and 2 % (low battery); empty: one tenant, ``token``
    tokens: tuple[str, ...] = ()
    #: offered batches per second over all senders (an open loop: sender ``s`` sends its
    #: ``i``-th batch at ``(i * senders + s) / rate_bps`` into the phase, or at once when
    #: late); 0: a closed loop, each sender as fast as its answers come
    rate_bps: float = 0.0
    #: return every batch's latency too (``latency_samples_ms``), e.g. to pool phases
    samples: bool = False

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("token")
        d.pop("tokens")
        d["tenants"] = len(self.tokens) or 1
        d["window_s"] = list(self.window_s)
        return d


@dataclass
class LoadResult:
    """What one phase measured; rates are over ``window_s`` (first request to last answer)."""

    batch_size: int
    senders: int
    encoded_batches: int
    encoded_bytes: int
    encode_s: float
    sent: int = 0
    acked: int = 0  # 200 answers
    frames_acked: int = 0  # frames the 200 answers say were accepted
    rejected: int = 0
    warnings: int = 0
    duplicates: int = 0
    non_200: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    window_s: float = 0.0
    ended_by: str = ""
    latency_ms: dict[str, float] = field(default_factory=dict)
    #: open loop only: from each batch's planned send time to its answer (what a gateway
    #: would see; a stalled server also delays the batches not yet sent)
    latency_planned_ms: dict[str, float] = field(default_factory=dict)
    latency_samples_ms: list[float] = field(default_factory=list)
    latency_planned_samples_ms: list[float] = field(default_factory=list)
    gen_cpu_s: float = 0.0

    @property
    def fps(self) -> float:
        return self.frames_acked / self.window_s if self.window_s else 0.0

    @property
    def bps(self) -> float:
        return self.acked / self.window_s if self.window_s else 0.0

    @property
    def failures(self) -> int:
        return sum(self.non_200.values()) + sum(self.errors.values())

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["frames_per_s"] = self.fps
        d["batches_per_s"] = self.bps
        d["gen_cpu_share"] = self.gen_cpu_s / self.window_s if self.window_s else None
        return d


def encode_phase(spec: LoadSpec, now_s: int | None = None) -> list[list[bytes]]:
    """The phase's bodies, one list per sender (batch ``k`` goes to sender ``k % senders``)."""
    now_s = int(time.time()) if now_s is None else now_s
    factory = BodyFactory(Fleet(spec.devices, spec.devices_per_site), seed=spec.seed)
    total = spec.batches * spec.batch_size
    t_lo, t_hi = now_s - spec.window_s[0], now_s - spec.window_s[1]
    per_sender: list[list[bytes]] = [[] for _ in range(spec.senders)]
    chunk = max(1, 1_000_000 // spec.batch_size)  # batches encoded per numpy pass
    for k0 in range(0, spec.batches, chunk):
        k1 = min(spec.batches, k0 + chunk)
        first = k0 * spec.batch_size
        n = (k1 - k0) * spec.batch_size
        frames = factory.frames(spec.frame_base + first, n, timestamps(first, n, total, t_lo, t_hi))
        for k in range(k0, k1):
            s = k % spec.senders
            part = frames[(k - k0) * spec.batch_size : (k - k0 + 1) * spec.batch_size]
            gateway = f"{spec.gateway_prefix}-{s:02d}"
            seq = spec.seq_base + k // spec.senders
            per_sender[s].append(BodyFactory.body(gateway, seq, part))
    return per_sender


#: devices (by index in a tenant's fleet) whose every frame reports a fault, or a low battery
FAULTY_EVERY, LOW_BATTERY_EVERY = 100, 50


def encode_tenants_phase(spec: LoadSpec, now_s: int | None = None) -> list[list[bytes]]:
    """:func:`encode_phase` for several tenants (``spec.tokens``): batch ``k`` goes to
    sender ``k % senders`` and tenant ``k % len(tokens)``, from that tenant's own fleet."""
    now_s = int(time.time()) if now_s is None else now_s
    tenants = len(spec.tokens)
    fleet = Fleet(max(1, spec.devices // tenants), spec.devices_per_site)
    factories = [BodyFactory(fleet, seed=spec.seed + t) for t in range(tenants)]
    per_tenant = -(-spec.batches // tenants)  # batches of each tenant, at most
    total = per_tenant * spec.batch_size
    t_lo, t_hi = now_s - spec.window_s[0], now_s - spec.window_s[1]
    per_sender: list[list[bytes]] = [[] for _ in range(spec.senders)]
    for k in range(spec.batches):
        t, j = k % tenants, k // tenants  # j: the tenant's own batch number
        factory = factories[t]
        first = spec.frame_base + j * spec.batch_size
        ts = timestamps(j * spec.batch_size, spec.batch_size, total, t_lo, t_hi)
        frames = factory.frames(first, spec.batch_size, ts)
        dev = factory.order[np.arange(first, first + spec.batch_size) % fleet.n_devices]
        frames["status"] = np.where(dev % FAULTY_EVERY == 0, 1, 0)
        frames["battery"] = np.where(dev % LOW_BATTERY_EVERY == 1, 10, 80)
        s = k % spec.senders
        gateway = f"{spec.gateway_prefix}-{s:02d}"
        per_sender[s].append(BodyFactory.body(gateway, spec.seq_base + k // spec.senders, frames))
    return per_sender


def _percentiles(ms: np.ndarray[Any, Any]) -> dict[str, float]:
    return {
        "p50": float(np.percentile(ms, 50)),
        "p90": float(np.percentile(ms, 90)),
        "p99": float(np.percentile(ms, 99)),
        "max": float(ms.max()),
        "mean": float(ms.mean()),
    }


def _cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


async def _post_all(
    spec: LoadSpec,
    bodies: list[list[bytes]],
    result: LoadResult,
    on_ready: Any = None,
) -> None:
    import aiohttp

    tokens = spec.tokens or (spec.token,)
    all_headers = [
        {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/msgpack",
            "Accept": "application/msgpack",
        }
        for token in tokens
    ]
    planned: list[float] = []
    url = spec.url.rstrip("/") + "/v1/ingest"
    connector = aiohttp.TCPConnector(limit=spec.senders, force_close=False)
    timeout = aiohttp.ClientTimeout(total=spec.timeout_s)
    latencies: list[float] = []
    non_200: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    last_answer = 0.0
    deadline = math.inf
    stopped_by_time = False
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        # open the keep-alive connections before the clock starts
        async def touch() -> None:
            async with session.get(spec.url.rstrip("/") + "/healthz") as r:
                await r.read()

        await asyncio.gather(*(touch() for _ in range(spec.senders)))
        if on_ready is not None:
            await asyncio.get_running_loop().run_in_executor(None, on_ready)

        async def sender(s: int, mine: list[bytes]) -> None:
            nonlocal last_answer, stopped_by_time
            perf = time.perf_counter
            unpackb = msgpack.unpackb
            due = 0.0
            for i, body in enumerate(mine):
                if perf() >= deadline:
                    stopped_by_time = True
                    return
                headers = all_headers[(i * spec.senders + s) % len(all_headers)]
                if spec.rate_bps > 0:
                    due = started + (i * spec.senders + s) / spec.rate_bps
                    if due >= deadline:
                        stopped_by_time = True
                        return
                    wait = due - perf()
                    if wait > 0:
                        await asyncio.sleep(wait)
                t0 = perf()
                result.sent += 1
                try:
                    async with session.post(url, data=body, headers=headers) as resp:
                        raw = await resp.read()
                        status = resp.status
                except Exception as exc:  # noqa: BLE001 - counted and reported
                    errors[type(exc).__name__] += 1
                    last_answer = perf()
                    continue
                t1 = perf()
                last_answer = t1
                latencies.append(t1 - t0)
                if spec.rate_bps > 0:
                    planned.append(t1 - min(t0, due))
                if status != 200:
                    non_200[str(status)] += 1
                    continue
                answer = unpackb(raw)
                result.acked += 1
                result.frames_acked += answer["accepted"]
                result.rejected += answer["rejected"]
                result.warnings += answer["warnings"]
                result.duplicates += bool(answer["duplicate"])

        cpu0 = _cpu_s()
        started = time.perf_counter()
        deadline = started + spec.duration_s
        await asyncio.gather(*(sender(s, mine) for s, mine in enumerate(bodies)))
        result.gen_cpu_s = _cpu_s() - cpu0
        result.window_s = max(last_answer, started) - started
    result.ended_by = "time" if stopped_by_time else "bodies"
    result.non_200 = dict(non_200)
    result.errors = dict(errors)
    if latencies:
        lat = np.array(latencies) * 1e3
        result.latency_ms = _percentiles(lat)
        if spec.samples:
            result.latency_samples_ms = lat.tolist()
    if planned:
        lat = np.array(planned) * 1e3
        result.latency_planned_ms = _percentiles(lat)
        if spec.samples:
            result.latency_planned_samples_ms = lat.tolist()


def run_load(spec: LoadSpec, on_ready: Any = None) -> LoadResult:
    """Encode the phase's bodies (untimed), open one keep-alive connection per sender, call
    ``on_ready()`` (a blocking hook: e.g. wait for a go signal), then post everything and
    return the measurements. Runs in the calling process, on uvloop when available."""
    t0 = time.perf_counter()
    bodies = encode_tenants_phase(spec) if spec.tokens else encode_phase(spec)
    result = LoadResult(
        batch_size=spec.batch_size,
        senders=spec.senders,
        encoded_batches=sum(len(b) for b in bodies),
        encoded_bytes=sum(len(x) for b in bodies for x in b),
        encode_s=time.perf_counter() - t0,
    )
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    runner(_post_all(spec, bodies, result, on_ready))
    return result


def load_child() -> None:
    """Body of the :class:`LoadProcess` subprocess: a pickled :class:`LoadSpec` on stdin,
    then ``ready`` on stdout, ``go`` on stdin, and the result as one JSON line on stdout."""
    spec = pickle.load(sys.stdin.buffer)

    def ready() -> None:
        print("ready", flush=True)
        if sys.stdin.readline().strip() != "go":
            raise SystemExit(1)

    try:
        result: dict[str, Any] = run_load(spec, ready).as_dict()
    except BaseException as exc:  # noqa: BLE001 - the parent reports it
        result = {"error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(result), flush=True)


_CHILD = "from bench.load import load_child; load_child()"


class LoadProcess:
    """:func:`run_load` in a separate Python process (``python -c``, so it does not depend
    on the caller's ``__main__``), with a start handshake so that the caller can take
    readings right before and after the timed part::

        with LoadProcess(spec) as load:
            load.wait_ready()   # bodies encoded, connections open
            ...                 # readings before
            result = load.go()  # timed phase; returns LoadResult.as_dict()
    """

    def __init__(self, spec: LoadSpec) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=False,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in, self._out = self.proc.stdin, self.proc.stdout
        pickle.dump(spec, self._in)
        self._in.flush()

    def _line(self) -> str:
        line = self._out.readline().decode().strip()
        if not line:
            code = self.proc.wait(30)
            raise RuntimeError(f"the load generator exited with {code} (its stderr is above)")
        return line

    def wait_ready(self) -> None:
        line = self._line()
        if line != "ready":
            raise RuntimeError(f"load generator: {line}")

    def go(self) -> dict[str, Any]:
        self._in.write(b"go\n")
        self._in.flush()
        result: dict[str, Any] = json.loads(self._line())
        if "error" in result:
            raise RuntimeError(f"load generator failed: {result['error']}")
        return result

    def close(self) -> None:
        for f in (self._in, self._out):
            f.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def __enter__(self) -> LoadProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
