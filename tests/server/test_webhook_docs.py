"""The receiver of ``docs/webhooks.md`` (``docs/examples/receiver.py``, the page's copy the
same): its verification agrees with ``core.webhooks``, and run against the live server it
takes each delivery once and refuses what Uptally did not sign."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import threading
import time
import urllib.error
import urllib.request
from types import ModuleType

import pytest

from core import webhooks
from server.testing import REPO, ThreadServer, provision, server_config, thread_server

SAMPLE = REPO / "docs" / "examples" / "receiver.py"


def load_sample() -> ModuleType:
    spec = importlib.util.spec_from_file_location("webhook_receiver_sample", SAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sample = load_sample()


def in_writer(server: ThreadServer, fn):
    """Run ``fn`` in the server's writer thread, as its routes do, and return its result."""

    async def call():
        return await server.state.writer.call(fn)

    return asyncio.run_coroutine_threadsafe(call(), server.loop).result(30)


def test_the_page_shows_the_sample_file_as_it_is() -> None:
    page = (REPO / "docs" / "webhooks.md").read_text()
    shown = page.split("```python\n")[1].split("```")[0]
    assert shown == SAMPLE.read_text()


@pytest.mark.parametrize(
    "secret, timestamp, body, now_s",
    [
        ("whsec_k", "1772323260", b'{"id":"evt_1"}', 1_772_323_260),  # good
        ("whsec_k", "1772323260", b'{"id":"evt_1"}', 1_772_323_560),  # 300 s late: good
        ("whsec_k", "1772323260", b'{"id":"evt_1"}', 1_772_323_561),  # 301 s: replayed
        ("whsec_k", "1772323260", b'{"id":"evt_1"}', 1_772_322_959),  # from the future
        ("whsec_other", "1772323260", b'{"id":"evt_1"}', 1_772_323_260),  # another key
        ("whsec_k", "1772323261", b'{"id":"evt_1"}', 1_772_323_260),  # another timestamp
        ("whsec_k", "1772323260", b'{"id":"evt_2"}', 1_772_323_260),  # another body
        ("whsec_k", "", b"{}", 1_772_323_260),
        ("whsec_k", "-5", b"{}", 1_772_323_260),
    ],
)
def test_the_samples_verify_agrees_with_the_servers_signature(
    secret, timestamp, body, now_s
) -> None:
    signature = webhooks.sign("whsec_k", 1_772_323_260, b'{"id":"evt_1"}')
    assert sample.verify(secret, timestamp, signature, body, now_s) is webhooks.verify(
        secret, timestamp, signature, body, now_s
    )
    assert sample.verify("whsec_k", "1772323260", None, body, now_s) is False
    assert sample.verify("whsec_k", "1772323260", signature[:-1], body, now_s) is False


def test_the_sample_takes_each_delivery_once_and_refuses_forgeries(tmp_path) -> None:
    data = tmp_path / "db"
    provision(data, {"acme": "standard"})
    handled: list[dict] = []
    arrived = threading.Condition()

    def handle(event: dict) -> None:
        with arrived:
            handled.append(event)
            arrived.notify_all()

    config = server_config(data, webhook_backoff_s=0.2)
    with thread_server(config) as server:
        store = server.state.store
        receiver = sample.Receiver(("127.0.0.1", 0), "", handle)
        thread = threading.Thread(target=receiver.serve_forever, daemon=True)
        thread.start()
        try:
            url = f"http://127.0.0.1:{receiver.server_address[1]}/uptally"
            receiver.secret, _ = in_writer(server, lambda: store.add_endpoint(1, url))
            events = in_writer(
                server, lambda: store.emit(1, [("incident.opened", {"d": "d1"})], time.time_ns())
            )
            server.state.deliverer.wake()
            with arrived:
                assert arrived.wait_for(lambda: len(handled) == 1, timeout=20)
            assert handled == [json.loads(events[0].body)]

            def post(body: bytes, delivery: str, secret: str, ts: int) -> int:
                headers = {
                    "X-Uptally-Timestamp": str(ts),
                    "X-Uptally-Signature": webhooks.sign(secret, ts, body),
                    "X-Uptally-Delivery": delivery,
                }
                request = urllib.request.Request(url, body, headers, method="POST")
                try:
                    with urllib.request.urlopen(request, timeout=10) as answer:
                        return int(answer.status)
                except urllib.error.HTTPError as exc:
                    return exc.code

            now = int(time.time())
            delivery = f"dlv_{events[0].delivery_ids[0]}"
            # a retry of that delivery (freshly signed, as Uptally retries): acknowledged only
            assert post(events[0].body, delivery, receiver.secret, now) == 204
            assert post(b'{"forged":1}', "dlv_999", "whsec_guess", now) == 401
            assert post(events[0].body, "dlv_998", receiver.secret, now - 301) == 401
            assert len(handled) == 1
            deadline = time.monotonic() + 20
            while store.events(1)[0].deliveries[0].state == "pending":  # recorded after the 204
                assert time.monotonic() < deadline
                time.sleep(0.02)
            (logged,) = store.events(1)
            assert logged.deliveries[0].state == "delivered"
            assert [a.status for a in logged.deliveries[0].attempts] == [204]
        finally:
            receiver.shutdown()
            receiver.server_close()
            thread.join(10)
