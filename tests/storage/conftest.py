"""Storage fixtures: a fresh database per test on SQLite and on PostgreSQL."""

from __future__ import annotations

import atexit
import base64
import functools
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from core.settings import Settings, load_settings
from storage import accounts
from storage.actor import Actor
from storage.bootstrap import open_database
from storage.db import Database, make_engine
from storage.migrations import apply_migrations
from tests.s3_server import s3_prefix

ADMIN_PASSWORD = "first-admin-pass"
PASSWORD = "a long enough pass"


def _postgres_url_or_skip() -> str:
    url = os.environ.get("TEST_POSTGRES_URL")
    if not url:
        pytest.skip(
            "TEST_POSTGRES_URL is unset "
            "(run storage/POSTGRES_SETUP.sh and export the URL it prints)"
        )
    return url


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@contextmanager
def empty_backend(kind: str, tmp_dir: Path) -> Iterator[str]:
    """A database URL with nothing in it: a new SQLite file, or a new PostgreSQL schema.

    Args:
        kind: ``sqlite`` or ``postgres`` (skips when ``TEST_POSTGRES_URL`` is unset).
        tmp_dir: Directory for the SQLite file.

    Yields:
        The SQLAlchemy URL; the PostgreSQL schema is dropped afterwards.
    """
    if kind == "sqlite":
        yield f"sqlite:///{tmp_dir / 'app.db'}"
        return
    base = _postgres_url_or_skip()
    schema = f"t_{secrets.token_hex(6)}"
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _admin_engine(base: str) -> sa.Engine:
    return sa.create_engine(base, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)


_SCHEMA_FINGERPRINT = sa.text(
    "SELECT md5(string_agg(entry, ',' ORDER BY entry)) FROM ("
    " SELECT table_name || '.' || column_name || ':' || data_type AS entry"
    " FROM information_schema.columns WHERE table_schema = 'public'"
    " UNION ALL SELECT indexdef FROM pg_indexes WHERE schemaname = 'public'"
    " UNION ALL SELECT CAST(version AS text) FROM schema_version) AS entries"
)


_TABLES = sa.text(
    "SELECT quote_ident(tablename) FROM pg_tables "
    "WHERE schemaname = 'public' AND tablename <> 'schema_version'"
)
#: Every id sequence back to 1, as in a freshly migrated database.
_RESTART_SEQUENCES = sa.text(
    "SELECT setval(c.oid, 1, false) FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'S' AND n.nspname = 'public'"
)


class _MigratedDatabases:
    """Migrated PostgreSQL databases of this test process, emptied and handed out again.

    Migrating a new database costs about a second of DDL, copying one (``CREATE DATABASE ...
    TEMPLATE``) a third of that; emptying one (``DELETE``) a few hundredths. A database is
    reused only if its schema is still the migrated one (a migration test may have changed
    it): otherwise it is dropped. None holds a row across tests, so each test's first
    :func:`open_database` creates its own admin and version root under its own master key.
    """

    def __init__(self, base: str) -> None:
        self._base = base
        self._admin = _admin_engine(base)
        self._idle: list[str] = []
        self._all: list[str] = []
        self._fingerprint: str | None = None
        atexit.register(self._drop_all)

    def url(self, name: str) -> str:
        return sa.engine.make_url(self._base).set(database=name).render_as_string(False)

    def take(self) -> str:
        if self._idle:
            return self._idle.pop()
        name = f"t_{os.getpid()}_{secrets.token_hex(4)}"
        with self._admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        engine = sa.create_engine(self.url(name), poolclass=sa.pool.NullPool)
        try:
            apply_migrations(engine)
            with engine.connect() as conn:
                fingerprint = conn.execute(_SCHEMA_FINGERPRINT).scalar_one()
        finally:
            engine.dispose()
        self._fingerprint = self._fingerprint or fingerprint
        self._all.append(name)
        return name

    def give_back(self, name: str) -> None:
        with self._admin.connect() as conn:  # connections a test left open
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
        engine = sa.create_engine(self.url(name), poolclass=sa.pool.NullPool)
        try:
            with engine.begin() as conn:
                if conn.execute(_SCHEMA_FINGERPRINT).scalar_one() != self._fingerprint:
                    raise LookupError("schema changed")
                # DELETE, not TRUNCATE: a test leaves a few rows, and truncating 27 tables
                # (new files for each) took about 160 ms against 30 ms. The foreign keys'
                # triggers are off for this transaction, so the order does not matter.
                conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
                for table in conn.execute(_TABLES).scalars():
                    conn.execute(sa.text(f"DELETE FROM {table}"))
                conn.execute(_RESTART_SEQUENCES)
        except (LookupError, sa.exc.DBAPIError):
            self._drop(name)
            return
        finally:
            engine.dispose()
        self._idle.append(name)

    def _drop(self, name: str) -> None:
        with self._admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self._all.remove(name)

    def _drop_all(self) -> None:
        for name in list(self._all):
            self._drop(name)
        self._admin.dispose()


