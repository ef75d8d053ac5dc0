"""The Incidents page's data functions over a read-only store, on both engines: incidents
raised by feeding a store (tests/support/incidents.py tells the story), their support minutes
and status as the API answers them, the month's compliance as core.support counts it, the
alert log with its deliveries, and who may read and answer what."""

from __future__ import annotations

import pandas as pd
import pytest

from core import support
from core.store import Store
from core.support import shown_share
from core.tiers import DEFAULT_TIERS, Catalog
from dashboard import data
from server.incidents import incident_json
from server.testing import free_port
from tests.support.incidents import seed_incidents

#: Tue 2026-03-10 12:00Z: the story's two hours lie inside one local day and month
NOW_S = 1_773_144_000
CATALOG = Catalog(DEFAULT_TIERS)
DAY_NS = 86_400 * 10**9


@pytest.fixture
def story(tmp_path, engine):
    return seed_incidents(tmp_path / "db", engine, NOW_S)


@pytest.fixture
def reader(story, engine):
    with Store(story.data, readonly=True, engine=engine, tiers=DEFAULT_TIERS) as store:
        yield store


def staff_incidents(story, reader) -> pd.DataFrame:
    token = data.sign_in(reader, story.staff)
    now = story.now_ns
    return data.incidents(reader, token, "acme", now - DAY_NS, now + 1, now, CATALOG)


def test_incidents_show_open_first_with_devices_and_gateway(story, reader) -> None:
    table = staff_incidents(story, reader)
    ids = story.ids
    # open and acknowledged first, newest first; then the closed ones, newest first
    assert list(table["id"]) == [
        ids["hvac-1"],
        ids["door-2"],
        ids["cam-2"],
        ids["cam-1"],
        ids["gw-2"],
        ids["door-1"],
    ]
    rows = table.set_index("id")
    assert rows.loc[ids["hvac-1"], "state"] == "open"
    assert rows.loc[ids["door-2"], "state"] == "acknowledged"
    assert rows.loc[ids["door-2"], "acknowledge note"] == "technician on the way"
    assert rows.loc[ids["door-1"], "state"] == "resolved"
    gateway = rows.loc[ids["gw-2"]]
    assert (gateway["kind"], gateway["subject"]) == ("gateway", "acme-gw-2")
    assert gateway["devices"] == "acme-cam-1, acme-cam-2"
    assert pd.isna(gateway["part of"])
    for cam in ("cam-1", "cam-2"):
        assert rows.loc[ids[cam], "part of"] == ids["gw-2"]
        assert pd.isna(rows.loc[ids[cam], "devices"])
    # times in the tenant's zone, the instants stored
    stored = {i.id: i for i in reader.incidents(reader.tenant("acme").id)}
    assert str(table["started"].dt.tz) == "Europe/Berlin"
    for column, attr in (("started", "start_ns"), ("ended", "end_ns"), ("resolved", "resolved_ns")):
        for incident_id, when in zip(table["id"], table[column], strict=True):
            ns = getattr(stored[incident_id], attr)
            assert (pd.isna(when) and ns < 0) or when.value == ns


def test_support_minutes_and_status_are_the_apis_own(story, reader) -> None:
    table = staff_incidents(story, reader).set_index("id")
    tenant = reader.tenant("acme")
    for incident in reader.incidents(tenant.id):
        answer = incident_json(None, tenant, incident, story.now_ns)  # type: ignore[arg-type]
        row = table.loc[incident.id]
        for measure in ("response", "resolve"):
            assert row[f"{measure} min"] == float(answer[f"{measure}_min"])
            assert row[measure] == answer[f"{measure}_status"]
    ids = story.ids
    # premium: response 15 min, resolve 240 min, 24x7; counted by hand from the story
    expected = {
        "door-1": ("missed", "met", 8.3),  # never acknowledged; closed 8 min 15 s after
        "door-2": ("met", "pending", None),  # acknowledged 2 min 15 s after detection
        "hvac-1": ("pending", "pending", None),  # detected 116:45, now 120:00
        "gw-2": ("met", "met", None),  # acknowledged at 70:00, closed at 95:31
        "cam-1": ("excluded", "excluded", None),  # answered with its gateway's
    }
    for name, (response, resolve, resolve_min) in expected.items():
        row = table.loc[ids[name]]
        assert (row["response"], row["resolve"]) == (response, resolve), name
        if resolve_min is not None:
            assert row["resolve min"] == resolve_min
    # 2.25 and 3.25 (so far) shown rounded up, as the API does: never shorter than true
    assert table.loc[ids["door-2"], "response min"] == 2.3
    assert table.loc[ids["hvac-1"], "response min"] == 3.3


def test_the_months_compliance_is_core_supports_own(story, reader) -> None:
    token = data.sign_in(reader, story.staff)
    found = data.incident_compliance(reader, token, "acme", "2026-03", story.now_ns, CATALOG)
    tier = DEFAULT_TIERS["premium"]
    oracle = support.month_compliance(
        reader.incidents(reader.tenant("acme").id),
        2026,
        3,
        "Europe/Berlin",
        tier.support_hours,
        tier.response_target_min,
        tier.resolve_target_min,
        story.now_ns,
    )
    assert found.figures == oracle
    assert found.figures.response == support.Tally(met=2, missed=1, pending=1)
    assert found.figures.resolve == support.Tally(met=2, missed=0, pending=2)
    assert found.figures.excluded == 2
    assert (found.response_target_min, found.resolve_target_min) == (15, 240)
    assert found.support_hours == "24x7"
    assert found.incidents == 6 and found.open_now == 2
    assert found.response_percent == f"{shown_share(oracle.response.share)} %" == "66.6 %"
    assert found.resolve_percent == "100.0 %"
    before = data.incident_compliance(reader, token, "acme", "2026-02", story.now_ns, CATALOG)
    assert before.incidents == 0 and before.response_percent == "n/a"


