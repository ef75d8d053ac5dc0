"""Every dashboard page under Streamlit's AppTest: signing in and out, what staff and client
users see, and that no page shows a client another tenant."""

from __future__ import annotations

import sys

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from server.testing import REPO
from tests.support.tenants import FLEETS, revoke, seed

APP = str(REPO / "dashboard" / "app.py")


@pytest.fixture(autouse=True)
def keep_main_module(monkeypatch):
    """Streamlit installs each script it runs as ``sys.modules["__main__"]`` and leaves it
    there; a later test's spawned process would then run the dashboard as its main module."""
    monkeypatch.setitem(sys.modules, "__main__", sys.modules["__main__"])


@pytest.fixture
def seeded(tmp_path, monkeypatch):
    s = seed(tmp_path / "db")
    monkeypatch.setenv("UPTALLY_DATA", str(s.data))
    monkeypatch.delenv("UPTALLY_CONFIG", raising=False)
    return s


def signed_in(secret: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert [t.value for t in at.title] == ["Uptally"]
    at.text_input[0].input(secret)
    at.button[0].click().run()
    assert not at.exception
    return at


def shown(at: AppTest) -> str:
    """Every text the page shows, table cells and choices included."""
    parts: list[str] = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "error", "warning"):
        parts += [str(e.value) for e in getattr(at, kind)]
    parts += [f"{m.label} {m.value}" for m in at.metric]
    parts += [" ".join(map(str, s.options)) for s in at.selectbox]
    parts += [frame.value.to_string() for frame in at.dataframe]
    return "\n".join(parts)


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
