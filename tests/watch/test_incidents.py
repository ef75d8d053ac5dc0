"""Incidents opened and closed from the stored slots, counted by hand: minute slots, a 60 s
heartbeat (frames at :30 cover the next slot's first 30 s), min_outage 5."""

from __future__ import annotations

import json

import pytest

from core.store import Store
from tests.watch.support import Fed, ns


@pytest.fixture
def fed(tmp_path, engine) -> Fed:
    store = Store(tmp_path / "db", engine=engine)
    yield Fed(store, store.add_tenant("acme"))
    store.close()


def opened(plan) -> list:
    return [op[1] for op in plan.ops if op[0] == "open"]


def test_a_device_incident_opens_at_exactly_min_outage_down_slots(fed) -> None:
    # d sends minutes 0..9 (last frame 09:30 covers slot 10 up to 10:30: slot 10 is up);
    # e keeps the gateway talking. Down slots: 11, 12, 13, 14, 15 (ending 16:00).
    fed.minutes({"gw": ["d", "e"]}, 0, 9)
    fed.minutes({"gw": ["e"]}, 10, 16)
    assert opened(fed.plan(15 * 60 + 59)) == []  # slot 15 has not ended: 4 down slots
    plan = fed.run(16 * 60)
    [incident] = opened(plan)
    assert (incident.kind, incident.subject, incident.start_ns) == ("device", "d", ns(11 * 60))
    assert incident.detected_ns == ns(16 * 60) and incident.state == "open"
    [stored] = fed.current()
    assert stored.id == 1 and stored.end_ns == -1
    # its event is stored with it, once: not again at the passes that follow
    assert fed.run(17 * 60).ops == []
    logged = fed.store.events(fed.tenant.id, types=["incident.*"])
    assert [(e.type, json.loads(e.body)["data"]["device"]) for e in logged] == [
        ("incident.opened", "d")
    ]


def test_an_incident_closes_at_the_start_of_the_next_up_slot(fed) -> None:
    fed.minutes({"gw": ["d", "e"]}, 0, 9)
    fed.minutes({"gw": ["e"]}, 10, 16)
    fed.run(16 * 60)
    fed.minutes({"gw": ["d", "e"]}, 17, 18)  # d is back in slot 17
    fed.run(19 * 60)
    [incident] = fed.current()
    assert incident.state == "resolved" and incident.end_ns == ns(17 * 60)
    assert incident.resolved_ns == ns(17 * 60)  # its close (after it was detected, at 16:00)
    assert incident.resolved_by == ""  # its close resolved it, not staff


def test_a_shorter_run_opens_nothing(fed) -> None:
    # d misses minutes 10..13: slot 10 is covered by 09:30; down 11, 12, 13 (3 slots), then
    # 14:30 covers 14: up
    fed.minutes({"gw": ["d", "e"]}, 0, 20, alive=lambda d, m: d == "e" or not 10 <= m <= 13)
    assert fed.run(21 * 60).ops == []


def test_an_open_incident_whose_slots_all_turn_up_is_cleared_by_backfill(fed) -> None:
    fed.minutes({"gw": ["d", "e"]}, 0, 9)
    fed.minutes({"gw": ["e"]}, 10, 16)
    fed.run(16 * 60)
    # the gateway had buffered d's frames: they arrive late, covering slots 10..16
    fed.late("gw", "d", range(10, 17), 16 * 60 + 40)
    fed.run(17 * 60)
    [incident] = fed.current()
    assert incident.state == "cleared_by_backfill"
    assert incident.resolved_ns == -1  # it never happened: nobody resolved it


def test_a_gateway_incident_groups_its_devices(fed) -> None:
    # gateway g2 (devices a, b) sends its last batch at 09:31; g1 keeps sending for c.
    # g2 is silent for 5 heartbeats (300 s) at 14:31; a and b have 5 down slots (11..15)
    # at 16:00, while g2 is silent: they join its incident instead of being raised alone
    fed.minutes({"g1": ["c"], "g2": ["a", "b"]}, 0, 9)
    fed.minutes({"g1": ["c"]}, 10, 16)
    assert opened(fed.plan(14 * 60 + 30)) == []  # 299 s of silence
    [gateway] = opened(fed.run(14 * 60 + 31))
    assert (gateway.kind, gateway.subject) == ("gateway", "g2")
    assert gateway.start_ns == ns(9 * 60 + 31)  # its last accepted batch
    fed.run(16 * 60)
    incidents = {i.subject: i for i in fed.current()}
    assert set(incidents) == {"g2", "a", "b"}
    assert incidents["g2"].devices == ["a", "b"]
    assert incidents["a"].gateway_incident == incidents["g2"].id
    assert incidents["b"].gateway_incident == incidents["g2"].id
    # g2 comes back at 17:31: its incident closes at that batch, its devices' at slot 17
    fed.minutes({"g1": ["c"], "g2": ["a", "b"]}, 17, 17)
    fed.run(18 * 60)
    incidents = {i.subject: i for i in fed.current()}
    assert incidents["g2"].state == "resolved" and incidents["g2"].end_ns == ns(17 * 60 + 31)
    assert incidents["a"].end_ns == ns(17 * 60) and incidents["a"].state == "resolved"


