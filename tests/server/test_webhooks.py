"""Webhooks on the real server (127.0.0.1) to a real receiver in the test: signed POSTs that
verify with the endpoint's secret, retries under one delivery id with doubling delays, a
timeout as a failure, eight attempts then ``failed``, filters, and the routes' rules.

The backoff is shortened (``webhook_backoff_s``); the delays are judged by the receiver's
clock, at arrival.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from core.webhooks import verify
from server.testing import Setup, ThreadServer, provision, server_config, thread_server
from tests.support.receiver import HANG, Hit, Receiver


@dataclass
class Live:
    server: ThreadServer
    setup: Setup
    session: aiohttp.ClientSession

    async def call(
        self,
        method: str,
        path: str,
        token: str | None = None,
        body: Any = None,
        raw: bytes | None = None,
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token or self.setup.staff}"}
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        async with self.session.request(
            method, self.server.url + path, data=data, headers=headers
        ) as r:
            answer = await r.read()
            return r.status, json.loads(answer) if answer else None

    async def add(self, tenant: str, url: str, **body: Any) -> dict[str, Any]:
        status, answer = await self.call(
            "POST", f"/v1/tenants/{tenant}/webhooks", body={"url": url, **body}
        )
        assert status == 201, answer
        return answer

    async def test_event(self, tenant: str, endpoint_id: int) -> dict[str, Any]:
        status, answer = await self.call(
            "POST", f"/v1/tenants/{tenant}/webhooks/{endpoint_id}/test"
        )
        assert status == 202, answer
        return answer

    async def log(self, tenant: str, query: str = "") -> list[dict[str, Any]]:
        status, answer = await self.call("GET", f"/v1/tenants/{tenant}/events{query}")
        assert status == 200, answer
        return answer["events"]

    async def delivery(self, tenant: str, event_id: str) -> dict[str, Any]:
        """The event's one delivery, as the alert log shows it."""
        (event,) = [e for e in await self.log(tenant) if e["id"] == event_id]
        (delivery,) = event["deliveries"]
        return delivery

    async def settled(self, tenant: str, event_id: str, timeout: float = 20.0) -> dict[str, Any]:
        """The delivery once it is no longer pending."""
        return await until(
            lambda: self.delivery(tenant, event_id), lambda d: d["state"] != "pending", timeout
        )


