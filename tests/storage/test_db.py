"""Tests for storage.db: connection settings of the engine."""

from __future__ import annotations

from storage.db import make_engine


def test_sqlite_pragmas_hold_on_every_connection(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        connections = [engine.raw_connection() for _ in range(3)]
        for raw in connections:
            cursor = raw.cursor()
            assert cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert cursor.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
            assert cursor.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        for raw in connections:
            raw.close()
    finally:
        engine.dispose()
