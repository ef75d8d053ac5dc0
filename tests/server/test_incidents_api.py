"""Incidents on the live server (127.0.0.1): the evaluator opens one from the stored slots,
staff acknowledge and resolve it over the API, a client reads only its own, and a restart in
the middle of an open incident neither loses nor repeats it.

One-second slots and heartbeats so that five down slots take five seconds: device ``d``
stops while ``e`` keeps its gateway talking.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import msgpack
import pytest

from core.store import Store
from core.tiers import Tier
from server.testing import ProcessServer

FAST = Tier(rate_fps=1e9, heartbeat_s=1, min_outage=5)
CONFIG = """
[ingest]
checkpoint_interval_s = 0.2
[watch]
evaluate_interval_s = 0.2
watch_start_grace_s = 0
[tiers.fast]
rate_fps = 1000000
heartbeat_s = 1
min_outage = 5
"""


def call(
    url: str, token: str, method: str = "GET", body: Any = None, raw: bytes | None = None
) -> tuple[int, Any]:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    headers = {"Authorization": f"Bearer {token}"}
    if raw is not None:
        headers["Content-Type"] = "application/msgpack"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


class Live:
    def __init__(self, tmp: Path) -> None:
        self.data = tmp / "db"
        self.config = tmp / "uptally.toml"
        self.config.write_text(CONFIG)
        with Store(self.data, tiers={"fast": FAST}) as store:
            acme = store.add_tenant("acme", plan="fast", slot_s=1)
            other = store.add_tenant("globex", plan="fast", slot_s=1)
            self.ingest = store.add_token(acme.id, "ingest")[0]
            self.read = store.add_token(acme.id, "read")[0]
            self.other_read = store.add_token(other.id, "read")[0]
            self.staff = store.add_token(None, "staff")[0]
        self.seq = 0
        self.server: ProcessServer | None = None

    def start(self) -> ProcessServer:
        self.server = ProcessServer(self.data, self.config)
        return self.server

    def send(self, devices: list[str]) -> None:
        assert self.server is not None
        self.seq += 1
        now = int(time.time())
        body = {"gateway": "gw", "seq": self.seq, "frames": [[d, now] for d in devices]}
        status, answer = call(
            f"{self.server.url}/v1/ingest", self.ingest, "POST", raw=msgpack.packb(body)
        )
        assert status == 200 and answer["accepted"] == len(devices), answer

    def incidents(self, token: str | None = None, query: str = "") -> list[dict[str, Any]]:
        assert self.server is not None
        url = f"{self.server.url}/v1/tenants/acme/incidents{query}"
        status, answer = call(url, token or self.staff)
        assert status == 200, answer
        return list(answer["incidents"])

    def feed_until(self, devices: list[str], done: Any, timeout_s: float = 30) -> Any:
        """Send a batch each second until ``done()`` answers something true."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.send(devices)
            found = done()
            if found:
                return found
            time.sleep(1)
        raise AssertionError("timed out")


@pytest.fixture
def live(tmp_path):
    live = Live(tmp_path)
    yield live
    if live.server is not None:
        live.server.kill()


def open_incident(live: Live) -> Any:
    return [i for i in live.incidents() if i["state"] == "open"]


@pytest.mark.slow
def test_an_incident_opens_survives_a_kill_and_is_answered_by_staff(live) -> None:
    live.start()
    for _ in range(3):
        live.send(["d", "e"])
        time.sleep(1)
    [incident] = live.feed_until(["e"], lambda: open_incident(live))
    assert (incident["kind"], incident["device"]) == ("device", "d")
    assert incident["started_at"] and incident["detected_at"]

    # killed mid-incident: after a restart it is there once, under its id, still open
    assert live.server is not None
    live.server.kill()
    live.start()
    for _ in range(3):  # passes go by while d is still silent
        live.send(["e"])
        time.sleep(1)
    assert [(i["id"], i["state"]) for i in live.incidents()] == [(incident["id"], "open")]

    # a client reads its own incidents, but may not answer them; another tenant sees none
    assert [i["id"] for i in live.incidents(live.read)] == [incident["id"]]
    url = f"{live.server.url}/v1/tenants/acme/incidents/{incident['id']}"
    assert call(url + "/acknowledge", live.read, "POST", {})[0] == 403
    assert call(f"{live.server.url}/v1/tenants/acme/incidents", live.other_read)[0] == 403

    # staff acknowledge it; a resolve without a note is refused and changes nothing
    status, acked = call(url + "/acknowledge", live.staff, "POST", {"note": "on it"})
    assert status == 200 and acked["state"] == "acknowledged"
    assert acked["acknowledged_at"] and acked["acknowledge_note"] == "on it"
    assert call(url + "/acknowledge", live.staff, "POST", {})[0] == 400  # once only
    status, refused = call(url + "/resolve", live.staff, "POST", {"note": "  "})
    assert status == 400 and "note" in refused["detail"]
    assert call(url, live.staff)[1]["state"] == "acknowledged"

    # d comes back: the close resolves it, at the start of its first up slot
    closed = live.feed_until(
        ["d", "e"], lambda: [i for i in live.incidents() if i["state"] == "resolved"]
    )
    assert [i["id"] for i in closed] == [incident["id"]]
    assert closed[0]["ended_at"] is not None and closed[0]["resolved_by"] is None
    assert len(live.incidents(query="?state=resolved")) == 1
    assert live.incidents(query="?state=open") == []
    assert call(f"{live.server.url}/v1/tenants/acme/incidents?state=gone", live.staff)[0] == 400


def test_alert_rules_are_the_tiers_with_the_tenants_overrides(tmp_path) -> None:
    from server.testing import provision, server_config, thread_server

    setup = provision(tmp_path / "db", {"acme": "standard"})
    with thread_server(server_config(tmp_path / "db")) as server:
        url = f"{server.url}/v1/tenants/acme/alert-rules"
        status, rules = call(url, setup.read["acme"])
        assert status == 200 and rules["overrides"] == {}
        assert rules["rules"] == rules["tier_rules"]
        assert call(url, setup.read["acme"], "PUT", {"battery_below": "15"})[0] == 403
        status, changed = call(url, setup.staff, "PUT", {"battery_below": "15", "fault": False})
        assert status == 200, changed
        assert changed["rules"]["battery_below"] == "15" and changed["rules"]["fault"] is False
        assert changed["rules"]["quiet_grace_s"] == rules["tier_rules"]["quiet_grace_s"]
        # a bad value is refused, naming it, and changes nothing
        for bad in ({"battery_below": 15.5}, {"cap_levels": [90, 80]}, {"loud": True}):
            status, refused = call(url, setup.staff, "PUT", bad)
            assert status == 400, refused
        assert call(url, setup.staff)[1]["overrides"] == {"battery_below": "15", "fault": False}
        # this month's compliance: nothing yet
        status, figures = call(
            f"{server.url}/v1/tenants/acme/incidents/compliance", setup.read["acme"]
        )
        assert status == 200 and figures["response"]["share"] is None
        assert figures["response"]["target_min"] == 60  # the standard tier's
        bad_month = f"{server.url}/v1/tenants/acme/incidents/compliance?month=2026-13"
        assert call(bad_month, setup.read["acme"])[0] == 400
        assert call(f"{server.url}/v1/tenants/acme/incidents/999", setup.staff)[0] == 404