def test_a_device_on_a_live_gateway_is_not_attached(fed) -> None:
    fed.minutes({"g1": ["c", "d"]}, 0, 9)
    fed.minutes({"g1": ["c"]}, 10, 16)
    fed.run(16 * 60)
    [incident] = fed.current()
    assert incident.subject == "d" and incident.gateway_incident == 0


def test_maintenance_opens_no_incident(fed) -> None:
    from core.sla.windows import Window

    fed.minutes({"gw": ["d", "e"]}, 0, 9)
    window = {"scope": "device", "device": "d"}
    window |= {"start": "2026-01-05T00:10Z", "end": "2026-01-05T01:00Z"}
    fed.store.add_window(fed.tenant.id, Window.from_spec(window))
    fed.minutes({"gw": ["e"]}, 10, 30)
    plan = fed.run(31 * 60)
    assert plan.ops == []
    assert [e for e in plan.events if e[1].get("device") == "d"] == []  # no quiet alert either


def test_a_run_that_ended_while_no_pass_ran_opens_and_closes_at_once(fed) -> None:
    # a pass at 05:00; then d misses minutes 10..19 (down slots 11..19, up again at 20)
    # while the server is down; the next pass, at 30:00, looks back and finds the whole run
    fed.minutes({"gw": ["d", "e"]}, 0, 4)
    fed.run(5 * 60)
    fed.minutes({"gw": ["d", "e"]}, 5, 29, alive=lambda d, m: d == "e" or not 10 <= m <= 19)
    fed.run(30 * 60)
    [incident] = fed.current()
    assert (incident.start_ns, incident.end_ns) == (ns(11 * 60), ns(20 * 60))
    assert incident.state == "resolved"
    assert incident.resolved_ns == incident.detected_ns == ns(30 * 60)  # not before it was seen
    kinds = [e.type for e in fed.store.events(fed.tenant.id, types=["incident.*"])]
    assert sorted(kinds) == ["incident.opened", "incident.resolved"]


def test_the_first_pass_ever_raises_what_is_down_now_not_what_ended_before(fed) -> None:
    # d was down 11..19 and is back; f went silent at 10 and still is: the first pass over
    # the tenant (the watching begins) opens f's incident only
    fed.minutes(
        {"gw": ["d", "e", "f"]},
        0,
        29,
        alive=lambda d, m: d == "e" or (d == "d" and not 10 <= m <= 19) or (d == "f" and m < 10),
    )
    fed.run(30 * 60)
    assert [(i.subject, i.state) for i in fed.current()] == [("f", "open")]
    # nor later, when f's open incident stretches the look-back over d's old run
    fed.minutes({"gw": ["e"]}, 30, 31)
    assert fed.run(32 * 60).ops == []
    assert [(i.subject, i.state) for i in fed.current()] == [("f", "open")]


def test_the_evaluators_process_reads_what_changed_and_what_is_new(fed) -> None:
    from server.watch import _incidents

    fed.minutes({"gw": ["d", "e", "f"]}, 0, 9)
    fed.minutes({"gw": ["e", "f"]}, 10, 16)
    fed.run(16 * 60)
    assert [i.subject for i in _incidents(fed.store, fed.tenant.id)] == ["d"]
    fed.store.answer_incident(fed.tenant.id, 1, "acknowledge", "staff", "", ns(16 * 60 + 5))
    fed.minutes({"gw": ["e"]}, 17, 23)
    fed.run(23 * 60)  # f has been down 18..22
    seen = {i.subject: i for i in _incidents(fed.store, fed.tenant.id)}
    assert set(seen) == {"d", "f"} and seen["d"].state == "acknowledged"
    assert [i.id for i in fed.store.incidents(fed.tenant.id, after=1)] == [seen["f"].id]
