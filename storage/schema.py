"""Database tables (SQLModel).

Medical content (pixels, probabilities, notes, scan dates, file names, DICOM metadata,
emergency reasons) lives only in ``payload`` columns sealed with the owning patient's data
key; the remaining plaintext columns are identifiers, roles, timestamps of system events and
access-control facts the server must read without a key.

All datetimes are timezone-aware UTC (SQLModel's UTC column type round-trips them on both
SQLite and PostgreSQL).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import (
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Table,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """Current time as aware UTC (the convention of every column)."""
    return datetime.now(UTC)


class Role(StrEnum):
    """The four roles of the app."""

    PATIENT = "patient"
    CLINICIAN = "clinician"
    ANALYST = "analyst"
    ADMIN = "admin"


class User(SQLModel, table=True):
    """An account. Username and role are plaintext because login needs them."""

    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(index=True, unique=True, max_length=64)
    role: str = Field(max_length=16)
    password_hash: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    oidc_subject: str | None = Field(default=None, index=True, unique=True, max_length=255)
    is_active: bool = True
    must_change_password: bool = False
    created_at: datetime = Field(default_factory=utcnow)


class UserKey(SQLModel, table=True):
    """A user's data key, stored only wrapped by the master key."""

    __tablename__ = "user_keys"
    __table_args__ = (UniqueConstraint("user_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    version: int = 1
    wrapped_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class Scan(SQLModel, table=True):
    """One radiograph. ``payload`` seals scan date, file name, metadata and enhancement."""

    __tablename__ = "scans"
    # Ids are never reused (SQLite would otherwise hand a deleted scan's id to the next one).
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(foreign_key="users.id", index=True)
    key_version: int = 1
    blob_name: str = Field(max_length=64)
    #: Size of the sealed blob, for the storage quota: known without asking the blob store.
    #: ``None`` on rows stored before step 12, measured once by the quota check and recorded.
    blob_bytes: int | None = None
    payload: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)


class Result(SQLModel, table=True):
    """One classification of a scan; ``payload`` seals probabilities and model details."""

    __tablename__ = "results"

    id: int | None = Field(default=None, primary_key=True)
    scan_id: int = Field(foreign_key="scans.id", index=True)
    owner_id: int = Field(foreign_key="users.id", index=True)
    key_version: int = 1
    payload: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)


class Note(SQLModel, table=True):
    """A note on a scan (optionally with an annotation), sealed with the patient's key."""

    __tablename__ = "notes"

    id: int | None = Field(default=None, primary_key=True)
    scan_id: int = Field(foreign_key="scans.id", index=True)
    owner_id: int = Field(foreign_key="users.id", index=True)
    author_id: int = Field(foreign_key="users.id")
    key_version: int = 1
    payload: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)


class NoteRead(SQLModel, table=True):
    """That the scan's patient has seen a note (notes without a row are shown as new).

    Deleting the note (with its scan) deletes the row.
    """

    __tablename__ = "note_reads"

    note_id: int = Field(
        sa_column=Column(Integer, ForeignKey("notes.id", ondelete="CASCADE"), primary_key=True)
    )
    patient_id: int = Field(
        sa_column=Column(Integer, ForeignKey("users.id"), primary_key=True, index=True)
    )
    read_at: datetime = Field(default_factory=utcnow)


class ShareGrant(SQLModel, table=True):
    """A patient's permission for one clinician to read all or selected scans until expiry."""

    __tablename__ = "share_grants"

    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="users.id", index=True)
    clinician_id: int = Field(foreign_key="users.id", index=True)
    #: Every scan of the patient; otherwise only the scans linked in ``share_grant_scans``.
    all_scans: bool = True
    #: The patient's consent that the clinician may add films (from the hospital's PACS) to
    #: their record while the grant is active (:func:`storage.policy.check_add_films`).
    allow_adding_films: bool = False
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    revoked_at: datetime | None = None


class ShareGrantScan(SQLModel, table=True):
    """One scan of a partial grant; deleting the scan (or the grant) deletes the link."""

    __tablename__ = "share_grant_scans"

    grant_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("share_grants.id", ondelete="CASCADE"), primary_key=True
        )
    )
    scan_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("scans.id", ondelete="CASCADE"), primary_key=True, index=True
        )
    )