async def until(
    read: Callable[[], Awaitable[Any]], done: Callable[[Any], bool], timeout: float = 20.0
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await read()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still {value!r} after {timeout} s")
        await asyncio.sleep(0.02)


@asynccontextmanager
async def live_server(tmp_path, **settings: Any) -> AsyncIterator[Live]:
    data = tmp_path / "db"
    setup = provision(data, {"acme": "standard", "bolt": "standard"})
    config = server_config(data, **{"webhook_backoff_s": 0.2, "webhook_timeout_s": 2.0, **settings})
    with thread_server(config) as server:
        async with aiohttp.ClientSession() as session:
            yield Live(server, setup, session)


def signed_by(secret: str, hit: Hit) -> bool:
    return verify(
        secret,
        hit.headers.get("X-Uptally-Timestamp"),
        hit.headers.get("X-Uptally-Signature"),
        hit.body,
        now_s=time.time(),
    )


# --- delivery --------------------------------------------------------------------------------


def test_a_test_event_arrives_signed_with_the_endpoints_secret(tmp_path) -> None:
    async def go() -> None:
        async with Receiver() as receiver, live_server(tmp_path) as live:
            endpoint = await live.add("acme", receiver.url(), description="ops")
            other = await live.add("acme", receiver.url("/other"))
            event = await live.test_event("acme", endpoint["id"])
            (hit,) = await receiver.wait_for(1)
            assert hit.path == "/hook"  # that endpoint only, not the other one
            assert signed_by(endpoint["secret"], hit)
            assert not signed_by(other["secret"], hit)
            assert hit.headers["Content-Type"] == "application/json"
            assert hit.delivery == event["deliveries"][0]["id"]
            sent = json.loads(hit.body)
            assert sent == {
                "id": event["id"],
                "type": "webhook.test",
                "created_at": event["created_at"],
                "tenant": "acme",
                "data": event["data"],
            }
            assert hit.body == json.dumps(sent, separators=(",", ":"), sort_keys=True).encode()
            delivery = await live.settled("acme", event["id"])
            assert delivery["state"] == "delivered"
            assert [a["status"] for a in delivery["attempts"]] == [200]
            assert delivery["attempts"][0]["error"] is None
            assert len(receiver.hits) == 1

    asyncio.run(go())


def test_a_failing_receiver_gets_retries_under_one_id_with_doubling_delays(tmp_path) -> None:
    failures = 3

    async def go() -> None:
        async with Receiver(lambda n, hit: 500 if n < failures else 204) as receiver:
            async with live_server(tmp_path) as live:
                endpoint = await live.add("acme", receiver.url())
                event = await live.test_event("acme", endpoint["id"])
                hits = await receiver.wait_for(failures + 1)
                delivery = await live.settled("acme", event["id"])
        assert {hit.delivery for hit in hits} == {delivery["id"]}
        assert all(signed_by(endpoint["secret"], hit) for hit in hits)
        assert {hit.body for hit in hits} == {hits[0].body}
        gaps = [b.at - a.at for a, b in itertools.pairwise(hits)]
        # 0.2 s, 0.4 s, 0.8 s after each failure; timers and threads may add a little
        assert gaps[0] >= 0.2 - 0.02, gaps
        for before, after in itertools.pairwise(gaps):
            assert after >= 1.5 * before - 0.05, gaps
        assert gaps[-1] < 0.8 + 0.6, gaps  # not waiting for a poll: due times are kept
        assert delivery["state"] == "delivered"
        assert [a["status"] for a in delivery["attempts"]] == [500, 500, 500, 204]
        assert [a["error"] for a in delivery["attempts"]] == ["HTTP 500"] * 3 + [None]
        assert len(receiver.hits) == failures + 1

    asyncio.run(go())


def test_no_answer_within_the_timeout_is_a_failed_attempt(tmp_path) -> None:
    async def go() -> None:
        async with Receiver(lambda n, hit: HANG if n == 0 else 200) as receiver:
            async with live_server(tmp_path, webhook_timeout_s=0.3) as live:
                endpoint = await live.add("acme", receiver.url())
                event = await live.test_event("acme", endpoint["id"])
                first, second = await receiver.wait_for(2)
                delivery = await live.settled("acme", event["id"])
        assert first.delivery == second.delivery == delivery["id"]
        assert second.at - first.at >= 0.3 + 0.2 - 0.02  # the timeout, then the backoff
        assert delivery["state"] == "delivered"
        timed_out, answered = delivery["attempts"]
        assert (timed_out["status"], timed_out["error"]) == (None, "no answer in 0.3 s")
        assert 300 <= timed_out["took_ms"] < 2000
        assert (answered["status"], answered["error"]) == (200, None)

    asyncio.run(go())


def test_eight_failed_attempts_and_the_delivery_is_failed(tmp_path) -> None:
    async def go() -> None:
        async with Receiver(lambda n, hit: 503) as receiver:
            async with live_server(tmp_path, webhook_backoff_s=0.01) as live:
                endpoint = await live.add("acme", receiver.url())
                event = await live.test_event("acme", endpoint["id"])
                await receiver.wait_for(8)
                delivery = await live.settled("acme", event["id"])
                assert live.server.state.store.pending_deliveries() == []
        assert delivery["state"] == "failed" and delivery["error"] == "HTTP 503"
        assert [a["status"] for a in delivery["attempts"]] == [503] * 8
        assert delivery["next_attempt_at"] is None
        # given up once the eighth was recorded: nothing was left to send a ninth
        assert len(receiver.hits) == 8

    asyncio.run(go())


def test_emitted_events_reach_the_endpoints_whose_filters_match(tmp_path) -> None:
    async def go() -> None:
        async with Receiver() as receiver, live_server(tmp_path) as live:
            everything = await live.add("acme", receiver.url("/all"))
            incidents = await live.add("acme", receiver.url("/inc"), events=["incident.*"])
            await live.add("bolt", receiver.url("/bolt"))
            state = live.server.state
            events = [("incident.opened", {"device": "d1"}), ("alert.flapping", {"device": "d2"})]
            # as the evaluator does: emit in the writer thread, then wake the deliverer

            async def emit() -> object:
                return await state.writer.call(lambda: state.store.emit(1, events, time.time_ns()))

            done = asyncio.run_coroutine_threadsafe(emit(), live.server.loop)
            await asyncio.wrap_future(done)
            state.deliverer.wake()  # from this thread: wake is safe from any
            hits = await receiver.wait_for(3)
            await until(
                lambda: live.log("acme"),
                lambda log: all(d["state"] == "delivered" for e in log for d in e["deliveries"]),
            )
            got = sorted((hit.path, json.loads(hit.body)["type"]) for hit in hits)
            assert got == [
                ("/all", "alert.flapping"),
                ("/all", "incident.opened"),
                ("/inc", "incident.opened"),
            ]
            for hit in hits:
                secret = everything["secret"] if hit.path == "/all" else incidents["secret"]
                assert signed_by(secret, hit)
            assert len({hit.delivery for hit in hits}) == 3  # one id per event and endpoint
            assert await live.log("bolt") == []

    asyncio.run(go())


# --- the routes ----------------------------------------------------------------------------------


def test_staff_manage_endpoints_and_readers_only_list_them(tmp_path) -> None:
    async def go() -> None:
        async with live_server(tmp_path) as live:
            read = live.setup.read
            path = "/v1/tenants/acme/webhooks"
            body = {"url": "https://hooks.example.com/u", "events": ["incident.*"]}
            assert (await live.call("POST", path, read["acme"], body))[0] == 403
            created = await live.add("acme", **body, description="noc")
            assert created["secret"].startswith("whsec_")
            assert created["created_by"].endswith("(staff)")
            status, listed = await live.call("GET", path, read["acme"])
            assert status == 200
            shown = {k: v for k, v in created.items() if k != "secret"}
            assert listed == {"tenant": "acme", "webhooks": [shown]}
            assert created["secret"] not in json.dumps(listed)
            assert (await live.call("GET", path, read["bolt"]))[0] == 403
            assert (await live.call("GET", "/v1/tenants/bolt/webhooks"))[1]["webhooks"] == []
            # bolt's path does not know acme's endpoint: as one that does not exist
            item = f"{path}/{created['id']}"
            other = f"/v1/tenants/bolt/webhooks/{created['id']}"
            assert (await live.call("DELETE", other))[0] == 404
            assert (await live.call("POST", f"{other}/test"))[0] == 404
            assert (await live.call("POST", f"{item}/test", read["acme"]))[0] == 403
            assert (await live.call("DELETE", item, read["acme"]))[0] == 403
            assert (await live.call("POST", f"{path}/99/test"))[0] == 404
            assert (await live.call("DELETE", f"{path}/nope"))[0] == 404
            assert await live.call("DELETE", item) == (204, None)
            assert (await live.call("DELETE", item))[0] == 404
            assert (await live.call("GET", path))[1]["webhooks"] == []

    asyncio.run(go())


@pytest.mark.parametrize(
    "body, detail",
    [
        ({"url": "ftp://example.com/h"}, "url"),
        ({"url": "https://"}, "host"),
        ({"url": 12}, "url"),
        ({}, "url"),
        ({"url": "https://example.com/h", "events": "incident.*"}, "events"),
        ({"url": "https://example.com/h", "events": []}, "events"),
        ({"url": "https://example.com/h", "events": ["incident*"]}, "incident*"),
        ({"url": "https://example.com/h", "secret": "mine"}, "secret"),
        ({"url": "https://example.com/h", "description": 5}, "description"),
        ([1], "object"),
    ],
)
def test_a_bad_endpoint_is_400_saying_why_and_stores_nothing(tmp_path, body, detail) -> None:
    async def go() -> None:
        async with live_server(tmp_path) as live:
            path = "/v1/tenants/acme/webhooks"
            status, answer = await live.call("POST", path, body=body)
            assert status == 400 and detail in answer["detail"], answer
            assert (await live.call("POST", path, raw=b"{nope"))[0] == 400
            assert (await live.call("GET", path))[1]["webhooks"] == []
            assert live.server.state.store.slab.entries(b"endpoints") == 0

    asyncio.run(go())


def test_the_alert_log_is_the_tenants_own_newest_first_and_filtered(tmp_path) -> None:
    async def go() -> None:
        async with Receiver() as receiver, live_server(tmp_path) as live:
            endpoint = await live.add("acme", receiver.url())
            first = await live.test_event("acme", endpoint["id"])
            second = await live.test_event("acme", endpoint["id"])
            await receiver.wait_for(2)
            read = live.setup.read
            status, answer = await live.call("GET", "/v1/tenants/acme/events", read["acme"])
            assert status == 200
            assert [e["id"] for e in answer["events"]] == [second["id"], first["id"]]
            assert (await live.call("GET", "/v1/tenants/acme/events", read["bolt"]))[0] == 403
            assert await live.log("bolt") == []
            assert [e["id"] for e in await live.log("acme", "?limit=1")] == [second["id"]]
            assert await live.log("acme", "?type=incident.*") == []
            assert len(await live.log("acme", "?type=webhook.*&type=incident.*")) == 2
            assert await live.log("acme", "?to=2000-01-01T00:00:00Z") == []
            since = first["created_at"]
            assert len(await live.log("acme", f"?from={since}")) == 2
            for query in (
                "?limit=0",
                "?limit=x",
                "?type=Bad Type",
                "?from=2030-01-01&to=2020-01-01",
            ):
                status, answer = await live.call("GET", f"/v1/tenants/acme/events{query}")
                assert status == 400, (query, answer)

    asyncio.run(go())


def test_deleting_an_endpoint_fails_what_it_had_pending(tmp_path) -> None:
    async def go() -> None:
        async with Receiver(lambda n, hit: 500) as receiver:
            async with live_server(tmp_path, webhook_backoff_s=60.0) as live:
                endpoint = await live.add("acme", receiver.url())
                event = await live.test_event("acme", endpoint["id"])
                await receiver.wait_for(1)
                await until(
                    lambda: live.delivery("acme", event["id"]), lambda d: len(d["attempts"]) == 1
                )
                path = f"/v1/tenants/acme/webhooks/{endpoint['id']}"
                assert (await live.call("DELETE", path))[0] == 204
                delivery = await live.delivery("acme", event["id"])
        assert (delivery["state"], delivery["error"]) == ("failed", "endpoint deleted")
        assert [a["status"] for a in delivery["attempts"]] == [500]

    asyncio.run(go())
