"""Account: change password, download one's data, log out."""

from __future__ import annotations

import json

import streamlit as st

from pages.readings import render_birth_year_form
from pages.ui import (
    cookie_requests,
    current_classifier,
    end_session,
    get_database,
    require_actor,
    session_token,
    show_error,
    viewing,
)
from services import accounts, profile
from services.export import export_records
from services.handles import Actor, Database
from services.keys import rotate_own_key

_CHANGED_KEY = "password_changed_notice"


def _render_display_name_form(db: Database, actor: Actor) -> None:
    """The name printed on the patient's reports (sealed like their records)."""
    try:
        current = profile.get_display_name(db, actor, actor.user_id, viewing=viewing())
    except Exception as err:  # shown as one sentence
        show_error(err)
        return
    with st.form("display_name_form"):
        st.subheader("Your name on reports")
        name = st.text_input(
            f"Display name (up to {profile.MAX_DISPLAY_NAME} characters; empty to use your "
            "username)",
            value=current or "",
            key="display_name",
        )
        saved = st.form_submit_button("Save name")
    if saved:
        try:
            profile.set_display_name(db, actor, name)
        except Exception as err:  # shown as one sentence
            show_error(err)
        else:
            st.success("Your reports will show this name." if name.strip() else "Name cleared.")


def _render_key_rotation(db: Database, actor: Actor) -> None:
    """Renew the patient's own data key: every record and image re-sealed under a new one."""
    st.subheader("Your encryption key")
    st.caption(
        "Your records and images are encrypted with a key of your own. Renewing it "
        "re-encrypts all of them with a new key; they stay readable while it runs."
    )
    if not st.button("Renew my encryption key", key="rotate_key"):
        return
    bar = st.progress(0.0, text="Re-encrypting your records...")

    def report(done: int, total: int) -> None:
        bar.progress(done / total if total else 1.0, text=f"Re-encrypted {done} of {total}")

    try:
        rotation = rotate_own_key(db, actor, on_progress=report)
    except Exception as err:  # shown as one sentence
        show_error(err)
    else:
        st.success(
            f"Done: your {rotation.records} records ({rotation.images} images) are now "
            f"encrypted with your new key (version {rotation.key_version})."
        )


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
    render_birth_year_form(db, actor)
    _render_display_name_form(db, actor)
    st.subheader("Your data")
    if st.button("Prepare a download of all my records", key="prepare_export"):
        try:
            # Each scan with its reading, as every page shows it (services.export).
            classifier = current_classifier("Each scan's latest stored result is exported.")
            st.session_state["export_json"] = json.dumps(
                export_records(db, actor, classifier), indent=2, default=str
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
    _render_key_rotation(db, actor)

st.divider()
left, right = st.columns(2)
logout = left.button("Log out", key="logout", type="primary")
everywhere = right.button("Log out on every device", key="logout_everywhere")
if logout or everywhere:
    end_session(everywhere=everywhere)
    # A full page load by way of the route that drops the session cookie.
    if not cookie_requests():
        st.rerun()
    st.success("You logged out" + (" on every device." if everywhere else "."))
    st.stop()
