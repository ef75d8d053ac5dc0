import streamlit as st

from dashboard import data, session

st.title("Uptally")
reason = st.session_state.pop("signed_out_because", None)
if reason:
    st.warning(reason)
with st.form("sign_in"):
    secret = st.text_input("Access token", type="password", help="A read or staff token")
    submitted = st.form_submit_button("Sign in")
if submitted:
    try:
        data.sign_in(session.store(), secret)
    except data.SignInRefused as exc:
        st.error(f"Cannot sign in: {exc}")
    else:
        st.session_state["secret"] = secret.strip()
        st.rerun()
