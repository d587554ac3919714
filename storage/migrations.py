"""Versioned schema migrations, applied in order inside one transaction on every start.

A fresh database gets the whole current schema from step 1 (``create_all``); later steps
alter existing databases. Add a step by appending ``(version, name, function)``; never edit
or reorder applied steps.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, Engine, MetaData, inspect, select, text
from sqlalchemy.schema import CreateTable
from sqlmodel import SQLModel

from storage import schema

Step = tuple[int, str, Callable[[Connection], None]]


def _initial(conn: Connection) -> None:
    SQLModel.metadata.create_all(conn)


def _audit_breaks(conn: Connection) -> None:
    schema.table_of(schema.AuditBreak).create(conn, checkfirst=True)


def _scan_ids_never_reused(conn: Connection) -> None:
    if conn.dialect.name == "sqlite":
        _sqlite_autoincrement_scans(conn)
    schema.table_of(schema.ShareGrantScan).create(conn, checkfirst=True)
    columns = {c["name"] for c in inspect(conn).get_columns("share_grants")}
    if "scan_ids" not in columns:
        return
    conn.execute(
        text("ALTER TABLE share_grants ADD COLUMN all_scans BOOLEAN NOT NULL DEFAULT TRUE")
    )
    rows = conn.execute(text("SELECT id, patient_id, scan_ids FROM share_grants")).all()
    for grant_id, patient_id, scan_ids in rows:
        if scan_ids is None:
            continue
        conn.execute(
            text("UPDATE share_grants SET all_scans = FALSE WHERE id = :id"), {"id": grant_id}
        )
        wanted = [int(part) for part in scan_ids.split(",") if part]
        # Only scans that still exist and are the patient's: a deleted id must not come back.
        for scan_id in wanted:
            conn.execute(
                text(
                    "INSERT INTO share_grant_scans (grant_id, scan_id) SELECT :g, id FROM scans "
                    "WHERE id = :s AND owner_id = :p"
                ),
                {"g": grant_id, "s": scan_id, "p": patient_id},
            )
    conn.execute(text("ALTER TABLE share_grants DROP COLUMN scan_ids"))


def _rate_events(conn: Connection) -> None:
    schema.table_of(schema.RateEvent).create(conn, checkfirst=True)


def _user_sessions(conn: Connection) -> None:
    schema.table_of(schema.UserSession).create(conn, checkfirst=True)
    # Account-wide lockouts are gone: their rows would only keep an owner locked out.
    conn.execute(text("DELETE FROM login_throttle WHERE key LIKE 'user:%'"))


def _profiles_contents(conn: Connection) -> None:
    for model in (schema.Profile, schema.ScanContent):
        schema.table_of(model).create(conn, checkfirst=True)


def _emergency_approval(conn: Connection) -> None:
    # Requests made before this step had no second person: they stay unapproved, so they
    # no longer open records (fail closed) but remain listed to their patients.
    present = {c["name"] for c in inspect(conn).get_columns("emergency_accesses")}
    table = schema.table_of(schema.EmergencyAccess)
    for name, extra in (
        ("minutes", " NOT NULL DEFAULT 60"),
        ("approver_id", " REFERENCES users (id)"),
        ("approved_at", ""),
    ):
        if name in present:
            continue
        kind = table.c[name].type.compile(dialect=conn.dialect)
        conn.execute(text(f"ALTER TABLE emergency_accesses ADD COLUMN {name} {kind}{extra}"))


def _row_versions(conn: Connection) -> None:
    # The root is made by bootstrap, which holds the master key that signs it.
    for model in (schema.SealVersion, schema.SealHead, schema.SealRoot, schema.ScanOriginal):
        schema.table_of(model).create(conn, checkfirst=True)


def _note_reads(conn: Connection) -> None:
    schema.table_of(schema.NoteRead).create(conn, checkfirst=True)


def _login_refusals(conn: Connection) -> None:
    present = {c["name"] for c in inspect(conn).get_columns("login_throttle")}
    if "refused" not in present:
        conn.execute(
            text("ALTER TABLE login_throttle ADD COLUMN refused INTEGER NOT NULL DEFAULT 0")
        )


def _blob_bytes(conn: Connection) -> None:
    # Left empty on existing rows: the quota check measures each such blob once and records
    # it, so no migration has to read every blob of every user at start-up.
    for model in (schema.Scan, schema.ScanOriginal):
        table = schema.table_of(model)
        # A database made between step 7's first and final form lacks scan_originals.
        table.create(conn, checkfirst=True)
        present = {c["name"] for c in inspect(conn).get_columns(table.name)}
        if "blob_bytes" not in present:
            conn.execute(text(f"ALTER TABLE {table.name} ADD COLUMN blob_bytes BIGINT"))


def _emergency_preferences(conn: Connection) -> None:
    schema.table_of(schema.EmergencyPreference).create(conn, checkfirst=True)


def _login_devices(conn: Connection) -> None:
    schema.table_of(schema.LoginDevice).create(conn, checkfirst=True)


def _version_tree(conn: Connection) -> None:
    # Only the tables: the tree is signed with the master key, which migrations do not hold,
    # so the first sealed access checks the old root and replaces it (storage.versions).
    schema.table_of(schema.SealNode).create(conn, checkfirst=True)
    present = {c["name"] for c in inspect(conn).get_columns("seal_root")}
    if "scheme" not in present:
        conn.execute(text("ALTER TABLE seal_root ADD COLUMN scheme INTEGER NOT NULL DEFAULT 1"))


def _teleconsults(conn: Connection) -> None:
    # Sessions opened before this step were tracked in the audit trail only; they count as
    # ended (a clinician starts a new one).
    schema.table_of(schema.Teleconsult).create(conn, checkfirst=True)


def _audit_viewings(conn: Connection) -> None:
    schema.table_of(schema.AuditViewing).create(conn, checkfirst=True)


def _grant_adds_films(conn: Connection) -> None:
    columns = {c["name"] for c in inspect(conn).get_columns("share_grants")}
    if "allow_adding_films" not in columns:
        conn.execute(
            text(
                "ALTER TABLE share_grants ADD COLUMN allow_adding_films BOOLEAN NOT NULL "
                "DEFAULT FALSE"
            )
        )


def _query_indexes(conn: Connection) -> None:
    for table in SQLModel.metadata.sorted_tables:
        for index in table.indexes:
            if index.name in schema.STEP_19_INDEXES:
                index.create(conn, checkfirst=True)


def _sqlite_autoincrement_scans(conn: Connection) -> None:
    sql = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = 'scans'")).scalar_one()
    if "AUTOINCREMENT" in sql.upper():
        return
    # SQLite cannot add AUTOINCREMENT to a table: copy into a new one. Foreign keys from
    # results and notes name the table, so they are only checked at commit, when it is back.
    conn.execute(text("PRAGMA defer_foreign_keys = ON"))
    table = schema.table_of(schema.Scan)
    metadata = MetaData()
    schema.table_of(schema.User).to_metadata(metadata)  # the target of the owner's foreign key
    staging = table.to_metadata(metadata, name="scans_new")
    conn.execute(CreateTable(staging))
    names = ", ".join(column.name for column in table.columns)
    conn.execute(text(f"INSERT INTO scans_new ({names}) SELECT {names} FROM scans"))
    conn.execute(text("DROP TABLE scans"))
    conn.execute(text("ALTER TABLE scans_new RENAME TO scans"))
    for index in table.indexes:
        index.create(conn)


MIGRATIONS: tuple[Step, ...] = (
    (1, "initial schema", _initial),
    (2, "audit_breaks: breaks of the audit chain, outside the chain", _audit_breaks),
    (
        3,
        "scan ids never reused; partial grants link scans, links go with them",
        _scan_ids_never_reused,
    ),
    (4, "rate_events: uploads and registrations counted for hourly limits", _rate_events),
    (
        5,
        "user_sessions: server-side login sessions; no account-wide login lockouts",
        _user_sessions,
    ),
    (
        6,
        "emergency_accesses: a second person approves; approver and lifetime columns",
        _emergency_approval,
    ),
    (
        7,
        "rollback detection (seal_versions, seal_heads, seal_root); scan_originals",
        _row_versions,
    ),
    (9, "profiles (sealed birth year) and scan_contents (keyed file hashes)", _profiles_contents),
    (10, "note_reads: which clinicians' notes the patient has seen", _note_reads),
    (
        11,
        "login_throttle.refused: refusals during a delay counted, not audited one by one",
        _login_refusals,
    ),
    (12, "blob_bytes on scans and scan_originals: the quota without the blob store", _blob_bytes),
    (
        14,
        "emergency_preferences: a patient's refusal of emergency access, reads acknowledged",
        _emergency_preferences,
    ),
    (15, "login_devices: browsers an account logged in from, counted apart", _login_devices),
    (
        16,
        "seal_nodes and seal_root.scheme: a tree of MACs over the record-version heads",
        _version_tree,
    ),
    (17, "teleconsults: whether a session is open, kept apart from the audit trail", _teleconsults),
    (18, "audit_viewings: a read audited once per viewing, not per page rerun", _audit_viewings),
    (19, "indexes on audit_events: actor, named record, action in sequence", _query_indexes),
    (
        20,
        "share_grants.allow_adding_films: the patient's consent to films added",
        _grant_adds_films,
    ),
)


def current_version(conn: Connection) -> int:
    """Highest applied migration version (0 for an empty database)."""
    if not inspect(conn).has_table(schema.SchemaVersion.__tablename__):
        return 0
    table = schema.table_of(schema.SchemaVersion)
    versions = conn.execute(select(table.c.version)).scalars().all()
    return max(versions, default=0)


def apply_migrations(engine: Engine) -> int:
    """Bring the schema up to date atomically.

    Concurrent starts are serialised: PostgreSQL by an advisory lock, SQLite by its write
    lock (every transaction begins IMMEDIATE).

    Args:
        engine: Engine of the database.

    Returns:
        The schema version after migrating.
    """
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(424242)"))
            # A step may rewrite or index a large table: no DB_STATEMENT_TIMEOUT_MS here.
            conn.execute(text("SET LOCAL statement_timeout = 0"))
        table = schema.table_of(schema.SchemaVersion)
        table.create(conn, checkfirst=True)
        applied = set(conn.execute(select(table.c.version)).scalars())
        # Every step not yet applied runs, in order, even one numbered below an applied step:
        # skipping by "<= current version" would silently lose a step merged out of order.
        for number, name, step in MIGRATIONS:
            if number in applied:
                continue
            step(conn)
            conn.execute(
                table.insert().values(version=number, name=name, applied_at=schema.utcnow())
            )
            applied.add(number)
    return max(applied, default=0)
