"""Administration: accounts and the audit trail (no medical data)."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from pages.emergency import approvals
from pages.ui import get_database, require_actor, show_error
from services import accounts, audit

ROLES = ["patient", "clinician", "analyst", "admin"]
#: The outcome of the last action, shown after the rerun that refreshes the accounts table.
_DONE_KEY = "admin_done"

admin = require_actor("admin")
db = get_database()
st.title("Administration")
users_tab, audit_tab = st.tabs(["Accounts", "Audit trail"])

with users_tab:
    done = st.session_state.pop(_DONE_KEY, None)
    if done:
        st.success(done)
    # Sign-ups go on past the hourly number (a few networks must not stop them all): say so.
    for alert in accounts.registration_alerts(db, admin):
        st.warning(
            f"Self-registrations reached {db.settings.registrations_per_hour} in one hour on "
            f"{alert:%Y-%m-%d %H:%M} UTC. Check the new accounts in the audit trail."
        )
    try:
        users = accounts.list_users(db, admin)
    except Exception as err:  # a broken audit trail refuses every audited read
        show_error(err)
        users = []
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "username": u.username,
                    "role": u.role,
                    "active": u.is_active,
                    "must change password": u.must_change_password,
                    "created": u.created_at,
                }
                for u in users
            ]
        ),
        hide_index=True,
    )
    with st.form("create_user_form", clear_on_submit=True):
        st.subheader("Create an account")
        name = st.text_input("Username", key="new_user_name")
        role = st.selectbox("Role", ROLES, key="new_user_role")
        password = st.text_input("Initial password", type="password", key="new_user_password")
        create = st.form_submit_button("Create account")
    if create:
        try:
            accounts.register(db, name, password, role=role, by=admin)
        except (accounts.AccountError, accounts.PasswordPolicyError, PermissionError) as err:
            show_error(err)
        else:
            st.session_state[_DONE_KEY] = (
                f"Created {role} account {name.strip().lower()}; they must choose a new "
                "password at first login."
            )
            st.rerun()

    st.subheader("Manage an account")
    target = st.selectbox(
        "Account",
        [u.username for u in users if u.id != admin.user_id],
        key="manage_user",
        index=None,
        placeholder="Choose an account",
    )
    if target:
        chosen = next(u for u in users if u.username == target)
        left, middle, right = st.columns(3)
        if left.button("Reset password", key="reset_password"):
            try:
                temporary = accounts.admin_reset_password(db, admin, target)
            except (accounts.AccountError, PermissionError) as err:
                show_error(err)
            else:
                # Shown after the rerun that refreshes the table (its "must change" column).
                st.session_state[_DONE_KEY] = (
                    f"Temporary password for {target}: `{temporary}` (hand it over privately). "
                    "Their sessions have ended; the password opens nothing but the password "
                    "change, and the user is shown the reset and the first login after it."
                )
                st.rerun()
        label = "Enable account" if not chosen.is_active else "Disable account"
        if right.button(label, key="toggle_user"):
            try:
                accounts.set_disabled(db, admin, target, chosen.is_active)
            except (accounts.AccountError, PermissionError) as err:
                show_error(err)
            else:
                st.rerun()
        if middle.button("Lift login delays", key="clear_throttle"):
            try:
                lifted = accounts.admin_clear_throttle(db, admin, target)
            except (accounts.AccountError, PermissionError) as err:
                show_error(err)
            else:
                st.session_state[_DONE_KEY] = (
                    f"{target} can try to log in again at once from every device "
                    f"({lifted} delayed device{'s' if lifted != 1 else ''} cleared)."
                )
                st.rerun()

    approvals(db, admin)

with audit_tab:
    if st.button("Verify the audit trail", key="verify_audit"):
        report = audit.verify_chain(db, admin)
        if report.ok:
            st.success(f"The audit trail is intact ({report.checked} events checked).")
        else:
            where = f"event {report.first_bad_id}" if report.first_bad_id else "the chain head"
            st.error(f"The audit trail was tampered with at {where}: {report.reason}.")
        if report.breaks:
            st.subheader("Recorded breaks")
            st.caption(
                "Every break stays on record. `python -m storage.cli repair-audit --yes` starts a "
                "new segment and records who repaired it; it deletes nothing."
            )
            st.dataframe(
                pd.DataFrame(
                    [
                        {
                            "detected (UTC)": b.detected_at,
                            "what was found": b.reason,
                            "head said event": b.head_seq,
                            "last event found": b.last_seq,
                            "repaired (UTC)": b.repaired_at or "not yet",
                            "repaired by": b.repaired_by,
                        }
                        for b in report.breaks
                    ]
                ),
                hide_index=True,
            )
    try:
        events = audit.list_events(db, admin)
    except Exception as err:  # a broken trail refuses the audited read; verify shows why
        show_error(err)
    else:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "#": e.seq,
                        "time (UTC)": e.ts,
                        "who": e.actor_username,
                        "action": e.action,
                        "patient id": e.patient_id,
                        "record": f"{e.record_type or ''} {e.record_id or ''}".strip(),
                        "EMERGENCY": "YES" if e.emergency else "",
                        # As text: values of mixed types in one column break Arrow.
                        "details": json.dumps(e.details, sort_keys=True),
                    }
                    for e in events
                ]
            ),
            hide_index=True,
        )
