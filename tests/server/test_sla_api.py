"""The SLA routes on the real server (127.0.0.1): tenants' settings, tiers and the upstream
flag, month attainment and its history, maintenance windows, device sites, lifecycle and
replacement, and a zoned tenant's buckets and outages.

Hourly slots (``slot_s = 3600``) over last month, so every figure is worked out by hand:
device ``a`` misses the ten hours 00:00-10:00 of the 10th, device ``b`` misses none. With
``S`` slots per device in the month (24 x its days), the fleet has ``2S - 10`` up and 10 down.
Each test that changes something has a tenant of its own.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from core.store import Store
from server.config import Config
from server.testing import REPO, ThreadServer, server_config, thread_server
from tests.support.hourly import (
    DAY_S,
    HOUR_S,
    floor3,
    ingest_hours,
    label,
    local_iso,
    local_s,
    month_s,
    previous_month,
)

NOW = time.time_ns()
YEAR, MONTH = previous_month(NOW, "UTC")
MONTH_LABEL = label(YEAR, MONTH)
BEFORE_LABEL = label(*previous_month(NOW, "UTC", 2))  # before any device: nothing counted
START, END = month_s(YEAR, MONTH, "UTC")
S = (END - START) // HOUR_S  # slots per device in the month
D = {day: START + (day - 1) * DAY_S for day in range(1, 32)}  # 00:00 UTC of each day
DOWN = {D[10] + h * HOUR_S for h in range(10)}  # the hours device a misses


def iso_z(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def two_devices(ts: int) -> list[tuple[str, object]]:
    frames: list[tuple[str, object]] = [("south", ["b", ts])]
    if ts not in DOWN:
        frames.append(("north", ["a", ts]))
    return frames


def fleet_devices(ts: int) -> list[tuple[str, object]]:
    """Like ``two_devices``, with ``a`` in map form carrying its firmware: 1.0, from the 5th 1.2."""
    frames: list[tuple[str, object]] = [("south", ["b", ts])]
    if ts not in DOWN:
        frames.append(("north", {"d": "a", "t": ts, "fw": "1.0" if ts < D[5] else "1.2"}))
    return frames


def swapped(ts: int) -> list[tuple[str, object]]:
    """``c`` reports until the 15th, its replacement ``c2`` (another gateway) from then on."""
    return [("north", ["c", ts])] if ts < D[15] else [("south", ["c2", ts])]


#: a Berlin tenant's March 2026: CET (+01:00) until the clocks spring forward on the 29th
BERLIN = "Europe/Berlin"
B_START, B_END = local_s(2026, 3, 1, 0, BERLIN), local_s(2026, 4, 1, 0, BERLIN)
B_GAP = range(local_s(2026, 3, 10, 3, BERLIN), local_s(2026, 3, 10, 8, BERLIN))


def berlin_device(ts: int) -> list[tuple[str, object]]:
    return [] if ts in B_GAP else [("hq", ["a", ts])]


@dataclass
class Live:
    server: ThreadServer
    read: dict[str, str]
    staff: str
    staff_id: int

    def call(
        self, method: str, path: str, token: str | None, body: Any = None, raw: bytes | None = None
    ) -> tuple[int, Any]:
        async def go() -> tuple[int, bytes]:
            headers = {} if token is None else {"Authorization": f"Bearer {token}"}
            data = raw if raw is not None else None if body is None else json.dumps(body).encode()
            async with aiohttp.ClientSession() as s:
                async with s.request(
                    method, self.server.url + path, data=data, headers=headers
                ) as r:
                    return r.status, await r.read()

        status, answer = asyncio.run(go())
        return status, json.loads(answer) if answer else None

    def get(self, path: str, token: str | None = None) -> tuple[int, Any]:
        return self.call("GET", path, self.staff if token is None else token)

    def sla(self, tenant: str, query: str = "") -> dict[str, Any]:
        status, body = self.get(f"/v1/tenants/{tenant}/sla?month={MONTH_LABEL}{query}")
        assert status == 200, body
        return body


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    root = tmp_path_factory.mktemp("sla")
    config_file = root / "uptally.toml"
    config_file.write_text('[upstream]\nuptime_guarantee = "99.8"\n')
    config = Config.load(str(config_file), env={})
    data = root / "db"
    read = {}
    with Store(data, tiers=config.tiers) as store:
        seeds = {
            "acme": ({"tax_rate": "19", "display_name": "Acme GmbH"}, two_devices),
            "wins": ({}, two_devices),
            "moves": ({}, two_devices),
            "edits": ({}, two_devices),
            "fleet": ({}, fleet_devices),
            "swap": ({}, swapped),
            "berlin": ({"tz": BERLIN}, berlin_device),
            "prem": ({"plan": "premium"}, None),
            "later": ({}, None),
        }
        for name, (settings, frames) in seeds.items():
            tenant = store.add_tenant(name, slot_s=3600, **settings)
            read[name] = store.add_token(tenant.id, "read")[0]
            if frames is berlin_device:
                ingest_hours(store, tenant.id, B_START, B_END, frames)  # March 2026
            elif frames is not None:
                ingest_hours(store, tenant.id, START, END, frames)
        staff, token = store.add_token(None, "staff")
        store.checkpoint(NOW)
    config = server_config(data, tiers=config.tiers, upstream=config.upstream)
    with thread_server(config) as server:
        yield Live(server, read, staff, token.id)


# --- tenants and tiers ---------------------------------------------------------------------------


def test_tenants_show_zone_currency_tax_name_and_the_upstream_flag(live) -> None:
    status, body = live.get("/v1/tenants")
    assert status == 200
    tenants = {t["name"]: t for t in body["tenants"]}
    acme = tenants["acme"]
    assert (acme["tz"], acme["currency"], acme["tax_rate"], acme["display_name"]) == (
        "UTC",
        "USD",
        "19",
        "Acme GmbH",
    )
    assert acme["tier"] == "standard" and acme["tier_above_upstream"] is False
    assert tenants["berlin"]["tz"] == BERLIN and tenants["berlin"]["display_name"] == "berlin"
    # premium promises 99.9 % on a platform that guarantees 99.8 %
    assert tenants["prem"]["tier_above_upstream"] is True
    status, body = live.get("/v1/tenants", live.read["acme"])
    assert [t["name"] for t in body["tenants"]] == ["acme"]


def test_tiers_are_for_staff_and_flag_a_target_above_the_upstream_guarantee(live) -> None:
    assert live.get("/v1/tiers", live.read["acme"])[0] == 403
    assert live.call("GET", "/v1/tiers", None)[0] == 401
    status, body = live.get("/v1/tiers")
    assert status == 200 and body["upstream_guarantee"] == "99.8"
    tiers = {t["name"]: t for t in body["tiers"]}
    assert set(tiers) == {"basic", "standard", "premium"}
    assert {name: t["above_upstream"] for name, t in tiers.items()} == {
        "basic": False,
        "standard": False,
        "premium": True,
    }
    assert tiers["premium"]["uptime_target"] == "99.9"
    assert tiers["standard"]["credit_bands"] == [
        {"below": "99.5", "credit_percent": "10"},
        {"below": "99.0", "credit_percent": "25"},
        {"below": "95.0", "credit_percent": "50"},
    ]


def test_a_tenant_changed_by_the_cli_beside_the_server_is_answered_as_stored(live) -> None:
    assert live.sla("later")["zone"] == "UTC"
    argv = ["tenant", "set", "later", "--tz", BERLIN, "--plan", "premium", "--tax-rate", "7"]
    data = live.server.config.data
    done = subprocess.run(
        [sys.executable, "-m", "uptally", *argv, "--data", data],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    body = live.get("/v1/tenants/later/sla?month=2026-03")[1]  # no /v1/tenants read first
    assert (body["zone"], body["from"]) == (BERLIN, "2026-03-01T00:00:00+01:00")
    assert body["target"] == "99.9" and body["target_above_upstream"] is True
    later = next(t for t in live.get("/v1/tenants")[1]["tenants"] if t["name"] == "later")
    assert (later["tz"], later["tier"], later["tax_rate"]) == (BERLIN, "premium", "7")


# --- attainment ----------------------------------------------------------------------------------


def test_sla_of_a_month_with_known_down_slots(live) -> None:
    body = live.sla("acme")
    assert body["month"] == MONTH_LABEL and body["complete"] is True
    assert (body["up"], body["down"], body["excluded"], body["devices"]) == (2 * S - 10, 10, 0, 2)
    # e.g. a 30-day month: 1430 / 1440 = 99.30555... % shows 99.305 (rounded down)
    assert body["attainment"] == floor3(2 * S - 10, 10)
    assert 99.0 < float(body["attainment"]) < 99.5  # so the first band, 10 %, whatever the month
    assert body["target"] == "99.5" and body["met"] is False
    assert body["band"] == {"below": "99.5", "credit_percent": "10"}
    assert body["credit_percent"] == "10" and body["target_above_upstream"] is False
    assert (body["from"], body["to"]) == (
        local_iso(YEAR, MONTH, 1, 0, "UTC"),
        local_iso(*previous_month(NOW, "UTC", 0), 1, 0, "UTC"),
    )
    tenth = next(d for d in body["days"] if d["date"].endswith("-10"))
    assert (tenth["up"], tenth["down"], tenth["attainment"]) == (38, 10, "79.166")
    assert len(body["days"]) == S // 24
    assert live.get(f"/v1/tenants/acme/sla?month={MONTH_LABEL}", live.read["acme"])[0] == 200


def test_a_month_without_counted_slots_has_no_attainment_is_met_and_earns_nothing(live) -> None:
    status, body = live.get(f"/v1/tenants/acme/sla?month={BEFORE_LABEL}")
    assert status == 200
    assert (body["up"], body["down"], body["devices"]) == (0, 0, 0)
    assert body["attainment"] is None and body["met"] is True
    assert body["band"] is None and body["credit_percent"] == "0"
    # a tenant of no devices, on a tier promising more than upstream
    prem = live.sla("prem")
    assert prem["attainment"] is None and prem["met"] is True and prem["credit_percent"] == "0"
    assert prem["target"] == "99.9" and prem["target_above_upstream"] is True


@pytest.mark.parametrize("month", ["2026-13", "26-01", "March", "1969-12"])
def test_a_bad_month_is_400(live, month: str) -> None:
    status, body = live.get(f"/v1/tenants/acme/sla?month={month}")
    assert status == 400 and body["error"] == "bad_parameter" and "month" in body["detail"]


def test_sla_is_refused_to_another_tenants_token(live) -> None:
    path = f"/v1/tenants/acme/sla?month={MONTH_LABEL}"
    assert live.get(path, live.read["wins"])[0] == 403
    assert live.get(path + "&month=2026-01")[0] == 400  # given twice
    assert live.get("/v1/tenants/nobody/sla", live.read["wins"])[0] == 403
    assert live.get("/v1/tenants/nobody/sla")[0] == 404


def test_sla_of_a_site_counts_its_devices_only(live) -> None:
    # sites default to the first gateway's name: a came through north, b through south
    north = live.sla("acme", "&site=north")
    assert north["site"] == "north"
    assert (north["up"], north["down"], north["devices"]) == (S - 10, 10, 1)
    assert north["attainment"] == floor3(S - 10, 10)
    south = live.sla("acme", "&site=south")
    assert (south["up"], south["down"], south["attainment"]) == (S, 0, "100.000")
    assert south["met"] is True and south["credit_percent"] == "0"
    whole = live.sla("acme")
    assert [(s["site"], s["up"], s["down"]) for s in whole["sites"]] == [
        ("north", S - 10, 10),
        ("south", S, 0),
    ]
    status, body = live.get(f"/v1/tenants/acme/sla?month={MONTH_LABEL}&site=nowhere")
    assert status == 404 and "nowhere" in body["detail"]


def test_sla_history_is_one_row_per_month_oldest_first(live) -> None:
    status, body = live.get("/v1/tenants/acme/sla/history?months=3", live.read["acme"])
    assert status == 200 and body["zone"] == "UTC"
    rows = body["months"]
    assert [r["month"] for r in rows] == [
        BEFORE_LABEL,
        MONTH_LABEL,
        label(*previous_month(NOW, "UTC", 0)),
    ]
    assert [r["complete"] for r in rows] == [True, True, False]
    assert rows[0]["attainment"] is None and rows[0]["met"] is True
    assert (rows[1]["up"], rows[1]["down"], rows[1]["attainment"]) == (
        2 * S - 10,
        10,
        floor3(2 * S - 10, 10),
    )
    assert rows[1]["credit_percent"] == "10"
    assert rows[2]["up"] == 0  # silent since: down until retired
    status, body = live.get("/v1/tenants/acme/sla/history")
    assert len(body["months"]) == 12 and body["months"][-2]["month"] == MONTH_LABEL
    assert len(live.get("/v1/tenants/acme/sla/history?months=36")[1]["months"]) == 36
    for months in ("0", "37", "-1", "x"):
        status, body = live.get(f"/v1/tenants/acme/sla/history?months={months}")
        assert status == 400 and "months" in body["detail"]
    assert live.get("/v1/tenants/acme/sla/history", live.read["wins"])[0] == 403


# --- maintenance windows -----------------------------------------------------------------------


def test_a_window_is_staff_only_listed_excluded_from_the_sla_and_deleted(live) -> None:
    path = "/v1/tenants/wins/windows"
    # four hours over four of a's ten down hours; it ends at 04:00, so the 04:00 slot stays
    window = {"scope": "tenant", "start": iso_z(D[10]), "end": iso_z(D[10] + 4 * HOUR_S)}
    window["reason"] = "core switch"
    status, body = live.call("POST", path, live.read["wins"], window)
    assert status == 403 and live.get(path)[1]["windows"] == []
    status, stored = live.call("POST", path, live.staff, window)
    assert status == 201
    assert (stored["kind"], stored["start"]) == ("once", window["start"])
    assert stored["end"] == window["end"]
    assert stored["created_by"] == f"token {live.staff_id} (staff)"
    status, listed = live.get(path, live.read["wins"])
    assert status == 200 and listed["windows"] == [stored]
    assert live.get(path, live.read["acme"])[0] == 403

    body = live.sla("wins")
    # 4 slots of each device are out: a's 4 down ones and b's 4 up ones
    assert (body["up"], body["down"], body["excluded"]) == (2 * S - 14, 6, 8)
    assert body["attainment"] == floor3(2 * S - 14, 6)  # 1426 / 1432 = 99.581 % in 30 days
    assert body["met"] is True and body["credit_percent"] == "0" and body["band"] is None

    other = f"/v1/tenants/acme/windows/{stored['id']}"  # not acme's: no such window there
    assert live.call("DELETE", other, live.staff)[0] == 404
    assert live.call("DELETE", f"{path}/{stored['id']}", live.read["wins"])[0] == 403
    assert live.call("DELETE", f"{path}/{stored['id']}", live.staff) == (204, None)
    assert live.call("DELETE", f"{path}/{stored['id']}", live.staff)[0] == 404
    assert live.call("DELETE", f"{path}/not-a-number", live.staff)[0] == 404
    assert live.get(path)[1]["windows"] == []
    assert (live.sla("wins")["down"], live.sla("wins")["excluded"]) == (10, 0)


@pytest.mark.parametrize(
    "body, names",
    [
        ({"scope": "tenant", "start": "2026-03-01T00:00:00Z", "colour": "red"}, "colour"),
        ({"scope": "tenant"}, "start"),
        (
            {"scope": "tenant", "start": "2026-03-01T00:00:00", "end": "2026-03-02T00:00:00Z"},
            "start",
        ),
        ({"scope": "galaxy", "start": "2026-03-01T00:00:00Z"}, "scope"),
        ({"scope": "site", "start": "2026-03-01T00:00:00Z", "end": "2026-03-02T00:00:00Z"}, "site"),
        (
            {"scope": "tenant", "weekdays": "Mon", "at": "02:00", "duration_min": 0, "zone": "UTC"},
            "duration_min",
        ),
        ({"scope": "tenant", "weekdays": "Mon", "at": "02:00", "duration_min": 60}, "zone"),
        ([1, 2], "object"),
    ],
)
def test_a_bad_window_is_400_naming_the_key_and_stores_nothing(live, body, names) -> None:
    status, answer = live.call("POST", "/v1/tenants/wins/windows", live.staff, body)
    assert status == 400 and names in answer["detail"], answer
    assert live.get("/v1/tenants/wins/windows")[1]["windows"] == []


def test_a_window_body_that_is_not_json_or_names_an_unknown_device(live) -> None:
    path = "/v1/tenants/wins/windows"
    assert live.call("POST", path, live.staff, raw=b"{nope")[0] == 400
    device = {"scope": "device", "device": "ghost", "start": iso_z(D[1]), "end": iso_z(D[2])}
    status, answer = live.call("POST", path, live.staff, device)
    assert status == 404 and "ghost" in answer["detail"]
    assert live.get(path)[1]["windows"] == []


# --- devices: site, lifecycle, replacement, history ----------------------------------------------


def test_maintenance_then_active_excludes_those_slots_and_retired_ends_counting(live) -> None:
    path = "/v1/tenants/fleet/devices"
    maintenance = {"state": "maintenance", "at": iso_z(D[10]), "why": "pump swap"}
    status, _ = live.call("PATCH", f"{path}/a", live.read["fleet"], maintenance)
    assert status == 403 and live.get(f"{path}/a")[1]["lifecycle"] == []
    status, history = live.call("PATCH", f"{path}/a", live.staff, maintenance)
    assert status == 200 and [e["state"] for e in history["lifecycle"]] == ["maintenance"]
    back = {"state": "active", "at": iso_z(D[10] + 10 * HOUR_S), "why": "done"}
    assert live.call("PATCH", f"{path}/a", live.staff, back)[0] == 200
    by = f"token {live.staff_id} (staff)"
    assert live.get(f"{path}/a", live.read["fleet"])[1]["lifecycle"] == [
        {"at": iso_z(D[10]), "state": "maintenance", "by": by, "why": "pump swap", "link": ""},
        {"at": back["at"], "state": "active", "by": by, "why": "done", "link": ""},
    ]
    body = live.sla("fleet")  # a's ten down hours were maintenance: excluded
    assert (body["up"], body["down"], body["excluded"]) == (2 * S - 10, 0, 10)
    assert body["attainment"] == "100.000" and body["met"] is True

    retire = {"state": "retired", "at": iso_z(D[20]), "why": "removed"}
    assert live.call("PATCH", f"{path}/b", live.staff, retire)[0] == 200
    body = live.sla("fleet")  # b counts up to the 20th, and not from then on
    assert (body["up"], body["down"]) == (S - 10 + 19 * 24, 0)
    assert body["excluded"] == 10 + S - 19 * 24
    for state in ("active", "maintenance", "retired"):
        status, answer = live.call("PATCH", f"{path}/b", live.staff, {"state": state})
        assert status == 400 and "retired" in answer["detail"]
    assert [e["state"] for e in live.get(f"{path}/b")[1]["lifecycle"]] == ["retired"]
    assert live.sla("fleet")["excluded"] == 10 + S - 19 * 24
    listed = live.get(path, live.read["fleet"])[1]["devices"]
    assert [(d["id"], d["site"], d["lifecycle"]) for d in listed] == [
        ("b", "south", "retired"),
        ("a", "north", "active"),
    ]


def test_a_refused_change_of_site_and_state_stores_neither(live) -> None:
    path = "/v1/tenants/edits/devices/a"
    later = {"state": "maintenance", "at": iso_z(D[20])}
    assert live.call("PATCH", path, live.staff, later)[0] == 200
    before = live.get(path)[1]
    # a change that predates the device's last lifecycle entry is refused: its site too
    early = {"site": "depot", "state": "active", "at": iso_z(D[2])}
    status, answer = live.call("PATCH", path, live.staff, early)
    assert status == 400 and "predate" in answer["detail"], answer
    assert live.get(path)[1] == before
    for body in ({}, {"colour": "red"}, {"site": 5}, {"site": ""}, {"state": "broken"}):
        status, answer = live.call("PATCH", path, live.staff, body)
        assert status == 400 and answer["error"] == "bad_request", (body, answer)
    assert live.call("PATCH", path, live.staff, {"site": "x", "at": "yesterday"})[0] == 400
    assert live.call("PATCH", path, live.staff, {"site": "x", "at": 5})[0] == 400
    ghost = "/v1/tenants/edits/devices/ghost"
    assert live.call("PATCH", ghost, live.staff, {"site": "x"})[0] == 404
    assert live.get(path)[1] == before
    assert live.get("/v1/tenants/edits/sla/history?months=1")[0] == 200


def test_a_site_change_moves_the_slots_from_its_time_on(live) -> None:
    path = "/v1/tenants/moves/devices/b"
    status, history = live.call("PATCH", path, live.staff, {"site": "depot", "at": iso_z(D[15])})
    assert status == 200
    assert history["site"] == "depot" and history["default_site"] == "south"
    assert history["sites"] == [{"from": iso_z(D[15]), "site": "depot"}]
    depot = live.sla("moves", "&site=depot")
    assert (depot["up"], depot["down"], depot["devices"]) == (S - 14 * 24, 0, 1)
    south = live.sla("moves", "&site=south")
    assert (south["up"], south["down"], south["devices"]) == (14 * 24, 0, 1)
    whole = live.sla("moves")
    assert (whole["up"], whole["down"]) == (2 * S - 10, 10)  # moving changes no total


def test_device_history_shows_firmware_from_map_form_frames(live) -> None:
    status, history = live.get("/v1/tenants/fleet/devices/a", live.read["fleet"])
    assert status == 200 and history["device"] == "a" and history["site"] == "north"
    # firmware comes in map-form frames only: 1.0 from the first frame, 1.2 from the 5th
    assert history["firmware"] == [
        {"at": iso_z(D[1]), "firmware": "1.0"},
        {"at": iso_z(D[5]), "firmware": "1.2"},
    ]
    assert live.get("/v1/tenants/fleet/devices/b")[1]["firmware"] == []  # compact frames
    assert live.get("/v1/tenants/fleet/devices/a", live.read["acme"])[0] == 403
    assert live.get("/v1/tenants/fleet/devices/ghost")[0] == 404


def test_replace_retires_the_old_device_and_the_new_one_takes_its_site(live) -> None:
    silent = live.sla("swap")  # c went silent on the 15th: down from then on
    assert (silent["up"], silent["down"]) == (S, S - 14 * 24)
    path = "/v1/tenants/swap/devices/c/replace"
    body = {"new": "c2", "why": "water damage", "at": iso_z(D[15])}
    assert live.call("POST", path, live.read["swap"], body)[0] == 403
    for bad in ({}, {"new": 7}, {"new": "c2", "colour": "red"}):
        assert live.call("POST", path, live.staff, bad)[0] == 400
    assert live.call("POST", path, live.staff, {"new": "ghost"})[0] == 404
    assert live.call("POST", path, live.staff, {"new": "c"})[0] == 400
    assert live.get("/v1/tenants/swap/devices/c")[1]["lifecycle"] == []  # nothing so far

    status, old = live.call("POST", path, live.staff, body)
    assert status == 200 and old["device"] == "c"
    assert [(e["state"], e["link"], e["why"]) for e in old["lifecycle"]] == [
        ("retired", "c2", "water damage")
    ]
    new = live.get("/v1/tenants/swap/devices/c2")[1]
    assert (new["site"], new["default_site"]) == ("north", "south")
    assert [(e["state"], e["link"], e["at"]) for e in new["lifecycle"]] == [
        ("active", "c", iso_z(D[15]))
    ]
    body = live.sla("swap")  # c's counted slots end on the 15th
    assert (body["up"], body["down"], body["attainment"]) == (S, 0, "100.000")
    north = live.sla("swap", "&site=north")
    assert (north["up"], north["devices"]) == (S, 2)
    assert live.call("POST", path, live.staff, {"new": "c2"})[0] == 400  # c is retired


# --- a zoned tenant -----------------------------------------------------------------------------


def test_day_buckets_and_outages_of_a_berlin_tenant_are_in_its_zone(live) -> None:
    token = live.read["berlin"]
    status, body = live.get(
        f"/v1/tenants/berlin/uptime?from={local_s(2026, 3, 2, 0, BERLIN)}"
        f"&to={local_s(2026, 3, 4, 0, BERLIN)}&granularity=day",
        token,
    )
    assert status == 200 and body["zone"] == BERLIN
    assert [(p["start"], p["up"], p["down"]) for p in body["series"]] == [
        ("2026-03-02T00:00:00+01:00", 24, 0),
        ("2026-03-03T00:00:00+01:00", 24, 0),
    ]
    status, body = live.get(
        f"/v1/tenants/berlin/uptime?from={local_s(2026, 3, 29, 0, BERLIN)}"
        f"&to={local_s(2026, 3, 31, 0, BERLIN)}&granularity=day",
        token,
    )
    assert [(p["start"], p["up"]) for p in body["series"]] == [
        ("2026-03-29T00:00:00+01:00", 23),  # the day the clocks spring forward is 23 h long
        ("2026-03-30T00:00:00+02:00", 24),
    ]
    status, body = live.get(f"/v1/tenants/berlin/outages?from={B_START}&to={B_END}", token)
    assert status == 200 and body["zone"] == BERLIN
    assert body["outages"] == [
        {
            "device": "a",
            "start": "2026-03-10T03:00:00+01:00",
            "end": "2026-03-10T08:00:00+01:00",
            "duration_s": 5 * HOUR_S,
            "ongoing": False,
        }
    ]
    status, body = live.get("/v1/tenants/berlin/sla?month=2026-03", token)
    assert (body["from"], body["to"]) == ("2026-03-01T00:00:00+01:00", "2026-04-01T00:00:00+02:00")
    assert (body["up"], body["down"], body["excluded"]) == (31 * 24 - 1 - 5, 5, 0)
    assert body["attainment"] == "99.327"  # 738 / 743 = 99.3270...
    days = {d["date"]: (d["up"], d["down"]) for d in body["days"]}
    assert len(days) == 31 and days["2026-03-10"] == (19, 5) and days["2026-03-29"] == (23, 0)
    # the UTC month holds other slots: Berlin's 1 March starts at 23:00 UTC on 28 February
    status, body = live.get("/v1/tenants/berlin/sla?month=2026-02", token)
    assert (body["up"], body["down"]) == (0, 0) and body["attainment"] is None
