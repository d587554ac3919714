"""Log in, or create a patient account."""

from __future__ import annotations

import streamlit as st

from core.errors import UserError
from pages.readings import birth_year_input
from pages.ui import (
    browser_binding,
    client_id,
    cookie_requests,
    current_actor,
    get_database,
    oidc_available,
    show_error,
    start_session,
)
from services import accounts


def _enter_app() -> None:
    """Leave the login page for the app, by way of the route that sets the session cookie.

    A full page load rather than a rerun: the router then draws the pages of the new user
    from the start, at the page asked for before logging in (or the first page).
    """
    if not cookie_requests():
        st.rerun()
    st.success("You are logged in; opening the app...")
    st.stop()


st.title("Log in")
actor = current_actor()
if actor is not None:
    st.success(f"You are logged in as {actor.username}.")
    st.stop()

db = get_database()
login_tab, register_tab = st.tabs(["Log in", "Create a patient account"])

with login_tab:
    with st.form("login_form"):
        username = st.text_input("Username", key="login_username")
        password = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Log in")
    if submitted:
        try:
            start_session(
                accounts.authenticate(db, username, password, client_id(), device=browser_binding())
            )
        except accounts.AuthError as err:
            show_error(err)
        else:
            _enter_app()
    if oidc_available():
        st.button("Log in with single sign-on", on_click=st.login, key="sso_login")

with register_tab:
    st.caption(
        "Accounts created here are patient accounts. Clinicians, analysts and administrators "
        "get their accounts from an administrator."
    )
    with st.form("register_form"):
        new_name = st.text_input("Choose a username", key="register_username")
        new_password = st.text_input(
            "Choose a password (at least 8 characters)", type="password", key="register_password"
        )
        repeat = st.text_input("Repeat the password", type="password", key="register_repeat")
        birth_year = birth_year_input(
            "register_birth_year",
            help="Tells the app whether to read your X-rays as a child's or an adult's: some "
            "findings were learned from children only, others from adults only. Stored "
            "encrypted; you can change it on the Account page.",
        )
        created = st.form_submit_button("Create account")
    if created:
        if new_password != repeat:
            st.error("The two passwords differ.")
        else:
            try:
                new_actor = accounts.register_patient(
                    db, new_name, new_password, client_id=client_id(), birth_year=birth_year
                )
                start_session(new_actor)
            except UserError as err:  # taken name, weak password, too many sign-ups
                show_error(err)
            else:
                _enter_app()
