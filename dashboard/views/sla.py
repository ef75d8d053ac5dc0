import altair as alt
import pandas as pd
import streamlit as st

from core.store import Store, Token
from dashboard import data, session


@st.cache_data(ttl=session.CACHE_TTL_S, show_spinner=False)
def figures(_store: Store, token: Token, tenant: str, month: str, now_ns: int) -> data.SlaMonth:
    return data.sla_month(_store, token, tenant, month, now_ns, session.catalog())


def calendar(days: pd.DataFrame, worst: float, target: float) -> alt.LayerChart:
    """The month as a calendar, a cell per local day coloured by its uptime: red at the
    deepest credit band's threshold and below, amber between, green at the target."""
    base = alt.Chart(days).encode(
        x=alt.X(
            "weekday:O",
            sort=["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
            axis=alt.Axis(orient="top", title=None, labelAngle=0),
        ),
        y=alt.Y("week:O", axis=None),
    )
    cells = base.mark_rect(cornerRadius=3, stroke="white", strokeWidth=2).encode(
        color=alt.Color(
            "uptime %:Q",
            scale=alt.Scale(domain=[worst, target, 100], range=["#d62728", "#f2c94c", "#2ca02c"]),
            legend=alt.Legend(title="uptime %", format=".1f"),
        ),
        tooltip=["date", "attainment", "up min", "down min"],
    )
    labels = base.mark_text(baseline="middle").encode(text="day:Q")
    return (cells + labels).properties(height=alt.Step(44))


store = session.store()
token = session.viewer()
assert token is not None  # app.py shows this page only to a signed-in viewer

name = session.pick_tenant(store, token)
now = session.now_ns()
months = data.months(store, token, name, now)
month = st.selectbox("Month", months, index=0)
sla = figures(store, token, name, month, now)
f = sla.figures

st.title(f"SLA · {month}")
kind = "month to date" if not f.complete else "whole month"
st.caption(f"{name}, tier {sla.tenant.plan}, {kind}, months and days in {f.zone}")
if token.scope == "staff" and sla.above_upstream:
    st.warning(
        f"Tier {sla.tenant.plan} promises {f.target} %, above the platform vendor's own "
        f"guarantee of {sla.upstream} %: this SLA is not backed upstream.",
        icon=":material/warning:",
    )
a, b, c, d = st.columns(4)
a.metric("Attainment", sla.attainment)
b.metric(
    "Target",
    f"{f.target} %",
    "met" if f.met else "missed",
    delta_color="normal" if f.met else "inverse",
    delta_arrow="off",
)
c.metric("Credit", f"{f.credit_percent} %", help=f"Credit band: {sla.band}")
if f.complete:
    d.metric("Devices counted", f"{f.devices:,}")
else:
    d.metric(
        "Projection",
        sla.projection,
        help="The month's end if the remaining slots go as the last 7 days went; "
        f"projected credit {f.projected_credit_percent} %",
    )
slot_min = sla.tenant.slot_s / 60
st.caption(
    f"Counted slots: {f.up:,} up, {f.down:,} down, {f.excluded:,} excluded "
    f"(slots of {slot_min:g} min). Credit band: {sla.band}."
)

st.subheader("Daily uptime")
if sla.days["uptime %"].notna().any():
    bands = [float(below) for below, _ in sla.tier.credit_bands]
    worst = min(bands, default=float(f.target) - 1)
    worst = min(worst, float(f.target) - 0.1)
    st.altair_chart(calendar(sla.days, worst, float(f.target)), width="stretch")
else:
    st.info("No counted slot this month yet.")

st.subheader("Sites")
st.dataframe(sla.sites, hide_index=True)

st.subheader("Maintenance windows")
if len(sla.windows):
    # who booked a window is the integrator's business
    shown = sla.windows if token.scope == "staff" else sla.windows.drop(columns="by")
    st.dataframe(shown, hide_index=True)
else:
    st.caption("No maintenance windows.")
st.caption(
    "Attainment is shown rounded down, so it never looks better than the truth. "
    "Figures are those of the store's last checkpoint."
)
