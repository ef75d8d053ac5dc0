"""A live server for tests and benchmarks, as aiohttp has ``aiohttp.test_utils``.

The real server on 127.0.0.1, started two ways: :class:`ThreadServer` (``thread_server``)
serves the app on its own event loop in a thread of the caller's process, so a test can reach
into its state; :class:`ProcessServer` runs ``python -m uptally serve`` as a child process,
for signals, crashes, memory and CPU readings of a server alone in its process. Around them:
:func:`provision` makes tenants and tokens in a store before a server opens it,
:func:`server_config` is the config of a server under test, :func:`free_port` finds a port,
and :func:`rss_mib` and :func:`cpu_seconds` read a process's memory and CPU from ``/proc``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

from aiohttp import web

from core.store import Store
from core.tiers import Tier
from server.app import RUNNER_KWARGS, create_app
from server.config import Config
from server.state import STATE, ServerState

#: The tree these packages are imported from (the checkout, in development). Child processes
#: start there, so that ``python -m uptally`` imports the same code as their parent.
REPO = Path(__file__).resolve().parents[1]
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


# --- tenants and tokens --------------------------------------------------------------------


@dataclass
class Setup:
    """Tenants and tokens made before the server starts, by tenant name."""

    ingest: dict[str, str]
    read: dict[str, str]
    staff: str
    tenant_ids: dict[str, int]


def provision(data: Path, tenants: dict[str, str]) -> Setup:
    """Create tenants (name -> plan) with an ingest and a read token each, and a staff token."""
    ingest, read, tenant_ids = {}, {}, {}
    with Store(data, tiers=TEST_PLANS) as store:
        for name, plan in tenants.items():
            tenant = store.add_tenant(name, plan=plan)
            tenant_ids[name] = tenant.id
            ingest[name] = store.add_token(tenant.id, "ingest")[0]
            read[name] = store.add_token(tenant.id, "read")[0]
        staff = store.add_token(None, "staff")[0]
    return Setup(ingest, read, staff, tenant_ids)


# --- a server in a thread ------------------------------------------------------------------

#: The plans of a server under test: "standard" without an effective limit, "slow" limited.
TEST_PLANS = {
    "standard": Tier(rate_fps=1e9),
    "slow": Tier(rate_fps=100.0, burst_s=1.0),
}


def server_config(data: Path, **overrides: object) -> Config:
    """A config for a server under test: any port, quick checkpoints, a small map."""
    base = Config(
        data=str(data), port=0, checkpoint_interval_s=0.2, tiers=TEST_PLANS, map_size=64 << 20
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


class ThreadServer:
    """The app served by an AppRunner on its own event loop in a thread."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.app = create_app(config)
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0
        self.error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def state(self) -> ServerState:
        return self.app[STATE]

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._serve())
        except BaseException as exc:  # noqa: BLE001 - reported to the caller
            self.error = exc
            self._ready.set()

    async def _serve(self) -> None:
        runner = web.AppRunner(self.app, **RUNNER_KWARGS)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = runner.addresses[0][1]
        self._stop = asyncio.Event()
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()

    def start(self) -> ThreadServer:
        self._thread.start()
        self._ready.wait(30)
        if self.error:
            raise self.error
        return self

    def stop(self) -> None:
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)
        self.loop.close()


@contextmanager
def thread_server(config: Config) -> Iterator[ThreadServer]:
    server = ThreadServer(config).start()
    try:
        yield server
    finally:
        server.stop()


# --- a server in its own process -----------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ProcessServer:
    """``uptally serve`` in a child process (``python -m uptally serve``) on 127.0.0.1.

    ``env`` adds to this process's environment (``UPTALLY_*`` settings); an empty value
    removes the variable. Its output goes to a pipe (read with :meth:`output` once it has
    exited) or, with ``log``, to that file. ``argv`` runs another server program in its
    place (the arguments after ``python``), one that listens on ``port`` and answers
    ``/healthz`` likewise. The server is ready when ``/healthz`` answers; its answer is kept
    in :attr:`health`.
    """

    def __init__(
        self,
        data: Path,
        config_path: Path | None = None,
        port: int | None = None,
        *,
        log: Path | None = None,
        argv: Sequence[str] | None = None,
        ready_timeout_s: float = 30.0,
        **env: str,
    ) -> None:
        self.port = port or free_port()
        self.data = data
        self.log_path = log
        if argv is None:
            argv = ["-m", "uptally", "serve", "--data", str(data)]
            if config_path is not None:
                argv = [*argv, "--config", str(config_path)]
        environ = {**os.environ, "UPTALLY_PORT": str(self.port), "UPTALLY_HOST": "127.0.0.1"}
        for name, value in env.items():
            if value:
                environ[name] = value
            else:
                environ.pop(name, None)
        self._log: IO[bytes] | None = open(log, "wb") if log else None  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, *argv],
            cwd=REPO,
            env=environ,
            stdout=self._log or subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.health = self._wait_ready(ready_timeout_s)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _wait_ready(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.output()}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as r:
                    health: dict[str, Any] = json.loads(r.read())
                    return health
            except OSError:
                time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"server did not start: {self.output()}")

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM, then wait for the exit code (``TimeoutExpired`` if it does not come)."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def stop(self, timeout: float = 120.0) -> int:
        """SIGTERM, then wait: the server finishes in-flight requests, commits and
        checkpoints. Returns the exit code, -9 if it had to be killed after ``timeout``."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            code = -9
        self._close_output()
        return code

    def kill(self) -> None:
        """Make sure the process is gone and its output closed."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        self._close_output()

    def _close_output(self) -> None:
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        if self._log is not None:
            self._log.close()

    def output(self) -> str:
        """What the server printed: its log file so far, or the pipe up to its end (so only
        once the process has exited)."""
        if self.log_path is not None:
            try:
                return self.log_path.read_text(errors="replace")
            except OSError:
                return ""
        if self.proc.stdout is None or self.proc.stdout.closed:
            return ""
        return self.proc.stdout.read().decode()


# --- readings of a process -----------------------------------------------------------------


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    """Resident memory of a process, MiB: all of it, or one part of it such as ``RssAnon``
    (the heap and other private memory) or ``RssFile`` (file pages, LMDB's map among them)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field}")


def cpu_seconds(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) of a process and of its threads, from ``/proc``:
    ``{"total", "main", "others"}``; main is the thread whose id is the process id (the
    server's event loop), others the decode pool and the writer."""

    def read(path: str) -> float:
        with open(path) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    total = read(f"/proc/{pid}/stat")
    main = read(f"/proc/{pid}/task/{pid}/stat")
    return {"total": total, "main": main, "others": total - main}
