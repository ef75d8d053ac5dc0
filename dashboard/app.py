"""Uptally dashboard: ``uptally dashboard`` (or ``streamlit run dashboard/app.py``).

Staff see every tenant; a client's read token sees only its own tenant. The pages only
arrange widgets: what they show comes from ``dashboard.data``.
"""

import streamlit as st

from dashboard import session

st.set_page_config(page_title="Uptally", page_icon=":material/monitoring:", layout="wide")

session.store()  # no store: say so on every page, and stop
token = session.viewer()
if token is None:
    pages = [st.Page("views/sign_in.py", title="Sign in", icon=":material/login:")]
else:
    pages = [
        st.Page("views/tenant.py", title="Uptime", icon=":material/timeline:"),
        st.Page("views/sla.py", title="SLA", icon=":material/verified:"),
        st.Page("views/incidents.py", title="Incidents", icon=":material/notifications_active:"),
        st.Page("views/billing.py", title="Billing", icon=":material/receipt_long:"),
    ]
    if token.scope == "staff":
        pages.insert(0, st.Page("views/fleet.py", title="Fleet", icon=":material/hub:"))
    with st.sidebar:
        st.caption(f"Signed in with {token.scope} token upt_{token.prefix}…")
        st.button("Sign out", on_click=session.sign_out, icon=":material/logout:")

st.navigation(pages).run()
