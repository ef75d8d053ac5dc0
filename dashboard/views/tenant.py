import pandas as pd
import streamlit as st

from core.store import Store, Token
from core.times import NS_PER_S, S_PER_DAY
from dashboard import data, session

PERIODS = {"24 hours": 1, "7 days": 7, "30 days": 30}


@st.cache_data(ttl=session.CACHE_TTL_S, show_spinner=False)
def figures(
    _store: Store, token: Token, tenant: str, days: int, now_ns: int
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    start = now_ns - days * S_PER_DAY * NS_PER_S
    return (
        data.devices(_store, token, tenant, start, now_ns, now_ns),
        data.uptime_series(_store, token, tenant, start, now_ns, now_ns),
        data.outages(_store, token, tenant, start, now_ns, now_ns),
    )


store = session.store()
token = session.viewer()
assert token is not None  # app.py shows this page only to a signed-in viewer

name = session.pick_tenant(store, token)

st.title(name)
period = st.segmented_control("Period", list(PERIODS), default="24 hours") or "24 hours"
devices, series, outages = figures(store, token, name, PERIODS[period], session.now_ns())

fleet_up = data.fleet_percent(devices)
a, b, c, d = st.columns(4)
a.metric("Fleet uptime", "–" if fleet_up is None else f"{fleet_up:.3f} %")
b.metric("Devices", f"{len(devices):,}")
c.metric("Online now", f"{int((devices['status'] == 'online').sum()):,}")
d.metric("Outages", f"{len(outages):,}")

st.subheader("Fleet uptime")
st.line_chart(series, x="start", y="uptime %")
zone = data.tenant_for(store, token, name).tz
local = st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm", timezone=zone)
st.subheader("Devices")
st.dataframe(devices, hide_index=True, column_config={"last seen": local})
st.subheader("Outages")
st.dataframe(outages, hide_index=True, column_config={"start": local, "end": local})
st.caption(f"Times are {zone}. Figures are those of the store's last checkpoint.")
