"""Pages of the two-person emergency access and of the password-reset notice (AppTest)."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from storage import accounts, sharing
from storage.access_log import emergency_read_notices
from storage.policy import AccessDenied
from storage.scans import list_scans
from tests.pages._flows import (
    ADMIN_PASSWORD,
    PASSWORD,
    PROJECT_ROOT,
    TIMEOUT_S,
    World,
    log_in,
    page,
    texts,
)

REASON = "unresponsive at the clinic door, no consent possible"


def test_clinician_requests_and_a_colleague_approves_on_the_sharing_page(world: World) -> None:
    dr_eve = accounts.operator_create_user(world.db, "dr_eve", PASSWORD, "clinician")
    at = page("sharing.py", world.dr_bob).run()
    at.text_input(key="emergency_patient").input("alice")
    at.text_area(key="emergency_reason").input(REASON)
    at.button[0].click().run()
    assert not at.exception
    assert "Emergency access requested" in texts(at)
    assert "Your own request" in texts(at)
    assert not [b for b in at.button if b.key and b.key.startswith("approve_emergency_")]
    assert sharing.shared_patients(world.db, world.dr_bob) == []

    colleague = page("sharing.py", dr_eve).run()
    assert any(REASON in t.value for t in colleague.text)
    [approve] = [b for b in colleague.button if b.key and b.key.startswith("approve_emergency_")]
    approve.click().run()
    assert not colleague.exception
    assert "Approved: dr_bob can open the records now." in texts(colleague)
    assert len(list_scans(world.db, world.dr_bob, world.alice.user_id)) == 3

    patient = page("sharing.py", world.alice).run()
    assert not patient.exception
    assert "EMERGENCY ACCESS: dr_bob asked on" in texts(patient)
    assert "approved by dr_eve" in texts(patient)


def test_admin_sees_pending_requests_but_cannot_approve_one_for_a_clinician_just_created(
    world: World,
) -> None:
    admin = accounts.authenticate(world.db, "admin", ADMIN_PASSWORD, None)
    accounts.register(world.db, "dr_new", PASSWORD, "clinician", by=admin)
    dr_new = accounts.authenticate(world.db, "dr_new", PASSWORD, None)
    accounts.change_password(world.db, dr_new, PASSWORD, "the admin knows this one")
    sharing.request_emergency_access(world.db, dr_new, "alice", REASON)

    at = page("admin.py", admin).run()
    # Who, for whom and that a reason was given; never the reason (admins read no clinical
    # text).
    assert "dr_new asks to open alice's records" in texts(at)
    assert "A reason was given" in texts(at)
    assert REASON not in texts(at) and not any(REASON in t.value for t in at.text)
    [approve] = [b for b in at.button if b.key and b.key.startswith("approve_emergency_")]
    approve.click().run()
    assert not at.exception
    assert "created or reset the account of the clinician who asks" in texts(at)
    assert sharing.shared_patients(world.db, dr_new) == []


def test_patient_sees_the_reset_sentence_at_next_login(world: World) -> None:
    admin = accounts.authenticate(world.db, "admin", ADMIN_PASSWORD, None)
    temporary = accounts.admin_reset_password(world.db, admin, "alice")
    alice = accounts.authenticate(world.db, "alice", temporary, "203.0.113.9")
    accounts.change_password(world.db, alice, temporary, "alice's new passphrase")

    home = page("home.py", alice).run()
    assert not home.exception
    [sentence] = [w.value for w in home.warning if "reset your password" in w.value]
    assert "from 203.0.113.9; 0 records were read in that session." in sentence
    assert "If this was not you" in sentence
    shared = page("sharing.py", alice).run()
    assert "alice (after a password reset) logged in" in texts(shared)


def test_patient_sees_every_emergency_read_as_a_banner_until_acknowledged(world: World) -> None:
    dr_eve = accounts.operator_create_user(world.db, "dr_eve", PASSWORD, "clinician")
    request_id = sharing.request_emergency_access(world.db, world.dr_bob, "alice", REASON)
    sharing.approve_emergency_access(world.db, dr_eve, request_id)
    list_scans(world.db, world.dr_bob, world.alice.user_id)

    home = _router(world.alice)
    assert not home.exception
    [banner] = [e.value for e in home.error if "EMERGENCY ACCESS" in e.value]
    assert banner.startswith("EMERGENCY ACCESS: dr_bob opened your records without your")
    # Above every page, so a deep link to another page does not skip it, and shown again at
    # every visit until the patient says they read it.
    timeline = _router(world.alice)
    timeline.switch_page("pages/timeline.py").run()
    assert not timeline.exception
    assert [e.value for e in timeline.error if "EMERGENCY ACCESS" in e.value] == [banner]
    home.button(key="acknowledge_emergency_reads").click().run()
    assert not home.exception
    assert not [e for e in home.error if "EMERGENCY ACCESS" in e.value]
    assert emergency_read_notices(world.db, world.alice) == []
    # A clinician has no such banner.
    assert not [e for e in _router(world.dr_bob).error if "EMERGENCY ACCESS" in e.value]


def _router(actor) -> AppTest:
    """The app's entry point (router) run once with ``actor`` logged in, on Home."""
    at = AppTest.from_file(str(PROJECT_ROOT / "streamlit_app.py"), default_timeout=TIMEOUT_S)
    log_in(at, actor)
    return at.run()


def test_patient_refuses_emergency_access_on_the_sharing_page(world: World) -> None:
    at = page("sharing.py", world.alice).run()
    assert at.toggle(key="refuse_emergency").value is False
    at.toggle(key="refuse_emergency").set_value(True).run()
    assert not at.exception
    assert sharing.refuses_emergency_access(world.db, world.alice)
    with pytest.raises(AccessDenied, match="refused emergency access"):
        sharing.request_emergency_access(world.db, world.dr_bob, "alice", REASON)
    assert page("sharing.py", world.alice).run().toggle(key="refuse_emergency").value is True
