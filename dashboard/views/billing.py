import altair as alt
import pandas as pd
import streamlit as st

from core import zones
from core.billing import export
from core.billing.revenue import CostModel
from core.billing.subscriptions import Term
from core.store import Store, Token
from dashboard import data, session

#: a movement's colour: growth greens and blue, losses amber and red
MOVEMENT_COLOURS = {
    "new": "#2ca02c",
    "reactivation": "#17becf",
    "expansion": "#1f77b4",
    "contraction": "#f2a93b",
    "churn": "#d62728",
}
COUNTS = {key: st.column_config.NumberColumn(format="localized") for key in ("devices", "frames")}
RETENTION_WINDOWS = {"12 months": 12, "3 months": 3, "1 month": 1}
INVOICE_ORDER = ["number", "name", "tenant", "total", "subtotal", "tax", "devices", "frames"]
INVOICE_ORDER += ["attainment", "credit %", "tier", "issued"]


@st.cache_data(ttl=session.CACHE_TTL_S, show_spinner=False)
def invoices(_store: Store, token: Token, month: str, now_ns: int) -> data.MonthInvoices:
    return data.month_invoices(_store, token, month)


@st.cache_data(ttl=session.CACHE_TTL_S, show_spinner=False)
def lines(_store: Store, token: Token, number: str) -> pd.DataFrame:
    return data.invoice_lines(_store, token, number)  # an issued invoice never changes


