"""SIGKILL the server between webhook attempts and in the middle of one: every event still
arrives, and every copy of one event carries the same ``X-Uptally-Delivery`` (at least once;
receivers dedupe by that id).

The receiver (in this test, on 127.0.0.1) fails each delivery's first two attempts; the first
third attempt it hangs, and the server is killed while that request is open. Three events
are written by a store of their own before the server first starts, two more sent through
``POST .../webhooks/{id}/test``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict

import aiohttp
import pytest

from core.store import Store
from server.testing import TEST_PLANS, ProcessServer, provision
from tests.support.receiver import HANG, Hit, Receiver

pytestmark = pytest.mark.slow

SETTINGS = {
    "UPTALLY_WEBHOOK_BACKOFF_S": "0.3",
    "UPTALLY_WEBHOOK_TIMEOUT_S": "5",
    "UPTALLY_CHECKPOINT_INTERVAL_S": "0.3",
}


def event_of(hit: Hit) -> str:
    return str(json.loads(hit.body)["id"])


def test_killed_between_and_during_attempts_every_event_arrives_under_one_id(tmp_path) -> None:
    data = tmp_path / "db"
    setup = provision(data, {"acme": "standard"})
    hung: list[Hit] = []

    def answer(n: int, hit: Hit) -> int:
        earlier = sum(h.delivery == hit.delivery for h in receiver.hits) - 1  # this one counted
        if earlier < 2:
            return 500
        if not hung:
            hung.append(hit)
            return HANG  # the server is killed while this request is open
        return 200

    receiver = Receiver(answer)

    async def api(server: ProcessServer, method: str, path: str) -> dict:
        headers = {"Authorization": f"Bearer {setup.staff}"}
        async with aiohttp.ClientSession() as session:
            async with session.request(method, server.url + path, headers=headers) as r:
                assert r.status < 300, await r.text()
                return dict(await r.json())

    async def all_delivered(server: ProcessServer) -> list[dict]:
        deadline = time.monotonic() + 20
        while True:
            events = (await api(server, "GET", "/v1/tenants/acme/events"))["events"]
            states = [d["state"] for e in events for d in e["deliveries"]]
            if len(events) == 5 and states == ["delivered"] * 5:
                return events
            assert time.monotonic() < deadline, events
            await asyncio.sleep(0.05)

    async def run() -> list[dict]:
        servers: list[ProcessServer] = []

        async def start() -> ProcessServer:
            port = servers[0].port if servers else None
            server = await asyncio.to_thread(ProcessServer, data, port=port, **SETTINGS)
            servers.append(server)
            return server

        async with receiver:
            with Store(data, tiers=TEST_PLANS) as store:
                tenant = store.tenant("acme").id
                _, endpoint = store.add_endpoint(tenant, receiver.url())
                kinds = ("incident.opened", "incident.closed", "alert.flapping")
                store.emit(
                    tenant, [(kind, {"n": n}) for n, kind in enumerate(kinds)], time.time_ns()
                )
            try:
                server = await start()
                for _ in range(2):
                    await api(server, "POST", f"/v1/tenants/acme/webhooks/{endpoint.id}/test")
                # between attempts: once a few first attempts failed
                await receiver.wait_for(4)
                await asyncio.to_thread(server.kill)
                server = await start()
                # during one: the first third attempt hangs until the server is gone
                await receiver.wait_until(lambda hits: bool(hung))
                await asyncio.to_thread(server.kill)
                server = await start()
                events = await all_delivered(server)
                assert await asyncio.to_thread(server.terminate) == 0
            finally:
                for server in servers:
                    await asyncio.to_thread(server.kill)
        return events

    events = asyncio.run(run())
    by_event: dict[str, set[str]] = defaultdict(set)
    for hit in receiver.hits:
        by_event[event_of(hit)].add(hit.delivery)
    logged = {e["id"]: e["deliveries"][0]["id"] for e in events}
    assert len(logged) == 5
    assert {event: ids for event, ids in by_event.items()} == {
        event: {delivery} for event, delivery in logged.items()
    }
    # the attempt cut short by the kill was made again, under the same id, and answered
    (cut,) = hung
    again = [h for h in receiver.hits if h.delivery == cut.delivery and h.at > cut.at]
    assert again, "the interrupted delivery was not retried after the restart"
    for event in events:
        # recorded: the failures that returned before a kill, then the 2xx; an attempt that
        # a kill cut short, or whose answer came just before one, is not among them
        statuses = [a["status"] for a in event["deliveries"][0]["attempts"]]
        assert statuses[-1] == 200 and set(statuses[:-1]) <= {500}, statuses
        hits = [h for h in receiver.hits if event_of(h) == event["id"]]
        assert len(hits) >= 3 and hits[-1].delivery == event["deliveries"][0]["id"]
