"""Fixtures shared by the page tests (streamlit AppTest)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pages import ui
from storage.db import Database
from tests.pages._flows import open_database


@pytest.fixture
def db(tmp_path, monkeypatch) -> Iterator[Database]:
    """A private DATA_DIR and database shared by the test and the pages under test."""
    database = open_database(tmp_path, monkeypatch)
    yield database
    database.close()
    ui.get_database.clear()
