"""Account: change password, download one's data, log out."""

from __future__ import annotations

import json

import streamlit as st

from pages.ui import end_session, get_database, require_actor, show_error
from storage import accounts
from storage.export import export_user

actor = require_actor(allow_password_change=True)
db = get_database()
st.title("Account")
st.write(f"Logged in as **{actor.username}** ({actor.role}).")
if accounts.must_change_password(db, actor):
    st.warning("Please choose a new password before using the app.")

with st.form("password_form", clear_on_submit=True):
    st.subheader("Change password")
    old = st.text_input("Current password", type="password", key="old_password")
    new = st.text_input("New password (at least 8 characters)", type="password", key="new_password")
    repeat = st.text_input("Repeat the new password", type="password", key="repeat_password")
    changed = st.form_submit_button("Change password")
if changed:
    if new != repeat:
        st.error("The two new passwords differ.")
    else:
        try:
            accounts.change_password(db, actor, old, new)
        except (accounts.AuthError, accounts.PasswordPolicyError) as err:
            show_error(err)
        else:
            st.success("Your password was changed.")

if actor.role == "patient":
    st.subheader("Your data")
    if st.button("Prepare a download of all my records", key="prepare_export"):
        try:
            st.session_state["export_json"] = json.dumps(
                export_user(db, actor), indent=2, default=str
            )
        except Exception as err:  # shown as one sentence
            show_error(err)
    if "export_json" in st.session_state:
        st.download_button(
            "Download my records (JSON)",
            st.session_state["export_json"],
            file_name="my-records.json",
            mime="application/json",
        )

st.divider()
if st.button("Log out", key="logout", type="primary"):
    end_session()
    st.rerun()
