import pandas as pd
import streamlit as st

from core.store import Store, Token
from dashboard import data, session


@st.cache_data(ttl=session.CACHE_TTL_S, show_spinner=False)
def fleet(_store: Store, token: Token, now_ns: int) -> pd.DataFrame:
    return data.fleet(_store, token, now_ns)


store = session.store()
token = session.viewer()
assert token is not None  # app.py shows this page only to a signed-in viewer

st.title("Fleet")
table = fleet(store, token, session.now_ns())
a, b, c = st.columns(3)
a.metric("Tenants", len(table))
b.metric("Devices", int(table["devices"].sum()))
online = int(table["online"].sum())
c.metric("Online now", f"{online:,}")
st.dataframe(
    table,
    hide_index=True,
    column_config={"uptime %": st.column_config.NumberColumn(format="%.3f", help="last 24 h")},
)
