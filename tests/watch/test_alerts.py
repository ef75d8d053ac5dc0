"""Alert rules and flapping, one event per state change, counted by hand (minute slots, a
60 s heartbeat, the standard tier's rules: quiet after heartbeat + 120 s)."""

from __future__ import annotations

import pytest

from core.store import Store
from core.tiers import Tier
from tests.watch.support import T0, Fed

TIERS = {"standard": Tier(device_cap=4)}


@pytest.fixture
def fed(tmp_path, engine) -> Fed:
    store = Store(tmp_path / "db", engine=engine, tiers=TIERS)
    yield Fed(store, store.add_tenant("acme"))
    store.close()


def kinds(plan) -> list[tuple[str, str, str]]:
    return [
        (t, d.get("rule", ""), d.get("device") or d.get("gateway") or "") for t, d in plan.events
    ]


def test_a_quiet_device_fires_once_and_resolves_once(fed) -> None:
    # d's last frame 09:30; quiet from 09:30 + 60 + 120 = 12:30
    fed.minutes({"gw": ["d", "e"]}, 0, 9)
    fed.minutes({"gw": ["e"]}, 10, 12)
    assert ("alert.firing", "quiet", "d") not in kinds(fed.run(12 * 60 + 29))
    assert ("alert.firing", "quiet", "d") in kinds(fed.run(12 * 60 + 30))
    assert [k for k in kinds(fed.run(12 * 60 + 45)) if k[1] == "quiet"] == []  # once only
    fed.minutes({"gw": ["d", "e"]}, 13, 13)
    assert ("alert.resolved", "quiet", "d") in kinds(fed.run(13 * 60 + 40))


def test_fault_and_low_battery_fire_from_the_latest_frame(fed) -> None:
    fed.send("gw", [["d", T0 + 30, 3, 19.9], ["e", T0 + 30, 0, 20.0]], 31)
    events = kinds(fed.run(40))
    assert ("alert.firing", "fault", "d") in events
    assert ("alert.firing", "battery", "d") in events  # 19.9 is below 20
    assert ("alert.firing", "battery", "e") not in events  # exactly at it is not
    fed.send("gw", [["d", T0 + 90, 0, 80.0], ["e", T0 + 90, 0, 80.0]], 91)
    events = kinds(fed.run(100))
    assert ("alert.resolved", "fault", "d") in events
    assert ("alert.resolved", "battery", "d") in events


def test_the_device_cap_fires_at_each_level_it_reaches(fed) -> None:
    # a cap of 4: 3 devices are 75 % (nothing), 4 are 100 % (the 80, 90 and 100 levels: one
    # event, at the highest level reached)
    fed.send("gw", [[d, T0 + 30] for d in ("a", "b", "c")], 31)
    assert [e for e in fed.run(40).events if e[1]["rule"] == "device_cap"] == []
    fed.send("gw", [["d", T0 + 50]], 51)
    [cap] = [e for e in fed.run(60).events if e[1]["rule"] == "device_cap"]
    assert cap[0] == "alert.firing" and cap[1]["level"] == 100 and cap[1]["devices"] == 4


def test_a_tenants_override_changes_the_threshold(fed) -> None:
    fed.store.set_tenant(fed.tenant.id, alerts={"battery_below": "50"})
    fed.send("gw", [["d", T0 + 30, 0, 49.9]], 31)
    assert ("alert.firing", "battery", "d") in kinds(fed.run(40))


def test_a_flapping_device_sends_one_flapping_event(fed) -> None:
    # d alternates: frames with a fault, then healthy ones, every minute: each pass sees a
    # new state; the fifth change within 30 minutes is flapping
    events = []
    for minute in range(12):
        status = 3 if minute % 2 else 0
        fed.send("gw", [["d", T0 + minute * 60 + 30, status]], minute * 60 + 31)
        events += fed.run(minute * 60 + 40).events
    flapping = [e for e in events if e[0] == "device.flapping"]
    assert len(flapping) == 1 and flapping[0][1]["device"] == "d"
    # before it flapped, its fault alert fired and resolved; since, nothing about it
    faults = [e[0] for e in events if e[1].get("rule") == "fault"]
    assert faults[:3] == ["alert.firing", "alert.resolved", "alert.firing"]
    after = events.index(flapping[0])
    assert [e for e in events[after + 1 :] if e[1].get("device") == "d"] == []
    # when it began to flap (its fifth change, to fault at 05:40) its fault alert stood
    # resolved, and stays so while it flaps. It reports the fault from minute 11 on (seen
    # at 11:40) and holds it for 30 minutes: at 41:40 it speaks again, its alert as it stands
    later = []
    for minute in range(12, 45):
        fed.send("gw", [["d", T0 + minute * 60 + 30, 3]], minute * 60 + 31)
        later += fed.run(minute * 60 + 40).events
        assert ("d" in fed.memory.flapping) == (minute < 41), minute
    assert [(e[0], e[1]["rule"]) for e in later if e[1].get("device") == "d"] == [
        ("alert.firing", "fault")
    ]
