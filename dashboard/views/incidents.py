import time

import altair as alt
import pandas as pd
import streamlit as st

from core.incidents import OPEN_STATES
from core.store import Store, Token
from core.times import NS_PER_S, S_PER_DAY
from dashboard import data, session

PERIODS = {"24 hours": 1, "7 days": 7, "30 days": 30}
#: a state's colour on the timeline: open red, acknowledged amber, closed green, never grey
STATE_COLOURS = {
    "open": "#d62728",
    "acknowledged": "#f2a93b",
    "resolved": "#2ca02c",
    "cleared_by_backfill": "#9e9e9e",
}
TIMES = ("started", "ended", "detected", "acknowledged", "resolved")
#: who answered is the integrator's business, not its client's
STAFF_ONLY = ["acknowledged by", "resolved by"]
#: what to read first, left to right: what, since when, and how it stands against the targets
INCIDENT_ORDER = [
    "id",
    "subject",
    "kind",
    "state",
    "started",
    "ended",
    "response",
    "response min",
    "resolve",
    "resolve min",
    "devices",
    "part of",
    "detected",
    "acknowledged",
    "resolved",
    "acknowledge note",
    "resolve note",
    *STAFF_ONLY,
]
EVENT_ORDER = ["time", "type", "subject", "summary", "state", "last status", "attempts"]
EVENT_ORDER += ["deliveries", "event"]


@st.cache_data(ttl=session.CACHE_TTL_S, show_spinner=False)
def figures(
    _store: Store, token: Token, tenant: str, days: int, month: str, now_ns: int
) -> tuple[pd.DataFrame, data.IncidentCompliance, pd.DataFrame]:
    start = now_ns - days * S_PER_DAY * NS_PER_S
    catalog = session.catalog()
    return (
        data.incidents(_store, token, tenant, start, now_ns + 1, now_ns, catalog),
        data.incident_compliance(_store, token, tenant, month, now_ns, catalog),
        data.alert_log(_store, token, tenant, start, now_ns + 1),
    )


@st.cache_data(ttl=session.CACHE_TTL_S, show_spinner=False)
def attempts(_store: Store, token: Token, tenant: str, event: str, now_ns: int) -> pd.DataFrame:
    return data.event_attempts(_store, token, tenant, event)


def timeline(incidents: pd.DataFrame, start: pd.Timestamp, now: pd.Timestamp) -> alt.Chart:
    """A bar per incident from its start to its end (or now), a row per device or gateway,
    coloured by state; times are the tenant's wall clock. The axis spans the incidents
    (within the period), not the whole period: a week-long axis would draw an hour's
    outage as a hairline."""
    first = incidents["started"].dt.tz_localize(None).min()
    span = now - max(start, first)
    start = max(start, first - span / 20)
    long = now - start > pd.Timedelta(days=1)
    rows = incidents.assign(
        row=[
            f"{subject} (#{part})" if pd.notna(part) else str(subject)
            for subject, part in zip(incidents["subject"], incidents["part of"], strict=True)
        ],
        start=incidents["started"].dt.tz_localize(None).clip(lower=start),
        end=incidents["ended"].dt.tz_localize(None).fillna(now).clip(upper=now),
    )[["id", "kind", "row", "state", "start", "end", "started", "ended"]]
    rows["started"] = rows["started"].dt.strftime("%Y-%m-%d %H:%M")
    rows["ended"] = rows["ended"].dt.strftime("%Y-%m-%d %H:%M").fillna("ongoing")
    order = rows.sort_values(["start", "id"])["row"].drop_duplicates().tolist()
    return (
        alt.Chart(rows)
        .mark_bar(cornerRadius=3, height={"band": 0.7}, clip=True)
        .encode(
            x=alt.X(
                "start:T",
                title=None,
                scale=alt.Scale(domain=[start.isoformat(), now.isoformat()]),
                axis=alt.Axis(format="%d %b %H:%M" if long else "%H:%M", labelAngle=0, tickCount=8),
            ),
            x2="end:T",
            y=alt.Y("row:N", title=None, sort=order),
            color=alt.Color(
                "state:N",
                scale=alt.Scale(domain=list(STATE_COLOURS), range=list(STATE_COLOURS.values())),
                legend=alt.Legend(title=None, orient="top"),
            ),
            tooltip=["id", "kind", "row", "state", "started", "ended"],
        )
        .properties(height=alt.Step(28))
    )


def status_colour(status: object) -> str:
    """A target's status in the table: missed red, pending amber, met green."""
    colour = {"missed": "#d62728", "pending": "#c77c00", "met": "#2ca02c"}.get(str(status))
    return f"color: {colour}" if colour else ""


def tally(measure: str, figures: data.IncidentCompliance) -> tuple[str, str, bool]:
    t = figures.figures.response if measure == "response" else figures.figures.resolve
    return (
        figures.response_percent if measure == "response" else figures.resolve_percent,
        f"{t.met} met · {t.missed} missed · {t.pending} pending",
        t.missed == 0,
    )


