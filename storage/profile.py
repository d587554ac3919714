"""A patient's profile: the birth year and the display name, sealed with the patient's data key.

Both are personal data, so it is stored like a record: sealed, readable only by the
patient and clinicians with access, and every read and change is audited.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlmodel import Session

from core.age import check_birth_year
from core.errors import UserError
from storage import audit, policy, schema
from storage.actor import Actor
from storage.db import Database
from storage.sealing import RowSealer

_TABLE = "profiles"

#: Longest display name, in characters.
MAX_DISPLAY_NAME = 80


class InvalidDisplayName(UserError, ValueError):
    """A display name that is too long or contains control characters."""

    code = "invalid_display_name"
    default_message = f"A display name has at most {MAX_DISPLAY_NAME} printable characters."


def _opened(sealer: RowSealer, profile: schema.Profile) -> dict[str, Any]:
    # Every fact shares one sealed payload: changing one keeps the others.
    if profile.payload is None:
        return {}
    return dict(sealer.open_json(_TABLE, profile.user_id, profile.key_version, profile.payload))


def _write_fact(db: Database, actor: Actor, key: str, value: object, action: str) -> None:
    # The patient's own profile only; None clears the fact and is audited as such.
    with db.transaction() as session:
        policy.check_write(session, actor, actor.user_id)
        sealer = db.keyring.sealer(session, actor.user_id, for_update=True)
        profile = session.get(schema.Profile, actor.user_id)
        if profile is None:
            profile = schema.Profile(user_id=actor.user_id)
        values = _opened(sealer, profile)
        profile.key_version = sealer.version
        profile.payload = sealer.seal_json(
            _TABLE, actor.user_id, profile.key_version, {**values, key: value}
        )
        profile.updated_at = schema.utcnow()
        session.add(profile)
        audit.append(
            session,
            db,
            action,
            actor=actor,
            patient_id=actor.user_id,
            record_type=_TABLE,
            record_id=actor.user_id,
            details={"cleared": value is None},
        )


def _read_fact(
    db: Database, actor: Actor, patient_id: int, key: str, action: str, viewing: str | None
) -> Any:
    # Checked and audited like any record read (once per viewing, storage.audit.append_read),
    # even when the patient gave nothing.
    with db.transaction() as session:
        access = policy.check_read(session, actor, patient_id)
        profile = session.get(schema.Profile, patient_id)
        value = None
        if profile is not None:
            value = _opened(db.keyring.sealer(session, patient_id), profile).get(key)
        audit.append_read(
            session,
            db,
            action,
            actor=actor,
            patient_id=patient_id,
            viewing=viewing,
            record_type=_TABLE,
            record_id=patient_id,
            emergency=access.emergency,
            details=access.audit_details(),
        )
    return value


def set_birth_year(db: Database, actor: Actor, birth_year: int | None) -> None:
    """Store (or clear, with None) the patient's own birth year.

    Args:
        db: Database handle.
        actor: The patient.
        birth_year: The year, or None to forget it.

    Raises:
        core.age.InvalidBirthYear: The year cannot be a living patient's; nothing is stored.
        policy.AccessDenied: The actor is not an active patient.
    """
    if birth_year is not None:
        check_birth_year(birth_year, date.today())
    _write_fact(db, actor, "birth_year", birth_year, "set_birth_year")


def get_birth_year(
    db: Database, actor: Actor, patient_id: int, *, viewing: str | None = None
) -> int | None:
    """A patient's birth year, for the patient or a clinician with access.

    Args:
        db: Database handle.
        actor: Who asks.
        patient_id: Whose birth year.
        viewing: The page visit or teleconsult asking: audited once per viewing; None
            audits every call.

    Returns:
        The year, or None when the patient has not given it.

    Raises:
        policy.AccessDenied: The actor may not read this patient's records.
        crypto.DecryptionError: The stored value fails its integrity check.
    """
    year = _read_fact(db, actor, patient_id, "birth_year", "read_birth_year", viewing)
    return None if year is None else int(year)


def set_display_name(db: Database, actor: Actor, name: str | None) -> None:
    """Store (or clear, with None or blank) the name the patient wants on reports.

    Args:
        db: Database handle.
        actor: The patient.
        name: How the patient wants to be named, e.g. "Ana Ruiz"; surrounding spaces dropped.

    Raises:
        InvalidDisplayName: Too long, or with control characters; nothing is stored.
        policy.AccessDenied: The actor is not an active patient.
    """
    cleaned = (name or "").strip() or None
    if cleaned is not None and (
        len(cleaned) > MAX_DISPLAY_NAME or not all(ch.isprintable() for ch in cleaned)
    ):
        raise InvalidDisplayName()
    _write_fact(db, actor, "display_name", cleaned, "set_display_name")


def get_display_name(
    db: Database, actor: Actor, patient_id: int, *, viewing: str | None = None
) -> str | None:
    """The name a patient chose for reports, for the patient or a clinician with access.

    ``viewing``: the page visit asking, audited once per viewing; None audits every call.

    Returns:
        The name, or None when the patient has not chosen one.

    Raises:
        policy.AccessDenied: The actor may not read this patient's records.
        crypto.DecryptionError: The stored value fails its integrity check.
    """
    name = _read_fact(db, actor, patient_id, "display_name", "read_display_name", viewing)
    return None if name is None else str(name)


def profile_values(session: Session, db: Database, user_id: int) -> dict[str, Any]:
    """Every fact of a user's profile, decrypted (for storage modules only: no policy, no audit).

    Args:
        session: The caller's open session.
        db: Database handle.
        user_id: Whose profile.

    Returns:
        ``{"birth_year": ..., "display_name": ...}`` as stored; empty when none was given.

    Raises:
        crypto.DecryptionError: The stored value fails its integrity check.
    """
    profile = session.get(schema.Profile, user_id)
    if profile is None:
        return {}
    return _opened(db.keyring.sealer(session, user_id), profile)