@st.cache_data(ttl=session.CACHE_TTL_S, show_spinner=False)
def revenue(
    _store: Store, token: Token, window: int, now_ns: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    return data.mrr_history(_store, token), data.retention_history(_store, token, window)


@st.cache_data(ttl=session.CACHE_TTL_S, show_spinner=False)
def margins(
    _store: Store, token: Token, month: str, costs: CostModel, now_ns: int
) -> data.MonthMargins:
    return data.month_margins(_store, token, month, costs)


def when_text(ns: int, zone: str) -> str:
    """An instant to the minute in ``zone``, with its offset: ``2026-12-08 01:29 +01:00``."""
    local = zones.iso_local(ns, zone)
    return f"{local[:10]} {local[11:16]} {'UTC' if zone == 'UTC' else local[19:]}"


def clear_caches() -> None:
    for cached in (invoices, lines, revenue, margins):
        cached.clear()


def movements_chart(history: pd.DataFrame, currency: str) -> alt.LayerChart:
    """Stacked bars of each month's movements, growth above zero and losses below, and the
    month-end MRR as a line over them; axes in major units, tooltips the exact figures."""
    rows = []
    for row in history.to_dict("records"):
        for kind in data.MOVEMENT_KINDS:
            size = int(row[kind])
            if size:
                signed = -size if kind in ("contraction", "churn") else size
                rows.append(
                    {
                        "month": row["month"],
                        "movement": kind,
                        "value": data.major_units(signed, currency),
                        "amount": data.money_text(signed, currency),
                    }
                )
    bars = (
        alt.Chart(pd.DataFrame(rows, columns=["month", "movement", "value", "amount"]))
        .mark_bar(size=28)
        .encode(
            x=alt.X("month:O", title=None, axis=alt.Axis(labelAngle=0)),
            y=alt.Y("value:Q", title=currency, stack="zero"),
            color=alt.Color(
                "movement:N",
                scale=alt.Scale(
                    domain=list(MOVEMENT_COLOURS), range=list(MOVEMENT_COLOURS.values())
                ),
                legend=alt.Legend(title=None, orient="top"),
            ),
            tooltip=["month", "movement", "amount"],
        )
    )
    ends = history.assign(
        value=[data.major_units(int(v), currency) for v in history["end"]],
        mrr=[data.money_text(int(v), currency) for v in history["end"]],
    )[["month", "value", "mrr"]]
    line = (
        alt.Chart(ends)
        .mark_line(color="#333333", point=alt.OverlayMarkDef(color="#333333", size=60))
        .encode(x="month:O", y="value:Q", tooltip=["month", alt.Tooltip("mrr", title="MRR")])
    )
    zero = alt.Chart(pd.DataFrame({"value": [0]})).mark_rule(color="#999999").encode(y="value:Q")
    return (bars + zero + line).properties(
        height=320, title=alt.Title("Movements (bars) and month-end MRR (line)", fontSize=12)
    )


def retention_chart(found: pd.DataFrame) -> alt.Chart:
    long = found.melt(
        id_vars=["month"],
        value_vars=["nrr %", "grr %", "logo churn %"],
        var_name="figure",
        value_name="percent",
    ).dropna()
    long["figure"] = long["figure"].str.removesuffix(" %").str.upper().str.replace("LOGO", "logo")
    return (
        alt.Chart(long)
        .mark_line(point=True)
        .encode(
            x=alt.X("month:O", title=None, axis=alt.Axis(labelAngle=0)),
            y=alt.Y("percent:Q", title="%"),
            color=alt.Color("figure:N", legend=alt.Legend(title=None, orient="top")),
            tooltip=["month", "figure", alt.Tooltip("percent:Q", format=".1f")],
        )
        .properties(height=240)
    )


def what_if_chart(table: pd.DataFrame, currency: str) -> alt.LayerChart:
    """Margin against fleet size, red below zero (a price that loses money at that size)."""
    shown = table.assign(loses=table["margin_minor"] < 0)
    base = alt.Chart(shown).encode(
        x=alt.X("devices:Q", title="devices"),
        y=alt.Y("margin (major):Q", title=f"margin ({currency} a month)"),
        tooltip=["devices", "revenue", "cost", "margin", "margin %"],
    )
    line = base.mark_line(color="#1f77b4")
    points = base.mark_circle(size=30).encode(
        color=alt.Color(
            "loses:N",
            scale=alt.Scale(domain=[False, True], range=["#1f77b4", "#d62728"]),
            legend=None,
        )
    )
    zero = alt.Chart(pd.DataFrame({"y": [0]})).mark_rule(color="#999999").encode(y="y:Q")
    return (line + points + zero).properties(height=300)


def close_form(token: Token, month: str) -> None:
    """Staff close the month through the server, behind a confirmation."""
    with st.container(border=True):
        st.markdown(f"**Close {month}**")
        st.caption(
            "Issues every tenant's invoice of the month, numbered in one sequence, and keeps "
            "each tenant's month-end MRR. From then on the server refuses frames that fall in "
            "the month. The server does it in one transaction; closing twice issues nothing."
        )
        left, right = st.columns([1, 3])
        prefix = left.text_input("Invoice prefix", value="INV", max_chars=16)
        sure = right.checkbox("I understand issued invoices never change", key=f"sure-{month}")
        clicked = st.button(
            f"Close {month}", type="primary", disabled=not sure, icon=":material/lock:"
        )
    if not clicked:
        return
    try:
        closed = data.close_month(
            token, session.secret(), session.api_url(), month, prefix.strip().upper()
        )
    except (data.CloseRefused, data.NotAllowed) as exc:
        st.error(f"Cannot close {month}: {exc}", icon=":material/error:")
        return
    if closed.already_closed:
        st.session_state["billing_done"] = f"{month} was closed already: nothing issued."
    else:
        numbers = closed.numbers
        span = f": {numbers[0]} to {numbers[-1]}" if len(numbers) > 1 else ""
        span = f": {numbers[0]}" if len(numbers) == 1 else span
        st.session_state["billing_done"] = f"{month} closed, {len(numbers)} invoices issued{span}."
    st.session_state["billing_month"] = month
    clear_caches()
    st.rerun()


def invoice_part(store: Store, token: Token, month: str, now: int) -> None:
    found = invoices(store, token, month, now)
    staff = token.scope == "staff"
    if found.closed_ns is not None and staff:
        st.caption(
            f"{month} closed {when_text(found.closed_ns, 'UTC')}: "
            f"{len(found.records)} invoices issued."
        )
    for row in found.totals.to_dict("records"):
        a, b, c = st.columns(3)
        counted = f", {row['invoices']:,} invoices" if staff else ""
        a.metric(f"Subtotal ({row['currency']}{counted})", row["subtotal"], help="Lines 1-5")
        b.metric("Tax", row["tax"])
        c.metric("Total", row["total"])
    if not found.records:
        if staff:
            st.info(f"{month} is not closed: no invoices issued yet.", icon=":material/info:")
            close_form(token, month)
        else:
            st.info(f"No invoice for {month}.")
        return
    shown = found.table.assign(issued=[when_text(r["issued_ns"], r["zone"]) for r in found.records])
    if not staff:  # a client's own name on every row says nothing
        shown = shown.drop(columns=["tenant", "name"])
    elif (shown["name"] == shown["tenant"]).all():
        shown = shown.drop(columns=["name"])
    st.dataframe(
        shown,
        hide_index=True,
        column_order=[c for c in INVOICE_ORDER if c in shown.columns],
        column_config=COUNTS,
    )
    if staff:
        st.download_button(
            f"Download {month} (CSV)",
            export.invoices_csv(found.records),
            file_name=f"invoices-{month}.csv",
            mime="text/csv",
            icon=":material/download:",
        )
    st.subheader("Invoice lines")
    by_number = {r["number"]: r for r in found.records}
    number = st.selectbox(
        "Invoice",
        list(by_number),
        format_func=lambda n: (
            f"{n} · {by_number[n]['display_name']} · "
            f"{data.money_text(by_number[n]['total'], by_number[n]['currency'])}"
        ),
    )
    record = by_number[str(number)]
    lines_of = lines(store, token, str(number))
    # a static table, as an invoice reads: long descriptions wrap instead of being cut
    st.table(lines_of[data.INVOICE_LINE_COLUMNS], hide_index=True)
    currency = record["currency"]
    st.markdown(
        f"Subtotal **{data.money_text(record['subtotal'], currency)}** · "
        f"tax {record['tax_rate']} % **{data.money_text(record['tax'], currency)}** · "
        f"total **{data.money_text(record['total'], currency)}**"
    )
    attained = "n/a" if record["attainment"] is None else f"{record['attainment']} %"
    st.caption(
        f"{record['billable_devices']:,} billable devices, {record['frames']:,} frames, "
        f"attainment {attained}, credit {record['credit_percent']} %. Factors are proration "
        f"× discount, or a percent. Issued {when_text(record['issued_ns'], record['zone'])} "
        f"({record['zone']}); an issued invoice never changes."
    )
    left, right, _ = st.columns([1, 1, 6])
    left.download_button(
        "JSON",
        export.invoice_json(record),
        file_name=f"{number}.json",
        mime="application/json",
        icon=":material/download:",
    )
    right.download_button(
        "CSV",
        export.invoices_csv([record]),
        file_name=f"{number}.csv",
        mime="text/csv",
        icon=":material/download:",
    )


def revenue_part(store: Store, token: Token, settings: data.RevenueSettings, now: int) -> None:
    window_name = st.segmented_control(
        "Retention over", list(RETENTION_WINDOWS), default="12 months"
    )
    window = RETENTION_WINDOWS[window_name or "12 months"]
    history, kept = revenue(store, token, window, now)
    if history.empty:
        st.info("No month is closed yet: MRR is kept with each close.")
        return
    currencies = sorted(set(history["currency"]))
    currency = currencies[0]
    if len(currencies) > 1:
        currency = st.segmented_control("Currency", currencies, default=currency) or currency
    mine = history[history["currency"] == currency].reset_index(drop=True)
    kept = kept[kept["currency"] == currency].reset_index(drop=True)
    last = mine.iloc[-1]
    value = data.valuations(store, token, settings.arr_multiple)
    value = value[value["currency"] == currency]
    a, b, e = st.columns(3)
    a.metric(f"MRR {last['month']}", data.money_text(int(last["end"]), currency))
    b.metric("ARR", data.money_text(int(last["arr"]), currency), help="12 × MRR")
    c, d, f = st.columns(3)
    c.metric(f"NRR ({window_name})", kept["nrr"].iloc[-1], help=NRR_HELP)
    d.metric(f"GRR ({window_name})", kept["grr"].iloc[-1], help=GRR_HELP)
    f.metric(
        f"Logo churn {last['month']}",
        last["logo churn"],
        help="tenants churned ÷ tenants with MRR at the month's start",
    )
    if settings.arr_multiple is None:
        e.metric("Valuation", "not configured", help="[revenue] arr_multiple in the config")
    else:
        e.metric(
            f"Valuation (× {settings.arr_multiple})",
            str(value["valuation"].iloc[0]),
            help="ARR × the configured multiple, rounded half-up",
        )

    st.subheader("MRR and its movements")
    st.altair_chart(movements_chart(mine, currency), width="stretch")
    if not mine["reconciles"].all():  # the identity is exact; a break is a bug to report
        st.error("These movements do not reconcile: start + movements ≠ end.")
    table = data.mrr_shown(mine)
    st.dataframe(table[["month", "start", *data.MOVEMENT_KINDS, "end"]], hide_index=True)
    st.caption(
        "Month-end MRR as kept with each close (a tier file edited later never rewrites it); "
        "a month before the first close counts 0. Start + new + reactivation + expansion − "
        "contraction − churn = end, exactly."
    )

    st.subheader("Retention and churn")
    if kept["cohort"].eq(0).all():
        st.caption(
            f"No tenant had MRR {window_name} before any closed month: NRR and GRR are n/a. "
            "Pick a shorter window to see month-to-month retention."
        )
    else:
        st.altair_chart(retention_chart(kept), width="stretch")
    st.dataframe(kept[data.RETENTION_COLUMNS].drop(columns="currency"), hide_index=True)

    st.subheader("Valuation")
    if settings.arr_multiple is None:
        st.info(
            f"ARR at {last['month']}'s end is {data.money_text(int(last['arr']), currency)}. "
            "The valuation multiple is not configured: set `arr_multiple` in the config's "
            "`[revenue]` table.",
            icon=":material/info:",
        )
    else:
        st.dataframe(value.drop(columns="currency"), hide_index=True)


GRR_HELP = "as NRR, each tenant capped at its MRR then: growth does not hide losses"
NRR_HELP = (
    "MRR now of the tenants that had MRR at the start of the window ÷ their MRR then; "
    "one decimal, rounded down; n/a when none had"
)


def costs_part(
    store: Store, token: Token, month: str, settings: data.RevenueSettings, now: int
) -> None:
    costs = settings.costs
    if costs is None:
        st.info(
            "No cost model is configured, so there is no cost, margin or what-if to show: add "
            'a `[costs]` table to the config (docs/billing.md, "Costs, margin and the '
            'what-if"): `currency`, `per_device_month`, `per_million_frames`, '
            "`per_tenant_month`, in minor units.",
            icon=":material/info:",
        )
        return
    st.caption(
        f"Costs in {costs.currency} minor units: {costs.per_device_month} per device-month, "
        f"{costs.per_million_frames} per million frames, {costs.per_tenant_month} per "
        "tenant-month."
    )
    st.subheader(f"Cost and margin per tenant · {month}")
    found = margins(store, token, month, costs, now)
    if found.table.empty and not found.other_currency:
        st.caption(f"No invoices for {month}: nothing to cost.")
    elif not found.table.empty:
        revenue_sum = int(found.table["revenue_minor"].sum())
        cost_sum = int(found.table["cost_minor"].sum())
        a, b, c = st.columns(3)
        a.metric("Revenue", data.money_text(revenue_sum, costs.currency), help="Subtotals")
        b.metric("Cost", data.money_text(cost_sum, costs.currency))
        c.metric("Margin", data.money_text(revenue_sum - cost_sum, costs.currency))
        st.dataframe(found.table[data.MARGIN_COLUMNS], hide_index=True, column_config=COUNTS)
        st.caption("Revenue is an invoice's subtotal (lines 1-5): tax is not revenue.")
    if found.other_currency:
        st.warning(
            f"Not costed, invoiced in another currency than the costs' {costs.currency}: "
            + ", ".join(found.other_currency)
        )

    st.subheader("What-if")
    catalog = session.catalog()
    priced = sorted(n for n, t in catalog.tiers.items() if t.currency == costs.currency)
    if not priced:
        st.caption(f"No tier is priced in {costs.currency}, the costs' currency.")
        return
    a, b, c = st.columns(3)
    tier = a.selectbox(
        "Tier", priced, index=priced.index("standard") if "standard" in priced else 0
    )
    heartbeat = b.number_input(
        "Heartbeat (s)",
        min_value=1,
        max_value=86_400,
        value=catalog.tiers[str(tier)].heartbeat_s,
        help="one frame per device per heartbeat",
    )
    term: Term = (
        "annual"
        if c.radio("Term", ["monthly", "annual"], horizontal=True) == "annual"
        else "monthly"
    )
    low, high = st.slider("Fleet size", 10, 20_000, (100, 5_000), step=10)
    # about 50 points, at round fleet sizes
    step = next(s for s in (10, 20, 50, 100, 200, 500, 1000) if s * 60 >= high - low)
    counts = sorted({low, *range(-(-low // step) * step, high, step), high})
    table = data.what_if_table(token, catalog, str(tier), counts, int(heartbeat), costs, 30, term)
    st.altair_chart(what_if_chart(table, costs.currency), width="stretch")
    losing = table[table["margin_minor"] < 0]
    if not losing.empty:
        st.warning(
            f"{tier} loses money up to {int(losing['devices'].max()):,} devices at this heartbeat.",
            icon=":material/trending_down:",
        )
    sample = table.iloc[
        sorted({0, len(table) // 4, len(table) // 2, 3 * len(table) // 4, len(table) - 1})
    ]
    st.dataframe(sample[data.WHAT_IF_COLUMNS], hide_index=True)
    st.caption(
        "A full month of 30 days at N devices, one frame each per heartbeat: revenue is "
        "the invoice's lines 1-4 (no credit, no tax), cost the model's."
    )


store = session.store()
token = session.viewer()
assert token is not None  # app.py shows this page only to a signed-in viewer
now = session.now_ns()
staff = token.scope == "staff"

st.title("Billing")
if done := st.session_state.pop("billing_done", None):
    st.success(done, icon=":material/check_circle:")
months = data.billing_months(store, token, now)
if not months:
    st.info("No invoices yet: each month's invoice appears here once the month is closed.")
    st.stop()
closed = store.closed_months() if staff else {}
wanted = st.session_state.pop("billing_month", None)
month = st.selectbox(
    "Month",
    months,
    index=months.index(wanted) if wanted in months else 0,
    format_func=(lambda m: f"{m} · {'closed' if m in closed else 'open'}") if staff else str,
)
if not staff:
    tenant = next(iter(data.visible_tenants(store, token)), None)
    st.caption(f"Invoices of {tenant.display_name or tenant.name if tenant else ''}")
    invoice_part(store, token, str(month), now)
else:
    settings = session.revenue_settings()
    for problem in settings.problems:
        st.warning(f"The config's {problem}", icon=":material/warning:")
    invoices_tab, revenue_tab, costs_tab = st.tabs(
        ["Invoices", "Revenue", "Cost, margin and what-if"]
    )
    with invoices_tab:
        invoice_part(store, token, str(month), now)
    with revenue_tab:
        revenue_part(store, token, settings, now)
    with costs_tab:
        costs_part(store, token, str(month), settings, now)
