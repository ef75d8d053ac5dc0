"""Streamlit glue shared by the pages: the store handle and who is signed in."""

from __future__ import annotations

import os
import time

import streamlit as st

from core.store import Store, Token
from core.tiers import Catalog, load_catalog
from core.times import NS_PER_S
from dashboard import data

#: Figures are cached this long; the store's checkpoints come every few seconds.
CACHE_TTL_S = 30


def data_dir() -> str:
    """The store to read: ``UPTALLY_DATA``, which ``uptally dashboard`` sets to the store
    ``uptally serve`` uses (the composition root resolves it; the dashboard reads no server
    configuration)."""
    return os.environ.get("UPTALLY_DATA") or "data"


#: The server ``uptally serve`` runs by default, for a dashboard started by hand.
DEFAULT_API = "http://127.0.0.1:8080"


def api_url() -> str:
    """The server staff answer incidents through: ``UPTALLY_API``, which ``uptally
    dashboard`` sets (``--api``, else the config's host and port). The dashboard's store is
    read-only; the server's writer owns every write."""
    return os.environ.get("UPTALLY_API") or DEFAULT_API


def secret() -> str:
    """The signed-in viewer's secret, to call the API as them (held in the session only)."""
    return str(st.session_state.get("secret", ""))


def catalog() -> Catalog:
    """The tiers and vendor guarantee of the config ``uptally dashboard`` was given
    (``UPTALLY_CONFIG``), those ``uptally serve`` uses."""
    return _catalog(os.environ.get("UPTALLY_CONFIG"))


@st.cache_resource(show_spinner=False)
def _catalog(path: str | None) -> Catalog:
    return load_catalog(path)


def revenue_settings() -> data.RevenueSettings:
    """The cost model (``[costs]``) and valuation multiple (``[revenue] arr_multiple``) of the
    same config, each None when it does not configure them."""
    return _revenue_settings(os.environ.get("UPTALLY_CONFIG"))


@st.cache_resource(show_spinner=False)
def _revenue_settings(path: str | None) -> data.RevenueSettings:
    return data.load_revenue_settings(path)


@st.cache_resource(show_spinner=False)
def _open(path: str) -> Store:
    return data.open_store(path, catalog().tiers)


def store() -> Store:
    """The read-only store, opened once per process; a page without one stops here."""
    path = data_dir()
    try:
        return _open(path)
    except (FileNotFoundError, OSError) as exc:
        st.error(f"Cannot open the store: {exc}")
        st.stop()
        raise  # st.stop() does not return; this tells type checkers so


def viewer() -> Token | None:
    """The signed-in token, checked against the store on every run: a revoked token signs
    the session out at the next click."""
    secret = st.session_state.get("secret")
    if secret is None:
        return None
    try:
        return data.sign_in(store(), secret)
    except data.SignInRefused:
        del st.session_state["secret"]
        st.session_state["signed_out_because"] = "Your sign-in is no longer valid."
        return None


def sign_out() -> None:
    st.session_state.pop("secret", None)


def now_ns() -> int:
    """Now, to the cache's resolution, so that reruns within it share cached figures."""
    return int(time.time()) // CACHE_TTL_S * CACHE_TTL_S * NS_PER_S


def pick_tenant(store: Store, token: Token) -> str:
    """The tenant the page shows: chosen by staff (kept in the URL's ``?tenant=``), a
    client's own for a read token. A tenant in the URL the viewer may not read stops the
    page with the same answer whether it exists or not."""
    names = [t.name for t in data.visible_tenants(store, token)]
    wanted = st.query_params.get("tenant")
    if wanted is not None:
        try:
            data.tenant_for(store, token, wanted)
        except data.NotAllowed as exc:
            st.error(str(exc))
            st.stop()
    if not names:
        st.info("No tenants yet: `uptally tenant add NAME` makes one.")
        st.stop()
    if token.scope == "staff":
        name = st.selectbox("Tenant", names, index=names.index(wanted) if wanted else 0)
    else:
        name = names[0]  # a read token reads its own tenant only
    st.query_params["tenant"] = name
    return str(name)
