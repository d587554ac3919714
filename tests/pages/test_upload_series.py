"""Upload & analyze as a series (AppTest): one table for one or many files, dates, views, saves."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from core.views import VIEW_LABELS, View
from services.imports import ScanFile, import_scans
from storage.profile import get_birth_year, set_birth_year
from storage.scans import list_scans
from tests.pages._flows import PROJECT_ROOT, open_world, page, texts

REAL_DICOM = "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"
SHIPPED_CHECKPOINT = PROJECT_ROOT / "models" / "checkpoint.pt"
#: A real adult film: nih_adult/labels.csv gives age 68, AP view.
NIH_ADULT = "nih_adult/test/Pneumonia/00000415_001.jpeg"
#: A real film of a child aged 1-5 (Kermany).
KERMANY_CHILD = "kermany/test/PNEUMONIA/person100_bacteria_475.jpeg"


@pytest.fixture
def world(tmp_path, monkeypatch):
    return open_world(tmp_path, monkeypatch)


@pytest.fixture
def shipped_model(monkeypatch):
    if not SHIPPED_CHECKPOINT.is_file():
        pytest.fail("the shipped checkpoint models/checkpoint.pt is missing")
    monkeypatch.setenv("MODEL_CHECKPOINT", str(SHIPPED_CHECKPOINT))
    st.cache_resource.clear()


def _upload(at: AppTest, *files: tuple[str, bytes]) -> AppTest:
    at.file_uploader[0].set_value(
        [(name, data, "application/octet-stream") for name, data in files]
    )
    return at.run()


def _edit(at: AppTest, rows: dict[int, dict[str, str]]) -> AppTest:
    """Type into the table's cells (AppTest seeds a keyed editor's edit state)."""
    at.session_state["upload_table"] = {"edited_rows": rows, "added_rows": [], "deleted_rows": []}
    return at.run()


def _table(at: AppTest):
    (editor,) = at.data_editor
    return editor.value


def _saved(world) -> list:
    return list_scans(world.db, world.alice, world.alice.user_id)
