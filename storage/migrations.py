"""Versioned schema migrations, applied in order inside one transaction on every start.

A fresh database gets the whole current schema from step 1 (``create_all``); later steps
alter existing databases. Add a step by appending ``(version, name, function)``; never edit
or reorder applied steps.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, Engine, inspect, select, text
from sqlmodel import SQLModel

from storage import schema

Step = tuple[int, str, Callable[[Connection], None]]


def _initial(conn: Connection) -> None:
    SQLModel.metadata.create_all(conn)


MIGRATIONS: tuple[Step, ...] = ((1, "initial schema", _initial),)


def current_version(conn: Connection) -> int:
    """Highest applied migration version (0 for an empty database)."""
    if not inspect(conn).has_table(schema.SchemaVersion.__tablename__):
        return 0
    table = schema.SchemaVersion.__table__
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
        schema.SchemaVersion.__table__.create(conn, checkfirst=True)
        version = current_version(conn)
        for number, name, step in MIGRATIONS:
            if number <= version:
                continue
            step(conn)
            conn.execute(
                schema.SchemaVersion.__table__.insert().values(
                    version=number, name=name, applied_at=schema.utcnow()
                )
            )
            version = number
    return version
