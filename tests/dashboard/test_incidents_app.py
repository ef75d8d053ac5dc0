"""The Incidents page under Streamlit's AppTest: a client sees its own incidents and alert log
and nothing to answer with; staff acknowledge and resolve through a real server.

The dashboard's read-only store and the server's writer cannot share a process (LMDB opens
a path once per process), so the server runs as ``uptally serve`` in its own
(``ProcessServer``) and ``UPTALLY_API`` points the page at it, as ``uptally dashboard`` does.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import data, session
from server.testing import ProcessServer
from tests.support.apptest import APP, on_page, shown
from tests.support.incidents import ACME, GLOBEX, Incidents, seed_incidents

PAGE = "views/incidents.py"
GLOBEX_WORDS = ["globex", *GLOBEX, *GLOBEX["globex-gw"]]


@pytest.fixture
def story(tmp_path, monkeypatch) -> Incidents:
    found = seed_incidents(tmp_path / "db")  # the two hours before now: the page reads now
    monkeypatch.setenv("UPTALLY_DATA", str(found.data))
    monkeypatch.delenv("UPTALLY_CONFIG", raising=False)
    return found


def selectbox(at: AppTest, label: str) -> Any:
    [found] = [s for s in at.selectbox if s.label == label]
    return found


def test_a_client_sees_its_own_incidents_and_nothing_to_answer_with(story) -> None:
    before = session.now_ns()
    at = incidents_page(story.read["acme"])
    after = session.now_ns()
    assert [s.label for s in at.selectbox] == ["Month", "Event"]  # no tenant, no incident
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Open now"] == "2"
    # the page's figures are the data function's, as of the page's now (30 s steps)
    store, month = session.store(), selectbox(at, "Month").value
    token = data.sign_in(store, story.read["acme"])
    oracles = [
        data.incident_compliance(store, token, "acme", month, now, session.catalog())
        for now in {before, after}
    ]
    assert metrics["Response compliance"] in [o.response_percent for o in oracles]
    assert metrics["Resolve compliance"] in [o.resolve_percent for o in oracles]
    incidents = at.dataframe[0].value
    assert set(incidents["subject"]) == {s for devices in ACME.values() for s in devices} | {
        "acme-gw-2"
    }
    assert "acknowledged by" not in incidents.columns  # who answered is staff's business
    # no answer controls at all
    assert not at.text_area and not at.radio
    assert "Send" not in [b.label for b in at.button]
    assert "Answer an incident" not in [s.value for s in at.subheader]
    # the alert log, and one event's delivery attempts
    log = at.dataframe[1].value
    assert log["event"].iloc[0] == selectbox(at, "Event").value
    assert list(at.dataframe[2].value["status"]) == [503, 503]
    for period in ("24 hours", "30 days"):
        at.button_group[0].set_value(period).run()
        assert not at.exception
    assert not [w for w in GLOBEX_WORDS if w in shown(at)]


def test_a_client_asking_for_another_tenants_incidents_is_refused(story) -> None:
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.text_input[0].input(story.read["acme"])
    at.button[0].click().run()
    at.query_params["tenant"] = "globex"
    at.switch_page(PAGE).run()
    assert not at.exception
    assert [e.value for e in at.error] == ["this sign-in may not read tenant 'globex'"]
    assert not at.metric and not at.dataframe


def api(server: ProcessServer, token: str, incident_id: int) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{server.url}/v1/tenants/acme/incidents/{incident_id}",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        found: dict[str, Any] = json.loads(answer.read())
        return found


def answer(at: AppTest, incident_id: int, action: str, note: str) -> AppTest:
    selectbox(at, "Incident").set_value(incident_id)
    at.radio[0].set_value(action)
    at.text_area[0].input(note)
    [send] = [b for b in at.button if b.label == "Send"]
    send.click().run()
    assert not at.exception
    return at


def states(at: AppTest) -> dict[int, str]:
    table = at.dataframe[0].value
    return dict(zip(table["id"], table["state"], strict=True))


@pytest.fixture
def server(story, monkeypatch):
    live = ProcessServer(story.data)  # default tiers (premium among them), evaluator idle
    monkeypatch.setenv("UPTALLY_API", live.url)
    yield live
    live.stop()


def test_staff_acknowledge_and_resolve_through_the_server(story, server) -> None:
    hvac, door = story.ids["hvac-1"], story.ids["door-2"]
    at = incidents_page(story.staff)
    assert [s.label for s in at.selectbox] == ["Tenant", "Month", "Incident", "Event"]
    assert selectbox(at, "Incident").options[:2] == [
        f"#{hvac} device acme-hvac-1 (open)",
        f"#{door} device acme-door-2 (acknowledged)",
    ]

    answer(at, hvac, "acknowledge", "on site at 10")
    assert [s.value for s in at.success] == [f"Incident #{hvac} acknowledged."]
    assert states(at)[hvac] == "acknowledged"  # read again from the store, not the cache
    found = api(server, story.staff, hvac)
    assert (found["state"], found["acknowledge_note"]) == ("acknowledged", "on site at 10")
    assert found["response_status"] == "met"

    # a resolve without a note: the API's refusal, and nothing changed
    answer(at, door, "resolve", "  ")
    assert [e.value for e in at.error] == [
        f"Cannot resolve incident #{door}: resolving an incident needs a note"
    ]
    assert not at.success
    assert states(at)[door] == "acknowledged"
    assert api(server, story.staff, door)["state"] == "acknowledged"

    answer(at, door, "resolve", "replaced the PSU")
    assert [s.value for s in at.success] == [f"Incident #{door} resolved."]
    assert states(at)[door] == "resolved"
    found = api(server, story.staff, door)
    assert (found["state"], found["resolve_note"]) == ("resolved", "replaced the PSU")
    # its event is in the alert log at once
    log = at.dataframe[1].value
    assert log["type"].iloc[0] == "incident.resolved" and log["subject"].iloc[0] == "acme-door-2"
    # only open incidents are offered: the resolved one is gone from the form
    assert f"#{door}" not in " ".join(map(str, selectbox(at, "Incident").options))


def test_an_unreachable_server_is_a_clear_error(story, monkeypatch) -> None:
    monkeypatch.setenv("UPTALLY_API", "http://127.0.0.1:9")
    at = incidents_page(story.staff)
    hvac = story.ids["hvac-1"]
    answer(at, hvac, "acknowledge", "")
    [error] = at.error
    assert error.value.startswith(
        f"Cannot acknowledge incident #{hvac}: cannot reach the server at http://127.0.0.1:9"
    )
    assert states(at)[hvac] == "open"


def incidents_page(secret: str) -> AppTest:
    return on_page(secret, PAGE, "Incidents")
