"""Sites, lifecycle, firmware history, windows and tenant settings as the store keeps them."""

from __future__ import annotations

import msgpack
import pytest

from core.sla.windows import Window
from core.store import Store

S = 10**9
T0 = 1_772_323_200  # 2026-03-01T00:00Z


@pytest.fixture
def store(engine, tmp_path):
    s = Store(tmp_path / "db", engine=engine)
    s.add_tenant("acme")
    yield s
    s.close()


def send(store: Store, gateway: str, frames: list, now_s: int = T0 + 3600) -> None:
    body = msgpack.packb({"gateway": gateway, "frames": frames})
    assert store.ingest(1, body, now_s * S).rejected == 0


def test_a_device_site_defaults_to_its_first_gateway_and_moves_dated(store) -> None:
    send(store, "hall-a", [["d1", T0], ["d2", T0]])
    send(store, "hall-b", [["d2", T0 + 60], ["d3", T0 + 60]])  # d2 stays hall-a's
    store.register_device(1, "d4")  # never reported: unassigned
    sites = store.site_history(1)
    assert [sites.current(i) for i in range(4)] == ["hall-a", "hall-a", "hall-b", ""]
    store.set_site(1, "d1", "Roof", (T0 + 600) * S)
    sites = store.site_history(1)
    assert sites.site_at(0, (T0 + 599) * S) == "hall-a"
    assert sites.site_at(0, (T0 + 600) * S) == "Roof"
    assert sites.sites() == ["Roof", "hall-a", "hall-b"]
    with pytest.raises(ValueError, match="site name"):
        store.set_site(1, "d1", " ", T0 * S)


def test_firmware_changes_are_dated_from_frames_and_backfill_changes_nothing(store) -> None:
    send(store, "gw", [{"d": "d1", "t": T0, "fw": "1.0"}, {"d": "d1", "t": T0 + 60, "fw": "1.0"}])
    send(store, "gw", [{"d": "d1", "t": T0 + 120, "fw": "1.1"}, {"d": "d2", "t": T0, "fw": "7"}])
    send(store, "gw", [{"d": "d1", "t": T0 + 30, "fw": "1.0"}])  # late, older: no change back
    send(store, "gw", [["d1", T0 + 180]])  # the compact form holds no firmware
    assert store.firmware_history(1, "d1") == [(T0 * S, "1.0"), ((T0 + 120) * S, "1.1")]
    assert store.firmware_history(1, "d2") == [(T0 * S, "7")]


def test_firmware_history_survives_a_reopen(tmp_path, engine) -> None:
    with Store(tmp_path / "db", engine=engine) as store:
        store.add_tenant("acme")
        send(store, "gw", [{"d": "d1", "t": T0, "fw": "1.0"}])
    with Store(tmp_path / "db", engine=engine) as store:
        send(store, "gw", [{"d": "d1", "t": T0 + 60, "fw": "1.0"}])  # not a change
        send(store, "gw", [{"d": "d1", "t": T0 + 120, "fw": "2.0"}])
        assert [fw for _, fw in store.firmware_history(1, "d1")] == ["1.0", "2.0"]


def test_lifecycle_changes_are_ordered_and_retirement_is_final(store) -> None:
    send(store, "gw", [["d1", T0]])
    store.set_lifecycle(1, "d1", "maintenance", (T0 + 600) * S, by="ops", why="swap")
    with pytest.raises(ValueError, match="predate"):
        store.set_lifecycle(1, "d1", "active", (T0 + 300) * S)
    with pytest.raises(ValueError, match="state must be one of"):
        store.set_lifecycle(1, "d1", "provisioned", (T0 + 900) * S)
    store.set_lifecycle(1, "d1", "retired", (T0 + 900) * S)
    assert store.devstate(1)["retired_ms"][0] == (T0 + 900) * 1000
    with pytest.raises(ValueError, match="final"):
        store.set_lifecycle(1, "d1", "active", (T0 + 1200) * S)
    assert [(e.state, e.by, e.why) for e in store.device_lifecycle(1, "d1")] == [
        ("maintenance", "ops", "swap"),
        ("retired", "", ""),
    ]


def test_window_ids_are_never_reused(store) -> None:
    spec = {"scope": "tenant", "start": "2026-03-01T00:00:00Z", "end": "2026-03-01T01:00:00Z"}
    first = store.add_window(1, Window.from_spec(spec))
    store.delete_window(1, first.id)
    second = store.add_window(1, Window.from_spec(spec))
    assert second.id == first.id + 1
    assert [w.id for w in store.windows(1)] == [second.id]
    with pytest.raises(KeyError):
        store.delete_window(1, first.id)


def test_tenant_settings_are_checked_and_the_currency_never_changes(store) -> None:
    tenant = store.add_tenant("globex", tz="Europe/Berlin", tax_rate="19", display_name="Globex")
    assert (tenant.tz, tenant.currency, tenant.tax_rate) == ("Europe/Berlin", "USD", "19")
    with pytest.raises(ValueError, match="unknown time zone"):
        store.set_tenant(tenant.id, tz="Mars/Base")
    with pytest.raises(ValueError, match="never changes"):
        store.set_tenant(tenant.id, currency="EUR")
    with pytest.raises(ValueError, match="tax_rate"):
        store.set_tenant(tenant.id, tax_rate=19.0)
    with pytest.raises(ValueError, match="priced in USD"):
        store.add_tenant("initech", currency="EUR")
    store.set_tenant(tenant.id, plan="premium", tz="Asia/Kolkata")
    assert (store.tenant("globex").plan, store.tenant("globex").tz) == ("premium", "Asia/Kolkata")
