"""The watching end to end on the live server (127.0.0.1): the evaluator's events reach a
real receiver signed with the endpoint's secret, and a flapping device sends one
``device.flapping`` event, then nothing more about it while it goes on flapping."""

from __future__ import annotations

import asyncio
import json
import time

import msgpack

from core.watch import LABELS
from tests.server.test_webhooks import live_server, signed_by, until
from tests.support.receiver import Receiver


def test_a_flapping_device_sends_one_flapping_event(tmp_path) -> None:
    async def run() -> None:
        async with (
            Receiver() as receiver,
            live_server(tmp_path, evaluate_interval_s=0.2, watch_start_grace_s=0.0) as live,
        ):
            endpoint = await live.add("acme", receiver.url(), events=["device.*", "alert.*"])
            seq = 0
            first = int(time.time())  # then ahead by a second a frame: well inside the skew

            async def send(status: int) -> None:
                """A frame a second after the one before: a frame of the same second would
                tie, and a tie keeps the greater status (the merge rule)."""
                nonlocal seq
                seq += 1
                frames = [["door", first + seq, status]]
                body = msgpack.packb({"gateway": "gw", "seq": seq, "frames": frames})
                headers = {
                    "Authorization": f"Bearer {live.setup.ingest['acme']}",
                    "Content-Type": "application/msgpack",
                }
                url = live.server.url + "/v1/ingest"
                async with live.session.post(url, data=body, headers=headers) as answer:
                    assert answer.status == 200, await answer.text()

            async def seen(label: str) -> None:
                """Until a pass of the evaluator has seen the door in state ``label``."""
                watcher = live.server.state.watcher
                assert watcher is not None
                tenant_id = live.setup.tenant_ids["acme"]

                def state() -> str | None:
                    memory = watcher.memory.get(tenant_id)
                    if memory is None or not len(memory.states):
                        return None
                    return LABELS[int(memory.states[0])]

                await until(lambda: asyncio.sleep(0, state()), lambda s: s == label)

            # the door reports a fault, then not, then a fault ...: each state is stored and
            # seen by a pass before the next; the fifth change within 30 minutes flaps
            for flip in range(12):
                await send(3 if flip % 2 else 0)
                await seen("fault" if flip % 2 else "online")
            events = [json.loads(hit.body) for hit in receiver.hits]
            flapping = [e for e in events if e["type"] == "device.flapping"]
            assert len(flapping) == 1 and flapping[0]["data"]["device"] == "door"
            # its fault alert went out at the first changes, and not once it flapped
            about_door = [e["type"] for e in events if e["data"].get("device") == "door"]
            cut = about_door.index("device.flapping")
            assert about_door[:cut] == [
                "alert.firing",
                "alert.resolved",
                "alert.firing",
                "alert.resolved",
            ]
            assert about_door[cut + 1 :] == []
            assert all(signed_by(endpoint["secret"], hit) for hit in receiver.hits)
            # every event has its own delivery id, sent once (the receiver answered 200)
            ids = [hit.delivery for hit in receiver.hits]
            assert len(ids) == len(set(ids))

    asyncio.run(run())