def test_the_alert_log_lists_events_with_their_deliveries(story, reader) -> None:
    token = data.sign_in(reader, story.staff)
    tenant = reader.tenant("acme")
    log = data.alert_log(reader, token, "acme", 0, story.now_ns + 1)
    events = reader.events(tenant.id, limit=1000)
    assert list(log["event"]) == [e.name for e in events]  # newest first
    assert list(log["type"]) == [e.type for e in events]
    assert {"incident.opened", "incident.acknowledged", "incident.resolved", "alert.firing"} <= set(
        log["type"]
    )
    assert str(log["time"].dt.tz) == "Europe/Berlin"
    assert list(log["time"].astype("int64")) == [e.created_ns for e in events]
    opened = log[log["type"] == "incident.opened"]
    assert list(opened["subject"]) == ["acme-hvac-1", "acme-gw-2", "acme-door-2", "acme-door-1"]
    # the newest event's delivery failed twice and is due again; every other was delivered
    newest, rest = log.iloc[0], log.iloc[1:]
    assert (newest["deliveries"], newest["attempts"]) == (1, 2)
    assert (newest["last status"], newest["state"]) == ("503", "pending")
    assert set(rest["state"]) == {"delivered"} and set(rest["last status"]) == {"200"}
    tried = data.event_attempts(reader, token, "acme", newest["event"])
    assert list(tried["attempt"]) == [1, 2]
    assert list(tried["status"]) == [503, 503]
    assert list(tried["delivery state"]) == ["pending", "pending"]
    assert list(tried["at"].astype("int64")) == [a.at_ns for a in events[0].deliveries[0].attempts]
    # globex has no endpoint: its events went nowhere
    other = data.alert_log(reader, token, "globex", 0, story.now_ns + 1)
    assert len(other) and set(other["state"]) == {"no endpoint"}
    assert set(other["subject"]) <= {"globex", "globex-cam-9"}
    assert data.event_attempts(reader, token, "globex", other["event"].iloc[0]).empty
    with pytest.raises(KeyError):
        data.event_attempts(reader, token, "acme", other["event"].iloc[0])  # globex's


def test_a_period_shows_the_incidents_that_overlap_it(story, reader) -> None:
    token = data.sign_in(reader, story.staff)
    before = story.ns(0)
    empty = data.incidents(reader, token, "acme", before - DAY_NS, before, story.now_ns, CATALOG)
    assert empty.empty and list(empty.columns) == data.INCIDENT_COLUMNS
    # the last ten minutes: only the incidents still open then
    recent = data.incidents(
        reader, token, "acme", story.now_ns - 600 * 10**9, story.now_ns, story.now_ns, CATALOG
    )
    assert set(recent["state"]) == {"open", "acknowledged"}
    assert data.alert_log(reader, token, "acme", 0, before).empty


def test_a_client_reads_only_its_own_incidents(story, reader) -> None:
    token = data.sign_in(reader, story.read["acme"])
    now = story.now_ns
    assert set(data.incidents(reader, token, "acme", 0, now, now, CATALOG)["subject"]) >= {
        "acme-gw-2"
    }
    reads = {
        "incidents": lambda t: data.incidents(reader, token, t, 0, now, now, CATALOG),
        "compliance": lambda t: data.incident_compliance(reader, token, t, "2026-03", now, CATALOG),
        "alert log": lambda t: data.alert_log(reader, token, t, 0, now),
        "attempts": lambda t: data.event_attempts(reader, token, t, "evt_1"),
    }
    for name, read in reads.items():
        for other in ("globex", "initech"):
            with pytest.raises(data.NotAllowed) as refused:
                read(other)
            # the same words as every other page's refusal: nothing tells the two apart
            assert str(refused.value) == f"this sign-in may not read tenant {other!r}", name


def test_only_staff_answer_and_a_client_sends_nothing(story, reader) -> None:
    client = data.sign_in(reader, story.read["acme"])
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens: a request would say so
    with pytest.raises(data.NotAllowed, match="only staff answer incidents"):
        data.answer_incident(
            reader, client, story.read["acme"], nowhere, "acme", 1, "acknowledge", "hi"
        )
    with pytest.raises(data.NotAllowed, match="may not read tenant 'globex'"):
        data.answer_incident(
            reader, client, story.read["acme"], nowhere, "globex", 1, "resolve", "x"
        )
    staff = data.sign_in(reader, story.staff)
    with pytest.raises(data.AnswerRefused, match=f"cannot reach the server at {nowhere}"):
        data.answer_incident(reader, staff, story.staff, nowhere, "acme", 1, "acknowledge", "")
    with pytest.raises(ValueError, match="action must be"):
        data.answer_incident(reader, staff, story.staff, nowhere, "acme", 1, "close", "")
