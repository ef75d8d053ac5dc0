"""Every dashboard page under Streamlit's AppTest: signing in and out, what staff and client
users see, and that no page shows a client another tenant."""

from __future__ import annotations

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from core import zones
from core.sla import attainment
from dashboard import session
from tests.support.apptest import APP, shown, signed_in
from tests.support.tenants import FLEETS, revoke, seed


@pytest.fixture
def seeded(tmp_path, monkeypatch):
    s = seed(tmp_path / "db")
    monkeypatch.setenv("UPTALLY_DATA", str(s.data))
    monkeypatch.delenv("UPTALLY_CONFIG", raising=False)
    return s


def leaks(text: str, tenant: str) -> list[str]:
    return [word for word in (tenant, *FLEETS[tenant]) if word in text]


def test_a_client_sees_its_own_tenant_and_nothing_of_another(seeded) -> None:
    at = signed_in(seeded.read["acme"])
    assert [t.value for t in at.title] == ["acme"]
    devices = at.dataframe[0].value
    assert isinstance(devices, pd.DataFrame)
    assert list(devices["device"]) == FLEETS["acme"]
    assert not at.selectbox  # nothing to choose from
    for period in ("24 hours", "7 days", "30 days"):
        at.button_group[0].set_value(period).run()
        assert not at.exception
        assert leaks(shown(at), "globex") == []
    # the staff-only fleet page is not there for a client
    with pytest.raises(ValueError):
        at.switch_page("views/fleet.py")


@pytest.mark.parametrize("asked", ["globex", "initech"])
def test_a_client_asking_for_another_tenant_by_url_is_refused(seeded, asked) -> None:
    at = signed_in(seeded.read["acme"])
    at.query_params["tenant"] = asked
    at.run()
    assert not at.exception
    # the same answer for another tenant and for none: clients learn nothing of either
    assert [e.value for e in at.error] == [f"this sign-in may not read tenant {asked!r}"]
    assert not at.dataframe
    assert leaks(shown(at).replace(f"{asked!r}", ""), "globex") == []


def test_staff_see_every_tenant(seeded) -> None:
    at = signed_in(seeded.staff)
    assert [t.value for t in at.title] == ["Fleet"]
    fleet = at.dataframe[0].value
    assert list(fleet["tenant"]) == ["acme", "globex"]
    assert list(fleet["devices"]) == [3, 1]
    at.switch_page("views/tenant.py").run()
    assert not at.exception
    assert at.selectbox[0].options == ["acme", "globex"]
    at.selectbox[0].select("globex").run()
    assert [t.value for t in at.title] == ["globex"]
    assert list(at.dataframe[0].value["device"]) == FLEETS["globex"]
    assert list(at.dataframe[1].value["device"]) == FLEETS["globex"]  # its outage


def test_a_revoked_token_is_signed_out_at_the_next_click(seeded) -> None:
    at = signed_in(seeded.read["acme"])
    assert [t.value for t in at.title] == ["acme"]
    revoke(seeded.data, seeded.read_ids["acme"])
    at.run()
    assert [t.value for t in at.title] == ["Uptally"]
    assert [w.value for w in at.warning] == ["Your sign-in is no longer valid."]
    assert not at.dataframe
    assert "secret" not in at.session_state


@pytest.mark.parametrize("which", ["ingest", "wrong"])
def test_ingest_and_unknown_tokens_do_not_sign_in(seeded, which) -> None:
    secret = seeded.ingest["acme"] if which == "ingest" else "upt_not-a-token"
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.text_input[0].input(secret)
    at.button[0].click().run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Uptally"]
    assert len(at.error) == 1 and at.error[0].value.startswith("Cannot sign in")
    assert "secret" not in at.session_state
    assert not at.dataframe


def test_sign_out(seeded) -> None:
    at = signed_in(seeded.read["globex"])
    assert [t.value for t in at.title] == ["globex"]
    at.sidebar.button[0].click().run()
    assert [t.value for t in at.title] == ["Uptally"]
    assert "secret" not in at.session_state


def test_no_store_is_a_clear_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("UPTALLY_DATA", str(tmp_path / "none"))
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert at.error[0].value.startswith("Cannot open the store: no store in")


@pytest.fixture
def vendor_config(tmp_path, monkeypatch):
    """A tier file whose vendor guarantees less than the standard tier's 99.5 %."""
    path = tmp_path / "uptally.toml"
    path.write_text('[upstream]\nuptime_guarantee = "99.0"\n')
    monkeypatch.setenv("UPTALLY_CONFIG", str(path))
    return path


def sla_page(at: AppTest) -> AppTest:
    at.switch_page("views/sla.py").run()
    assert not at.exception
    return at


def test_a_client_sees_its_own_sla_month_and_no_vendor_flag(seeded, vendor_config) -> None:
    at = signed_in(seeded.read["acme"])
    before = session.now_ns()
    sla_page(at)
    after = session.now_ns()
    year, month = zones.month_of(before, "UTC")
    assert [t.value for t in at.title] == [f"SLA · {year:04d}-{month:02d}"]
    assert [s.label for s in at.selectbox] == ["Month"]  # no tenant to choose
    # the page's figures are the engine's, as of the page's now (30 s steps: one of two)
    store = session.store()  # the dashboard's own read-only handle: one per process
    acme = store.tenant("acme")
    oracles = [attainment.month_sla(store, acme, year, month, now) for now in {before, after}]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Attainment"] in [f"{attainment.shown(o.attainment)} %" for o in oracles]
    assert metrics["Target"] == "99.5 %"
    assert metrics["Credit"] in [f"{o.credit_percent} %" for o in oracles]
    sites = at.dataframe[0].value
    assert list(sites["site"]) == ["acme-gw"] and list(sites["devices"]) == [3]
    # the integrator's vendor risk is the integrator's business, not its client's
    assert not at.warning
    assert leaks(shown(at), "globex") == []
    at.selectbox[0].select(at.selectbox[0].options[1]).run()  # the month before: nothing yet
    assert {m.label: m.value for m in at.metric}["Attainment"] == "n/a"


def test_staff_see_the_vendor_flag_and_any_tenants_sla(seeded, vendor_config) -> None:
    at = sla_page(signed_in(seeded.staff))
    assert [s.label for s in at.selectbox] == ["Tenant", "Month"]
    assert len(at.warning) == 1 and "above the platform vendor's own guarantee of 99.0 %" in str(
        at.warning[0].value
    )
    at.selectbox[0].select("globex").run()
    assert not at.exception
    assert list(at.dataframe[0].value["site"]) == ["globex-gw"]


def test_a_client_asking_for_another_tenants_sla_is_refused(seeded) -> None:
    at = signed_in(seeded.read["acme"])
    at.query_params["tenant"] = "globex"
    sla_page(at)
    assert [e.value for e in at.error] == ["this sign-in may not read tenant 'globex'"]
    assert not at.metric and not at.dataframe
