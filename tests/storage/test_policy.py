"""Every role x action pair of the access policy, allowed and denied, on both backends.

One world of users, scans and grants is built per backend and module (argon2 hashing makes
per-test worlds slow); actions that change state act on records created for the test.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from sqlmodel import select

from core.settings import load_settings
from storage import accounts, audit, cohort, schema, sharing
from storage.access_log import access_log
from storage.actor import Actor
from storage.bootstrap import open_database
from storage.db import Database
from storage.notes import add_note, list_notes
from storage.policy import AccessDenied
from storage.scans import add_results, delete_scan, list_scans, load_scan, update_scan_date
from tests.storage._factories import sample_result, save_sample_scan
from tests.storage.conftest import ADMIN_PASSWORD, BACKENDS, PASSWORD, empty_backend, env_for

_names = (f"user{i}" for i in itertools.count())


@dataclass
class World:
    db: Database
    actors: dict[str, Actor]
    owner: Actor
    carol: Actor
    shared_scan: int
    private_scan: int


@pytest.fixture(scope="module", params=BACKENDS)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("policy")
    with empty_backend(request.param, tmp) as url:
        db = open_database(load_settings(env_for(url, tmp / "data")))
        admin = accounts.authenticate(db, "admin", ADMIN_PASSWORD, None)

        def make(name: str, role: str = "patient") -> Actor:
            if role == "patient":
                return accounts.register(db, name, PASSWORD)
            return accounts.operator_create_user(db, name, PASSWORD, role)

        owner, other, carol = make("alice"), make("bob"), make("carol")
        clin = {
            name: make(name, "clinician")
            for name in (
                "clin_full",
                "clin_partial",
                "clin_none",
                "clin_expired",
                "clin_revoked",
                "clin_emergency",
            )
        }
        # Receives the grants that the sharing actions create, so they never widen the others.
        make("clin_spare", "clinician")
        shared = save_sample_scan(db, owner, scan_date=date(2024, 1, 1))
        private = save_sample_scan(db, owner, scan_date=date(2024, 2, 1), seed=1)
        sharing.grant_access(db, owner, "clin_full")
        sharing.grant_access(db, owner, "clin_partial", scan_ids=[shared])
        expired = sharing.grant_access(db, owner, "clin_expired")
        revoked = sharing.grant_access(db, owner, "clin_revoked")
        sharing.revoke_access(db, owner, revoked)
        with db.transaction() as session:
            grant = session.get(schema.ShareGrant, expired)
            grant.expires_at = schema.utcnow() - timedelta(minutes=1)
            session.add(grant)
        request = sharing.request_emergency_access(
            db, clin["clin_emergency"], "alice", "unconscious in the ER, no consent possible"
        )
        sharing.approve_emergency_access(db, clin["clin_none"], request)
        actors = {
            "owner": owner,
            "other_patient": other,
            **clin,
            "analyst": make("ana", "analyst"),
            "admin": admin,
        }
        yield World(db, actors, owner, carol, shared, private)
        db.close()


ACTORS = [
    "owner",
    "other_patient",
    "clin_full",
    "clin_partial",
    "clin_none",
    "clin_expired",
    "clin_revoked",
    "clin_emergency",
    "analyst",
    "admin",
]
READERS = {"owner", "clin_full", "clin_partial", "clin_emergency"}
CLINICIANS = {a for a in ACTORS if a.startswith("clin_")}


def _grant_then_revoke(w: World, actor: Actor) -> None:
    grant_id = sharing.grant_access(w.db, w.owner, "clin_spare", scan_ids=[w.shared_scan])
    try:
        sharing.revoke_access(w.db, actor, grant_id)
    finally:
        sharing.revoke_access(w.db, w.owner, grant_id)


def _delete(w: World, actor: Actor) -> None:
    scan_id = save_sample_scan(w.db, w.owner)
    delete_scan(w.db, actor, scan_id)


def _register_clinician(w: World, actor: Actor) -> None:
    accounts.register(w.db, next(_names), PASSWORD, "clinician", by=actor)


def _target_user(w: World) -> str:
    name = next(_names)
    accounts.register(w.db, name, PASSWORD)
    return name


ACTIONS: dict[str, tuple[Callable[[World, Actor], object], set[str]]] = {
    "list_scans": (lambda w, a: list_scans(w.db, a, w.owner.user_id), READERS),
    "load_shared_scan": (lambda w, a: load_scan(w.db, a, w.shared_scan), READERS),
    "load_unshared_scan": (
        lambda w, a: load_scan(w.db, a, w.private_scan),
        READERS - {"clin_partial"},
    ),
    "list_notes": (lambda w, a: list_notes(w.db, a, w.shared_scan), READERS),
    "add_note": (lambda w, a: add_note(w.db, a, w.shared_scan, "looks stable"), READERS),
    "add_note_unshared": (
        lambda w, a: add_note(w.db, a, w.private_scan, "note"),
        READERS - {"clin_partial"},
    ),
    "add_results": (
        lambda w, a: add_results(w.db, a, [(w.shared_scan, sample_result())]),
        {"owner"},
    ),
    "update_scan_date": (
        lambda w, a: update_scan_date(w.db, a, w.shared_scan, date(2024, 1, 1)),
        {"owner"},
    ),
    "delete_scan": (_delete, {"owner"}),
    "save_scan": (lambda w, a: save_sample_scan(w.db, a), {"owner", "other_patient"}),
    "grant_owner_scan": (
        lambda w, a: sharing.grant_access(w.db, a, "clin_spare", scan_ids=[w.shared_scan]),
        {"owner"},
    ),
    "revoke_owner_grant": (_grant_then_revoke, {"owner"}),
    "access_log": (lambda w, a: access_log(w.db, a, w.owner.user_id), {"owner"}),
    "list_emergency_accesses": (
        lambda w, a: sharing.list_emergency_accesses(w.db, a),
        {"owner", "other_patient"},
    ),
    "request_emergency_access": (
        lambda w, a: sharing.request_emergency_access(
            w.db, a, "carol", "patient collapsed in the waiting room", minutes=5
        ),
        CLINICIANS,
    ),
    "pending_emergency_requests": (
        lambda w, a: sharing.pending_emergency_requests(w.db, a),
        CLINICIANS | {"admin"},
    ),
    "shared_patients": (lambda w, a: sharing.shared_patients(w.db, a), CLINICIANS),
    "list_grants": (
        lambda w, a: sharing.list_grants(w.db, a),
        CLINICIANS | {"owner", "other_patient"},
    ),
    "cohort_summary": (lambda w, a: cohort.cohort_summary(w.db, a, ["finding"]), {"analyst"}),
    "list_users": (lambda w, a: accounts.list_users(w.db, a), {"admin"}),
    "register_clinician": (_register_clinician, {"admin"}),
    "admin_reset_password": (
        lambda w, a: accounts.admin_reset_password(w.db, a, _target_user(w)),
        {"admin"},
    ),
    "set_disabled": (lambda w, a: accounts.set_disabled(w.db, a, _target_user(w), True), {"admin"}),
    "list_events": (lambda w, a: audit.list_events(w.db, a), {"admin"}),
    "verify_chain": (lambda w, a: audit.verify_chain(w.db, a), {"admin"}),
}


@pytest.mark.parametrize("action", sorted(ACTIONS))
@pytest.mark.parametrize("actor_key", ACTORS)
def test_policy_table(world: World, actor_key: str, action: str) -> None:
    run, allowed = ACTIONS[action]
    actor = world.actors[actor_key]
    if actor_key in allowed:
        run(world, actor)
    else:
        with pytest.raises(AccessDenied):
            run(world, actor)


def test_partial_grant_lists_only_shared_scans(world: World) -> None:
    listed = list_scans(world.db, world.actors["clin_partial"], world.owner.user_id)
    assert [s.id for s in listed] == [world.shared_scan]
    full = list_scans(world.db, world.actors["clin_full"], world.owner.user_id)
    assert {world.shared_scan, world.private_scan} <= {s.id for s in full}


def test_emergency_reads_are_flagged_in_audit_and_shown_to_patient(world: World) -> None:
    clinician = world.actors["clin_emergency"]
    load_scan(world.db, clinician, world.private_scan)
    with world.db.transaction() as session:
        event = session.exec(
            select(schema.AuditEvent)
            .where(schema.AuditEvent.actor_id == clinician.user_id)
            .where(schema.AuditEvent.action == "read_scan")
            .order_by(schema.AuditEvent.seq.desc())
        ).first()
    assert event.emergency is True
    log = access_log(world.db, world.owner, world.owner.user_id)
    assert any(e.emergency and e.actor_username == "clin_emergency" for e in log)
    reasons = [e.reason for e in sharing.list_emergency_accesses(world.db, world.owner)]
    assert "unconscious in the ER, no consent possible" in reasons


def test_grant_reads_are_not_flagged_emergency(world: World) -> None:
    load_scan(world.db, world.actors["clin_full"], world.shared_scan)
    log = access_log(world.db, world.owner, world.owner.user_id)
    latest = next(e for e in log if e.actor_username == "clin_full" and e.action == "read_scan")
    assert latest.emergency is False
    assert latest.details["via"] == "grant"


@pytest.mark.parametrize("reason", ["", "   ", "too short"])
def test_emergency_access_needs_a_reason(world: World, reason: str) -> None:
    with pytest.raises(ValueError):
        sharing.request_emergency_access(world.db, world.actors["clin_none"], "alice", reason)


def test_expired_emergency_access_ends_access(world: World) -> None:
    clinician = accounts.operator_create_user(world.db, next(_names), PASSWORD, "clinician")
    emergency_id = sharing.request_emergency_access(
        world.db, clinician, "carol", "respiratory distress, urgent"
    )
    sharing.approve_emergency_access(world.db, world.actors["clin_none"], emergency_id)
    scan_id = save_sample_scan(world.db, world.carol)
    load_scan(world.db, clinician, scan_id)
    with world.db.transaction() as session:
        row = session.get(schema.EmergencyAccess, emergency_id)
        row.expires_at = schema.utcnow() - timedelta(seconds=1)
        session.add(row)
    with pytest.raises(AccessDenied):
        load_scan(world.db, clinician, scan_id)


def test_patient_cannot_share_someone_elses_scan(world: World) -> None:
    with pytest.raises(AccessDenied):
        sharing.grant_access(
            world.db, world.actors["other_patient"], "clin_none", scan_ids=[world.shared_scan]
        )


def test_grant_to_non_clinician_is_refused(world: World) -> None:
    with pytest.raises(accounts.AccountError):
        sharing.grant_access(world.db, world.owner, "ana")
