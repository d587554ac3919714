"""Account: change password, download one's data, log out."""

from __future__ import annotations

import json

import streamlit as st

from pages.ui import end_session, get_database, require_actor, session_token, show_error
from storage import accounts
from storage.export import export_user

_CHANGED_KEY = "password_changed_notice"

actor = require_actor(allow_password_change=True)
db = get_database()
must_change = accounts.must_change_password(db, actor)
st.title("Choose a new password" if must_change else "Account")
st.write(f"Logged in as **{actor.username}** ({actor.role}).")
if st.session_state.pop(_CHANGED_KEY, False):
    st.success(
        "Your password was changed. Other devices logged in to your account were logged out."
    )
if must_change:
    st.warning(
        "Please choose a new password before using the app: the one you logged in with was "
        "set by someone else."
    )

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
            accounts.change_password(db, actor, old, new, keep_token=session_token())
        except (accounts.AuthError, accounts.PasswordPolicyError) as err:
            show_error(err)
        else:
            # Shown on the next run, which also leaves the forced-change view.
            st.session_state[_CHANGED_KEY] = True
            st.rerun()

if actor.role == "patient" and not must_change:
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
left, right = st.columns(2)
if left.button("Log out", key="logout", type="primary"):
    end_session()
    st.rerun()
if right.button("Log out on every device", key="logout_everywhere"):
    end_session(everywhere=True)
    st.rerun()
