"""Tests for storage.profile: the birth year, sealed, audited and only for those with access."""

from __future__ import annotations

from datetime import date

import pytest
from sqlmodel import select

from core.age import InvalidBirthYear
from storage import crypto
from storage.export import export_user
from storage.policy import AccessDenied
from storage.profile import (
    InvalidDisplayName,
    get_birth_year,
    get_display_name,
    set_birth_year,
    set_display_name,
)
from storage.schema import AuditEvent, Profile
from storage.sharing import grant_access


def test_birth_year_round_trips_and_can_be_cleared(database, make_user) -> None:
    alice = make_user("alice")
    assert get_birth_year(database, alice, alice.user_id) is None
    set_birth_year(database, alice, 1961)
    assert get_birth_year(database, alice, alice.user_id) == 1961
    set_birth_year(database, alice, 1962)
    assert get_birth_year(database, alice, alice.user_id) == 1962
    set_birth_year(database, alice, None)
    assert get_birth_year(database, alice, alice.user_id) is None


def test_birth_year_is_sealed_not_plaintext(database, make_user) -> None:
    alice = make_user("alice")
    set_birth_year(database, alice, 1961)
    with database.transaction() as session:
        stored = session.get(Profile, alice.user_id)
        assert stored is not None and stored.payload is not None
        assert b"1961" not in stored.payload


def test_every_read_and_change_is_audited(database, make_user) -> None:
    alice = make_user("alice")
    set_birth_year(database, alice, 1961)
    get_birth_year(database, alice, alice.user_id)
    with database.transaction() as session:
        actions = session.exec(
            select(AuditEvent.action).where(AuditEvent.patient_id == alice.user_id)
        ).all()
    assert "set_birth_year" in actions and "read_birth_year" in actions


def test_an_impossible_year_is_refused_and_nothing_stored(database, make_user) -> None:
    alice = make_user("alice")
    for year in (1850, date.today().year + 1):
        with pytest.raises(InvalidBirthYear):
            set_birth_year(database, alice, year)
    assert get_birth_year(database, alice, alice.user_id) is None


def test_another_patient_cannot_read_or_set_it(database, make_user) -> None:
    """Attack: Bob asks for Alice's birth year; a clinician without a grant does too."""
    alice, bob = make_user("alice"), make_user("bob")
    doctor = make_user("doctor", role="clinician")
    set_birth_year(database, alice, 1961)
    with pytest.raises(AccessDenied):
        get_birth_year(database, bob, alice.user_id)
    with pytest.raises(AccessDenied):
        get_birth_year(database, doctor, alice.user_id)
    with pytest.raises(AccessDenied):
        set_birth_year(database, doctor, 1990)
    grant_access(database, alice, "doctor")
    assert get_birth_year(database, doctor, alice.user_id) == 1961


def test_a_sealed_year_moved_to_another_account_does_not_open(database, make_user) -> None:
    """Attack: copy Alice's sealed profile into Bob's row to make the app show it as his."""
    alice, bob = make_user("alice"), make_user("bob")
    set_birth_year(database, alice, 1961)
    set_birth_year(database, bob, 1990)
    with database.transaction() as session:
        stolen = session.get_one(Profile, alice.user_id).payload
        target = session.get_one(Profile, bob.user_id)
        target.payload = stolen
        session.add(target)
    with pytest.raises(crypto.DecryptionError):
        get_birth_year(database, bob, bob.user_id)


def test_display_name_round_trips_and_keeps_the_birth_year(database, make_user) -> None:
    alice = make_user("alice")
    set_birth_year(database, alice, 1961)
    set_display_name(database, alice, "  Ana Ruiz ")
    assert get_display_name(database, alice, alice.user_id) == "Ana Ruiz"
    assert get_birth_year(database, alice, alice.user_id) == 1961
    set_birth_year(database, alice, 1962)
    assert get_display_name(database, alice, alice.user_id) == "Ana Ruiz"
    set_display_name(database, alice, "")
    assert get_display_name(database, alice, alice.user_id) is None
    with database.transaction() as session:
        stored = session.get(Profile, alice.user_id)
        assert stored is not None and stored.payload is not None
        assert b"Ruiz" not in stored.payload


@pytest.mark.parametrize("name", ["x" * 81, "Ana\nRuiz", "Ana\x00"])
def test_a_bad_display_name_is_refused_and_nothing_stored(database, make_user, name) -> None:
    alice = make_user("alice")
    with pytest.raises(InvalidDisplayName):
        set_display_name(database, alice, name)
    assert get_display_name(database, alice, alice.user_id) is None


def test_another_user_cannot_set_or_read_a_display_name(database, make_user) -> None:
    """Attack: Bob reads Alice's display name; a clinician without a grant tries too."""
    alice, bob = make_user("alice"), make_user("bob")
    doctor = make_user("doctor", role="clinician")
    set_display_name(database, alice, "Ana Ruiz")
    for intruder in (bob, doctor):
        with pytest.raises(AccessDenied):
            get_display_name(database, intruder, alice.user_id)
    with pytest.raises(AccessDenied):
        set_display_name(database, doctor, "Mallory")
    assert get_display_name(database, alice, alice.user_id) == "Ana Ruiz"


def test_the_patients_export_carries_the_birth_year(database, make_user) -> None:
    alice = make_user("alice")
    assert export_user(database, alice)["profile"] == {}
    set_birth_year(database, alice, 1961)
    assert export_user(database, alice)["profile"]["birth_year"] == 1961
