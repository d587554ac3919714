"""Tests for storage.migrations: pending steps run in order, once, or not at all."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from storage import migrations


def test_pending_migration_steps_run_in_order_once(database, monkeypatch) -> None:
    applied: list[int] = []

    def step(number):
        def _run(conn):
            applied.append(number)
            conn.execute(sa.text(f"CREATE TABLE extra_{number} (id INTEGER PRIMARY KEY)"))

        return _run

    extra = ((2, "two", step(2)), (3, "three", step(3)))
    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS + extra)
    assert migrations.apply_migrations(database.engine) == 3
    assert migrations.apply_migrations(database.engine) == 3
    assert applied == [2, 3]


def test_failing_migration_rolls_back_entirely(database, monkeypatch) -> None:
    def good(conn):
        conn.execute(sa.text("CREATE TABLE extra_good (id INTEGER PRIMARY KEY)"))

    def bad(conn):
        raise RuntimeError("boom")

    monkeypatch.setattr(
        migrations, "MIGRATIONS", migrations.MIGRATIONS + ((2, "good", good), (3, "bad", bad))
    )
    with pytest.raises(RuntimeError):
        migrations.apply_migrations(database.engine)
    with database.engine.connect() as conn:
        assert migrations.current_version(conn) == 1
        assert not sa.inspect(conn).has_table("extra_good")
