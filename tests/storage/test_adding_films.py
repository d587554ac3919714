"""A clinician adds films to a patient's record only with the patient's consent on an active
grant (``ShareGrant.allow_adding_films``, ``policy.check_add_films``): the film is the
patient's (their key, quota and upload rate) and the audit trail names the clinician.
Run on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import col, func, select

from core.settings import load_settings
from storage import accounts, audit, schema, sharing
from storage.actor import Actor
from storage.bootstrap import open_database
from storage.db import Database
from storage.migrations import MIGRATIONS
from storage.policy import AccessDenied
from storage.scans import UploadRateExceeded, list_scans, load_scan, save_scan
from tests.storage._factories import sample_pixels, sample_result, save_sample_scan
from tests.storage.conftest import PASSWORD


def _add(db: Database, actor: Actor, patient: Actor, seed: int = 7) -> int:
    return save_scan(
        db,
        actor,
        pixels=sample_pixels(seed),
        metadata={"source_format": "dicom", "modality": "DX", "width": 32, "height": 32},
        enhancement={},
        scan_date=date(2024, 5, 1),
        filename="pacs.dcm",
        result=sample_result(),
        content=f"film {seed}".encode(),
        patient_id=patient.user_id,
    )


def _scan_rows(db: Database) -> int:
    with db.transaction() as session:
        return session.exec(select(func.count()).select_from(schema.Scan)).one()


def _expire(db: Database, grant_id: int) -> None:
    with db.transaction() as session:
        grant = session.get(schema.ShareGrant, grant_id)
        assert grant is not None
        grant.expires_at = schema.utcnow() - timedelta(minutes=1)
        session.add(grant)


def test_a_clinician_the_patient_allowed_adds_a_film_to_the_patients_record(
    database, make_user, admin
) -> None:
    alice, doc = make_user("alice"), make_user("doc", "clinician")
    grant_id = sharing.grant_access(database, alice, "doc", allow_adding_films=True)

    scan_id = _add(database, doc, alice)

    # The patient's film, sealed with the patient's key: the patient opens it.
    assert load_scan(database, alice, scan_id).owner_id == alice.user_id
    assert [s.id for s in list_scans(database, alice, alice.user_id)] == [scan_id]
    (event,) = [
        e
        for e in audit.list_events(database, admin)
        if e.action == "create_scan" and e.record_id == scan_id
    ]
    assert event.actor_username == "doc"
    assert event.details["grant_id"] == grant_id
    assert event.details["via"] == "grant"
    (listed,) = sharing.list_grants(database, alice)
    assert listed.allow_adding_films


def test_a_grant_without_the_patients_consent_does_not_allow_adding(database, make_user) -> None:
    alice, doc = make_user("alice"), make_user("doc", "clinician")
    sharing.grant_access(database, alice, "doc")  # reading only

    with pytest.raises(AccessDenied, match="not allowed you to add films"):
        _add(database, doc, alice)

    assert _scan_rows(database) == 0


def test_only_the_patient_gives_the_consent(database, make_user) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    doc = make_user("doc", "clinician")
    # Consent from another patient opens nothing here; nor can the clinician grant it.
    sharing.grant_access(database, bob, "doc", allow_adding_films=True)
    with pytest.raises(AccessDenied):
        sharing.grant_access(database, doc, "doc", allow_adding_films=True)
    with pytest.raises(AccessDenied):
        _add(database, doc, alice)
    # Another patient cannot add to alice's record either.
    with pytest.raises(AccessDenied):
        _add(database, bob, alice)
    assert _scan_rows(database) == 0


def test_an_expired_or_revoked_grant_does_not_allow_adding(database, make_user) -> None:
    alice = make_user("alice")
    late, gone = make_user("late", "clinician"), make_user("gone", "clinician")
    _expire(database, sharing.grant_access(database, alice, "late", allow_adding_films=True))
    revoked = sharing.grant_access(database, alice, "gone", allow_adding_films=True)
    sharing.revoke_access(database, alice, revoked)

    for clinician in (late, gone):
        with pytest.raises(AccessDenied):
            _add(database, clinician, alice)
    assert _scan_rows(database) == 0


def test_emergency_access_does_not_allow_adding(database, make_user) -> None:
    alice = make_user("alice")
    doc, other = make_user("doc", "clinician"), make_user("other", "clinician")
    request = sharing.request_emergency_access(
        database, doc, "alice", "unconscious in the ER, no consent possible"
    )
    sharing.approve_emergency_access(database, other, request)
    list_scans(database, doc, alice.user_id)  # the emergency access reads

    with pytest.raises(AccessDenied):
        _add(database, doc, alice)
    assert _scan_rows(database) == 0


def test_a_disabled_clinician_cannot_add(database, make_user, admin) -> None:
    alice, doc = make_user("alice"), make_user("doc", "clinician")
    sharing.grant_access(database, alice, "doc", allow_adding_films=True)
    accounts.set_disabled(database, admin, "doc", True)

    with pytest.raises(AccessDenied):
        _add(database, doc, alice)


def test_a_film_added_under_a_grant_of_some_scans_joins_it(database, make_user) -> None:
    alice, doc = make_user("alice"), make_user("doc", "clinician")
    shared = save_sample_scan(database, alice)
    save_sample_scan(database, alice, seed=1, scan_date=date(2024, 4, 1))  # not shared
    sharing.grant_access(database, alice, "doc", scan_ids=[shared], allow_adding_films=True)

    added = _add(database, doc, alice)

    readable = {s.id for s in list_scans(database, doc, alice.user_id)}
    assert readable == {shared, added}
    assert load_scan(database, doc, added).owner_id == alice.user_id


@pytest.fixture
def limited(settings_env) -> Iterator[Database]:
    """A database allowing 3 uploads an hour per patient."""
    db = open_database(load_settings({**settings_env, "UPLOADS_PER_HOUR": "3"}))
    yield db
    db.close()


def test_films_added_count_to_the_patients_upload_rate(limited) -> None:
    alice = accounts.register(limited, "alice", PASSWORD)
    doc = accounts.operator_create_user(limited, "doc", PASSWORD, "clinician")
    sharing.grant_access(limited, alice, "doc", allow_adding_films=True)
    save_sample_scan(limited, alice)
    _add(limited, doc, alice, seed=1)
    _add(limited, doc, alice, seed=2)

    with pytest.raises(UploadRateExceeded, match="This patient's record received 3 scans"):
        _add(limited, doc, alice, seed=3)
    with pytest.raises(UploadRateExceeded, match="You have uploaded 3 scans"):
        save_sample_scan(limited, alice, seed=4)
    # The clinician's own hour is untouched: the uploads were the patient's.
    with limited.transaction() as session:
        owners = session.exec(select(schema.Scan.owner_id)).all()
    assert set(owners) == {alice.user_id}


def test_step_20_adds_the_consent_column_defaulting_to_no(database, make_user) -> None:
    alice, _doc = make_user("alice"), make_user("doc", "clinician")
    old = sharing.grant_access(database, alice, "doc", allow_adding_films=True)
    (step,) = [fn for version, _name, fn in MIGRATIONS if version == 20]
    with database.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE share_grants DROP COLUMN allow_adding_films")
    for _ in range(2):  # a second run changes nothing
        with database.engine.begin() as conn:
            step(conn)
    with database.engine.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("share_grants")}
    assert "allow_adding_films" in columns
    with database.transaction() as session:
        grant = session.get(schema.ShareGrant, old)
        assert grant is not None
        # A grant made before the consent existed never allows adding.
        assert grant.allow_adding_films is False
        flagged = session.exec(
            select(schema.ShareGrant).where(col(schema.ShareGrant.allow_adding_films).is_(True))
        ).all()
    assert flagged == []