def answer_form(store: Store, token: Token, name: str, incidents: pd.DataFrame) -> None:
    """Staff acknowledge or resolve an open incident with a note, through the server's API."""
    answerable = incidents[incidents["state"].isin(OPEN_STATES)]
    if answerable.empty:
        st.caption("No open incident to answer.")
        return
    labels = {
        int(row.id): f"#{row.id} {row.kind} {row.subject} ({row.state})"
        for row in answerable.itertuples()
    }
    with st.form("answer", clear_on_submit=False):
        left, right = st.columns([3, 2])
        chosen = left.selectbox("Incident", list(labels), format_func=labels.__getitem__)
        action = right.radio("Answer", ["acknowledge", "resolve"], horizontal=True)
        note = st.text_area(
            "Note", max_chars=2000, help="Required to resolve; the client sees it too"
        )
        sent = st.form_submit_button("Send", icon=":material/send:")
    if not sent:
        return
    try:
        data.answer_incident(
            store, token, session.secret(), session.api_url(), name, chosen, action, note
        )
    except (data.AnswerRefused, data.NotAllowed) as exc:
        st.error(f"Cannot {action} incident #{chosen}: {exc}", icon=":material/error:")
        return
    past = "acknowledged" if action == "acknowledge" else "resolved"
    st.session_state["answered"] = f"Incident #{chosen} {past}."
    # the answer is the server's, stamped at its clock: read as of after it, at once
    st.session_state["answered_ns"] = time.time_ns()
    figures.clear()
    attempts.clear()
    st.rerun()


store = session.store()
token = session.viewer()
assert token is not None  # app.py shows this page only to a signed-in viewer

name = session.pick_tenant(store, token)
now = max(session.now_ns(), int(st.session_state.get("answered_ns", 0)))
months = data.months(store, token, name, now)
left, right = st.columns([1, 2])
month = left.selectbox("Month", months, index=0, help="The month of the compliance figures")
with right:
    period = st.segmented_control("Period", list(PERIODS), default="7 days") or "7 days"
incidents, compliance, log = figures(store, token, name, PERIODS[period], month, now)
zone = compliance.tenant.tz

st.title("Incidents")
st.caption(
    f"{name}, tier {compliance.tenant.plan}: response within {compliance.response_target_min} "
    f"min, resolve within {compliance.resolve_target_min} min, counted in support hours "
    f"{compliance.support_hours} ({zone})"
)
if done := st.session_state.pop("answered", None):
    st.success(done, icon=":material/check_circle:")

a, b, c, d = st.columns(4)
a.metric("Open now", f"{compliance.open_now:,}", help="Not counting devices attached to a gateway")
b.metric(
    f"Incidents in {compliance.month}",
    f"{compliance.incidents:,}",
    help=f"{compliance.figures.excluded} excluded: cleared by backfill, or attached to a "
    "gateway incident (answered with it)",
)
for column, measure in ((c, "response"), (d, "resolve")):
    value, counts, clean = tally(measure, compliance)
    column.metric(
        f"{measure.capitalize()} compliance",
        value,
        counts,
        delta_color="normal" if clean else "inverse",
        delta_arrow="off",
        help="met ÷ (met + missed), rounded down; pending incidents are not counted yet",
    )

local_now = pd.Timestamp(now, unit="ns", tz="UTC").tz_convert(zone).tz_localize(None)
local_start = local_now - pd.Timedelta(days=PERIODS[period])
st.subheader("Timeline")
if incidents.empty:
    st.info(f"No incidents in the last {period}.")
else:
    st.altair_chart(timeline(incidents, local_start, local_now), width="stretch")

st.subheader("Incidents")
local = st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm", timezone=zone)
shown = incidents if token.scope == "staff" else incidents.drop(columns=STAFF_ONLY)
st.dataframe(
    shown.style.map(status_colour, subset=["response", "resolve"]),
    hide_index=True,
    column_order=[c for c in INCIDENT_ORDER if c in shown.columns],
    column_config={
        **dict.fromkeys(TIMES, local),
        "id": st.column_config.NumberColumn(format="%d"),
        "part of": st.column_config.NumberColumn(format="%d", help="its gateway's incident"),
        "response min": st.column_config.NumberColumn(format="%.1f", help="support minutes"),
        "resolve min": st.column_config.NumberColumn(format="%.1f", help="support minutes"),
    },
)
if token.scope == "staff":
    st.subheader("Answer an incident")
    answer_form(store, token, name, incidents)

st.subheader("Alert log")
if log.empty:
    st.caption(f"No events in the last {period}.")
else:
    st.dataframe(
        log,
        hide_index=True,
        column_order=EVENT_ORDER,
        column_config={"time": local, "summary": st.column_config.TextColumn(width="medium")},
    )
    with st.expander("Delivery attempts", icon=":material/send:"):
        events = {
            str(e): f"{when:%Y-%m-%d %H:%M} {kind} {subject} ({e})"
            for e, when, kind, subject in zip(
                log["event"], log["time"], log["type"], log["subject"], strict=True
            )
        }
        event = st.selectbox("Event", list(events), format_func=events.__getitem__)
        tried = attempts(store, token, name, str(event), now)
        if tried.empty:
            st.caption("No webhook endpoint took this event.")
        else:
            st.dataframe(tried, hide_index=True, column_config={"at": local})
st.caption(
    f"Times are {zone}. Support minutes are as of the page's now; incidents open before the "
    "period are listed while they are open."
)