class EmergencyAccess(SQLModel, table=True):
    """A clinician's break-glass request; it opens records only once someone else approved it.

    The reason is sealed for the patient. Until approval ``expires_at`` is the deadline for
    approving; the approval sets it to the end of the access (``minutes`` later).
    """

    __tablename__ = "emergency_accesses"

    id: int | None = Field(default=None, primary_key=True)
    clinician_id: int = Field(foreign_key="users.id", index=True)
    patient_id: int = Field(foreign_key="users.id", index=True)
    key_version: int = 1
    payload: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    #: How long the access lasts once approved.
    minutes: int = 60
    approver_id: int | None = Field(default=None, foreign_key="users.id")
    approved_at: datetime | None = None


class AuditEvent(SQLModel, table=True):
    """One hash-chained audit event; ``details`` never holds medical data.

    Indexed for the queries that pick events out of millions (``EXPLAIN`` in
    docs/SCALING.md): by patient (access log), by actor (an emergency approver's account
    actions), by the record an event names (who created or reset an account) and by action
    in sequence order (registration alerts, start-ups).
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_record", "record_type", "record_id"),
        Index("ix_audit_events_action_seq", "action", "seq"),
    )

    id: int | None = Field(default=None, primary_key=True)
    seq: int = Field(index=True, unique=True)
    ts: str = Field(max_length=32)
    actor_id: int | None = Field(default=None, index=True)
    actor_username: str | None = Field(default=None, max_length=64)
    action: str = Field(max_length=48)
    patient_id: int | None = Field(default=None, index=True)
    record_type: str | None = Field(default=None, max_length=32)
    record_id: int | None = None
    emergency: bool = False
    details: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class AuditHead(SQLModel, table=True):
    """The single chain head row: lock target for appends and MAC-protected event count."""

    __tablename__ = "audit_head"

    id: int = Field(default=1, primary_key=True)
    seq: int = 0
    hash: str = Field(max_length=64)
    mac: str = Field(max_length=64)


class AuditViewing(SQLModel, table=True):
    """A read already audited in one viewing (a page visit or a teleconsult).

    Streamlit reruns a page on every widget change; a read is audited at the first run of a
    viewing only (:func:`storage.audit.append_read`), and again once the row is older than
    ``audit.VIEWING_HOURS`` (then it is pruned). ``record_key`` is the record's id, 0 for a
    read of a whole list.
    """

    __tablename__ = "audit_viewings"

    actor_id: int = Field(primary_key=True)
    patient_id: int = Field(primary_key=True)
    action: str = Field(primary_key=True, max_length=48)
    record_key: int = Field(primary_key=True)
    emergency: bool = Field(primary_key=True)
    viewing: str = Field(primary_key=True, max_length=64)
    first_at: datetime = Field(default_factory=utcnow)


class AuditBreak(SQLModel, table=True):
    """A break of the audit chain, as first detected and as repaired.

    Kept outside the chain on purpose: it is written when the chain itself cannot be trusted
    (by a transaction of its own, after the refused action rolled back). The repair also
    copies these facts into the chain's ``audit_repair`` event, under the head MAC.
    """

    __tablename__ = "audit_breaks"

    id: int | None = Field(default=None, primary_key=True)
    detected_at: datetime = Field(default_factory=utcnow)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    head_seq: int
    head_hash: str = Field(max_length=64)
    last_seq: int
    last_hash: str = Field(max_length=64)
    repaired_at: datetime | None = None
    repaired_by: str | None = Field(default=None, max_length=64)
    repair_seq: int | None = None


class UserSession(SQLModel, table=True):
    """One login of one browser; the browser holds the token, the row only its SHA-256.

    Checked on every page run (:mod:`storage.sessions`), so ending the row (logout, password
    change or reset, disabling, idle or absolute timeout) logs that browser out at its next
    action, whichever app process serves it.
    """

    __tablename__ = "user_sessions"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(index=True, unique=True, max_length=64)
    user_id: int = Field(foreign_key="users.id", index=True)
    #: The role at login: a role change ends the session like disabling does.
    role: str = Field(max_length=16)
    #: The client address at login, for the account owner's and the admin's information.
    client: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)
    ended_at: datetime | None = None
    end_reason: str | None = Field(default=None, max_length=32)
    #: SHA-256 of a one-time code the browser trades for its session cookie, and its expiry.
    cookie_code_hash: str | None = Field(default=None, index=True, unique=True, max_length=64)
    cookie_code_expires_at: datetime | None = None


class LoginThrottle(SQLModel, table=True):
    """Failed logins of one (account, client) pair or of one client, and their delay.

    ``locked_until`` is the earliest time the next attempt from that pair or client is
    heard; there is no account-wide lock, so nobody can lock an owner out of their account.
    """

    __tablename__ = "login_throttle"

    key: str = Field(primary_key=True, max_length=200)
    failures: int = 0
    locked_until: datetime | None = None
    #: Attempts refused during the delay: counted here and reported in the next audited
    #: attempt, not audited one by one (a flood of refusals would flood the audit chain).
    refused: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class RateEvent(SQLModel, table=True):
    """One counted action (an upload, a self-registration) for hourly rate limits.

    Kept apart from the records it counts, so that deleting a scan does not give its upload
    back; rows older than the window are pruned when a new one is added.
    """

    __tablename__ = "rate_events"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(index=True, max_length=16)
    #: Who acted: a user id for uploads, the client address for registrations (or none).
    subject: str | None = Field(default=None, index=True, max_length=200)
    created_at: datetime = Field(default_factory=utcnow, index=True)


class LoginDevice(SQLModel, table=True):
    """A browser an account logged in from, known by the hash of its pre-login value.

    An attempt from such a browser is counted on its own, so other clients' guesses (even
    from the same or an unknown address) never delay the owner there.
    """

    __tablename__ = "login_devices"

    #: ``username|sha256(pre-login value)``.
    key: str = Field(primary_key=True, max_length=200)
    last_login_at: datetime = Field(default_factory=utcnow)


class EmergencyPreference(SQLModel, table=True):
    """A patient's standing answer to emergency access, and the emergency reads they saw.

    Plain facts the server must read without the patient's key (the policy checks
    ``refuses`` on every emergency request, approval and read).
    """

    __tablename__ = "emergency_preferences"

    patient_id: int = Field(
        sa_column=Column(Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    )
    #: The patient refuses emergency access in advance.
    refuses: bool = False
    #: The audit sequence number up to which the patient acknowledged emergency reads.
    seen_through_seq: int = 0
    updated_at: datetime = Field(default_factory=utcnow)


class Profile(SQLModel, table=True):
    """A patient's own facts about themselves (birth year), sealed with their data key."""

    __tablename__ = "profiles"

    user_id: int = Field(
        sa_column=Column(Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    )
    key_version: int = 1
    payload: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    updated_at: datetime = Field(default_factory=utcnow)


class ScanContent(SQLModel, table=True):
    """The keyed hash of the file a scan was saved from, to recognise the same file again.

    ``mac`` is an HMAC of the file's bytes under a key derived from the owner's data key, so
    someone reading the database cannot confirm that a known image is in a record (a bare
    SHA-256 would let them). Kept beside ``scans`` rather than as its column so that older
    migration steps, which copy the ``scans`` table by its current columns, stay valid.
    Deleting the scan deletes the row, so a deleted file can be saved again.
    """

    __tablename__ = "scan_contents"
    __table_args__ = (UniqueConstraint("owner_id", "mac"),)

    scan_id: int = Field(
        sa_column=Column(Integer, ForeignKey("scans.id", ondelete="CASCADE"), primary_key=True)
    )
    owner_id: int = Field(foreign_key="users.id", index=True)
    mac: str = Field(max_length=64)


class ScanOriginal(SQLModel, table=True):
    """The uploaded file of a scan, kept (sealed, as a blob) only when the patient asked.

    A table of its own rather than a ``scans`` column, for the reason given at
    :class:`ScanContent`; deleting the scan deletes the row (its blob after the commit).
    """

    __tablename__ = "scan_originals"

    scan_id: int = Field(
        sa_column=Column(Integer, ForeignKey("scans.id", ondelete="CASCADE"), primary_key=True)
    )
    owner_id: int = Field(foreign_key="users.id", index=True)
    key_version: int
    blob_name: str = Field(max_length=64)
    #: Size of the sealed blob, for the storage quota: known without asking the blob store.
    #: ``None`` on rows stored before step 12, measured once by the quota check and recorded.
    blob_bytes: int | None = None


class SealVersion(SQLModel, table=True):
    """The version of a sealed row's current value, bound into its ciphertext.

    Kept beside the sealed tables rather than as their column so that older migration
    steps, which copy ``scans`` by its current columns, stay valid. See
    :mod:`storage.versions`.
    """

    __tablename__ = "seal_versions"

    table_name: str = Field(primary_key=True, max_length=32)
    row_id: int = Field(primary_key=True)
    owner_id: int = Field(index=True)
    row_version: int


class SealHead(SQLModel, table=True):
    """One owner's last row version given and the digest of their rows' versions."""

    __tablename__ = "seal_heads"

    user_id: int = Field(primary_key=True)
    counter: int = 0
    digest: str = Field(default="", max_length=64)


class SealNode(SQLModel, table=True):
    """One inner node of the tree of HMACs over the owners' heads (see storage.versions).

    Level 1 position ``p`` signs the heads of owners ``16p`` to ``16p + 15``; each level
    above signs 16 nodes of the level below.
    """

    __tablename__ = "seal_nodes"

    level: int = Field(primary_key=True)
    position: int = Field(primary_key=True)
    mac: str = Field(max_length=64)


class SealRoot(SQLModel, table=True):
    """The single row whose HMAC (keyed from the master key) covers every owner's head.

    ``scheme`` 2 signs the top level of :class:`SealNode`; 1 is one MAC over every head,
    migration step 7's form, replaced by the tree at the first sealed access after step 16.
    """

    __tablename__ = "seal_root"

    id: int = Field(default=1, primary_key=True)
    mac: str = Field(max_length=64)
    scheme: int


class KeyCheck(SQLModel, table=True):
    """Fingerprint of the master key the database was created with (detects a wrong key early)."""

    __tablename__ = "key_check"

    id: int = Field(default=1, primary_key=True)
    check_value: str = Field(max_length=64)


class SchemaVersion(SQLModel, table=True):
    """Applied migration steps."""

    __tablename__ = "schema_version"

    version: int = Field(primary_key=True)
    name: str = Field(max_length=100)
    applied_at: datetime = Field(default_factory=utcnow)


class Teleconsult(SQLModel, table=True):
    """A clinician's teleconsult session with one patient (``storage.teleconsults``)."""

    __tablename__ = "teleconsults"

    id: int | None = Field(default=None, primary_key=True)
    clinician_id: int = Field(foreign_key="users.id", index=True)
    patient_id: int = Field(foreign_key="users.id", index=True)
    started_at: datetime = Field(default_factory=utcnow)
    #: None while the session is open.
    ended_at: datetime | None = None


#: Indexes added after the initial schema, by migration step 19 (``CREATE INDEX IF NOT
#: EXISTS``); a fresh database gets them from step 1.
STEP_19_INDEXES = (
    "ix_audit_events_actor_id",
    "ix_audit_events_record",
    "ix_audit_events_action_seq",
)


def stored_id(value: int | None) -> int:
    """The primary key of a row that is in the database (flushed or read back).

    SQLModel types ids as optional only because a new object has none before its first
    flush; this narrows them where the row is known to be stored.

    Raises:
        RuntimeError: The row was never flushed (a programming error).
    """
    if value is None:
        raise RuntimeError("The row has no id yet; flush it before using its id.")
    return value


def table_of(model: type[SQLModel]) -> Table:
    """The Core table of a model (for column-only queries and creating single tables)."""
    # SQLModel adds ``__table__`` at class creation, invisibly to type checkers.
    return model.__table__  # type: ignore[attr-defined]