_databases: dict[str, _MigratedDatabases] = {}


@functools.cache
def _sqlite_template() -> Path:
    """A migrated SQLite file without rows, made once per test process."""
    folder = Path(tempfile.mkdtemp(prefix="cxr-sqlite-template-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path = folder / "migrated.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        apply_migrations(engine)
    finally:
        engine.dispose()  # the last connection checkpoints the WAL into the file
    return path


@contextmanager
def migrated_backend(kind: str, tmp_dir: Path) -> Iterator[str]:
    """A database URL holding the current schema and no rows: a copy of a SQLite file migrated
    once per process (19 migrations took 20-50 ms a test), or a PostgreSQL database of
    :class:`_MigratedDatabases`.

    Yields:
        The SQLAlchemy URL; the PostgreSQL database is emptied for the next test afterwards.
    """
    if kind == "sqlite":
        path = tmp_dir / "app.db"
        shutil.copyfile(_sqlite_template(), path)
        yield f"sqlite:///{path}"
        return
    base = _postgres_url_or_skip()
    databases = _databases.setdefault(base, _MigratedDatabases(base))
    name = databases.take()
    try:
        yield databases.url(name)
    finally:
        databases.give_back(name)


def env_for(url: str, data_dir: Path) -> dict[str, str]:
    """Environment for :func:`load_settings` pointing at ``url`` and a private DATA_DIR."""
    return {
        "DATA_DIR": str(data_dir),
        "DATABASE_URL": url,
        "MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "ADMIN_USERNAME": "admin",
        "ADMIN_PASSWORD": ADMIN_PASSWORD,
    }


@pytest.fixture(params=BACKENDS)
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated database without rows on each backend (see :func:`migrated_backend`)."""
    with migrated_backend(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def settings_env(
    request: pytest.FixtureRequest, backend_url: str, tmp_path: Path
) -> Iterator[dict[str, str]]:
    """Environment for :func:`load_settings` pointing at the test database and a tmp DATA_DIR.

    On PostgreSQL the images go to a fresh prefix of the test bucket on SeaweedFS when
    ``TEST_S3_URL`` is set, as in a deployment of several app servers; on SQLite, and for
    tests marked ``local_blobs`` (they handle image files directly), to files in DATA_DIR.
    """
    env = env_for(backend_url, tmp_path / "data")
    uses_bucket = (
        backend_url.startswith("postgresql")
        and os.environ.get("TEST_S3_URL")
        and request.node.get_closest_marker("local_blobs") is None
    )
    if not uses_bucket:
        yield env
        return
    with s3_prefix() as s3:
        yield {**env, **s3}


@pytest.fixture
def settings(settings_env: dict[str, str]) -> Settings:
    """Settings of the test database."""
    return load_settings(settings_env)


@pytest.fixture
def database(settings: Settings) -> Iterator[Database]:
    """An opened, empty database (with its first admin) on each backend."""
    db = open_database(settings)
    yield db
    db.close()


@pytest.fixture
def admin(database: Database) -> Actor:
    """The bootstrapped first admin."""
    return accounts.authenticate(database, "admin", ADMIN_PASSWORD, None)


@pytest.fixture
def make_user(database: Database, admin: Actor) -> Callable[..., Actor]:
    """Create a user of any role (password :data:`PASSWORD`)."""

    def _make(username: str, role: str = "patient") -> Actor:
        if role == "patient":
            return accounts.register(database, username, PASSWORD)
        # An admin-created account must change its password first; the operator's is ready.
        return accounts.operator_create_user(database, username, PASSWORD, role)

    return _make
