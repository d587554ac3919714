"""Fixtures shared by the page tests (streamlit AppTest)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import streamlit as st

from pages import ui
from storage.db import Database
from tests.pages._flows import SHIPPED_CHECKPOINT, World, open_database, open_world


@pytest.fixture
def db(tmp_path, monkeypatch) -> Iterator[Database]:
    """A private DATA_DIR and database shared by the test and the pages under test."""
    database = open_database(tmp_path, monkeypatch)
    yield database
    database.close()
    ui.get_database.clear()


@pytest.fixture
def world(tmp_path, monkeypatch) -> World:
    """Alice with three PA scans (february, march, april), Carol with one, and dr_bob, in a
    private database shared by the test and the pages under test (see ``open_world``)."""
    return open_world(tmp_path, monkeypatch)


@pytest.fixture
def shipped_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """The app uses the model shipped in models/checkpoint.pt; fails when it is missing."""
    if not SHIPPED_CHECKPOINT.is_file():
        pytest.fail("the shipped checkpoint models/checkpoint.pt is missing")
    monkeypatch.setenv("MODEL_CHECKPOINT", str(SHIPPED_CHECKPOINT))
    st.cache_resource.clear()
