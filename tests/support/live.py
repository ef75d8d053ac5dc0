"""Start the real server on 127.0.0.1 for a test: in a thread of this process, or as a
separate ``uptally serve`` process (for signal tests)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from aiohttp import web

from core.store import Store
from core.tiers import Tier
from server.app import RUNNER_KWARGS, create_app
from server.config import Config
from server.state import STATE, ServerState

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Setup:
    """Tenants and tokens made before the server starts."""

    ingest: dict[str, str]
    read: dict[str, str]
    staff: str


def provision(data: Path, tenants: dict[str, str]) -> Setup:
    """Create tenants (name -> plan) with an ingest and a read token each, and a staff token."""
    ingest, read = {}, {}
    with Store(data, tiers=TEST_PLANS) as store:
        for name, plan in tenants.items():
            tenant = store.add_tenant(name, plan=plan)
            ingest[name] = store.add_token(tenant.id, "ingest")[0]
            read[name] = store.add_token(tenant.id, "read")[0]
        staff = store.add_token(None, "staff")[0]
    return Setup(ingest, read, staff)


TEST_PLANS = {
    "standard": Tier(rate_fps=1e9),
    "slow": Tier(rate_fps=100.0, burst_s=1.0),
}


def server_config(data: Path, **overrides: object) -> Config:
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
        except BaseException as exc:  # noqa: BLE001 - reported to the test
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


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    """Resident memory of a process, MiB: all of it, or one part of it such as ``RssAnon``
    (the heap and other private memory) or ``RssFile`` (file pages, LMDB's map among them)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ProcessServer:
    """``uptally serve`` in a child process (python -m uptally serve)."""

    def __init__(
        self, data: Path, config_path: Path | None = None, port: int | None = None, **env: str
    ) -> None:
        self.port = port or free_port()
        self.data = data
        cmd = [sys.executable, "-m", "uptally", "serve", "--data", str(data)]
        if config_path is not None:
            cmd += ["--config", str(config_path)]
        environ = {**os.environ, "UPTALLY_PORT": str(self.port), "UPTALLY_HOST": "127.0.0.1", **env}
        self.proc = subprocess.Popen(
            cmd, cwd=REPO, env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        self._wait_ready()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                out = self.proc.stdout.read().decode() if self.proc.stdout else ""
                raise RuntimeError(f"server exited with {self.proc.returncode}: {out}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.kill()
        raise RuntimeError("server did not start")

    def terminate(self, timeout: float = 60.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """Make sure the process is gone and its pipe closed."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def output(self) -> str:
        return self.proc.stdout.read().decode() if self.proc.stdout else ""
