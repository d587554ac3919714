"""Shared set-up of the patient and clinician AppTest flows: a private database, real accounts."""

from __future__ import annotations

import base64
import json
import re
import secrets
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

# Imported here so that torch loads once at collection, not inside the first page run's timeout.
import models.inference  # noqa: F401
from core.findings import FINDINGS
from core.settings import load_settings
from core.views import View
from core.words import markdown_literal
from models.reports import METRICS_PATH
from pages import ui
from storage import accounts, bootstrap, sessions
from storage.actor import Actor
from storage.db import Database
from storage.results import ResultIn
from storage.scans import save_scan

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "a long enough pass phrase"
ADMIN_PASSWORD = "first-admin-pass-123"

#: Generous: the machine is shared with model training.
TIMEOUT_S = 120

#: A real DICOM in ``samples/``.
REAL_DICOM = "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"
SHIPPED_CHECKPOINT = PROJECT_ROOT / "models" / "checkpoint.pt"

#: (scan date, file, pneumonia probability): a rise of 29 points between the last two.
SCANS = (
    (date(2026, 2, 1), "feb.png", 0.10),
    (date(2026, 3, 2), "march.png", 0.12),
    (date(2026, 4, 1), "april.png", 0.41),
)


def open_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Database:
    """A fresh SQLite database and key in ``tmp_path``, shared by the test and the pages under test.

    The first admin is created with ``ADMIN_PASSWORD``.
    """
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MASTER_KEY", base64.b64encode(secrets.token_bytes(32)).decode())
    monkeypatch.setenv("ADMIN_PASSWORD", ADMIN_PASSWORD)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("IDLE_TIMEOUT_MINUTES", raising=False)
    # get_database() is cached per process: drop the handle of a previous test's database.
    ui.get_database.clear()
    return bootstrap.open_database(load_settings())


@dataclass
class World:
    """The database and the users of one test."""

    db: Database
    alice: Actor
    carol: Actor
    dr_bob: Actor
    scan_ids: list[int]


def open_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    """A fresh database in ``tmp_path`` with patients alice (three scans) and carol, and dr_bob.

    The checkpoint path points at a missing file, so pages take their "model
    unavailable" path and show stored results only.
    """
    monkeypatch.setenv("MODEL_CHECKPOINT", str(tmp_path / "no-checkpoint.pt"))
    # The cached classifier belongs to a previous test's checkpoint setting.
    st.cache_resource.clear()
    db = open_database(tmp_path, monkeypatch)
    alice = accounts.register(db, "alice", PASSWORD)
    carol = accounts.register(db, "carol", PASSWORD)
    dr_bob = accounts.operator_create_user(db, "dr_bob", PASSWORD, "clinician")
    rng = np.random.default_rng(0)
    scan_ids = [
        save_scan(
            db,
            alice,
            pixels=rng.random((96, 80), dtype=np.float32),
            metadata={"source_format": "png", "width": 80, "height": 96},
            enhancement={},
            scan_date=when,
            filename=name,
            view=View.PA,
            result=ResultIn(
                probabilities={**dict.fromkeys(FINDINGS, 0.05), "pneumonia": pneumonia},
                model_name="cxr-test",
                model_version="1",
                checkpoint_sha256="ab" * 32,
                ood_score=0.1,
                thresholds=dict.fromkeys(FINDINGS, 0.5),
            ),
        )
        for when, name, pneumonia in SCANS
    ]
    save_scan(
        db,
        carol,
        pixels=rng.random((64, 64), dtype=np.float32),
        metadata={},
        enhancement={},
        scan_date=date(2026, 1, 5),
        filename="carol.png",
    )
    return World(db, alice, carol, dr_bob, scan_ids)


def log_in(at: AppTest, actor: Actor) -> str:
    """Give the AppTest's browser session a real server-side session of ``actor``.

    Returns:
        The session token (what the session cookie would carry).
    """
    token = sessions.start_session(ui.get_database(), actor, None)
    at.session_state["session_token"] = token
    return token


def session_user(at: AppTest) -> str | None:
    """Who the AppTest's browser session is logged in as, per the database, or ``None``."""
    if "session_token" not in at.session_state:
        return None
    try:
        return sessions.check_session(ui.get_database(), at.session_state["session_token"]).username
    except sessions.SessionEnded:
        return None


def page(name: str, actor: Actor) -> AppTest:
    """An AppTest of ``pages/<name>`` with ``actor`` logged in (not yet run)."""
    at = AppTest.from_file(str(PROJECT_ROOT / "pages" / name), default_timeout=TIMEOUT_S)
    log_in(at, actor)
    return at


def shipped_result(**probabilities: float) -> ResultIn:
    """A result recorded as the shipped model's (its name, version and checkpoint hash), so
    that pages read it as the current model's: 0.01 where not given."""
    model = json.loads(METRICS_PATH.read_text())["model"]
    return ResultIn(
        probabilities={**dict.fromkeys(FINDINGS, 0.01), **probabilities},
        model_name=model["name"],
        model_version=model["version"],
        checkpoint_sha256=model["sha256"],
        thresholds=dict.fromkeys(FINDINGS, 0.5),
        population="unknown",
    )


def save_small_scan(
    db: Database,
    actor: Actor,
    when: date,
    name: str,
    view: View,
    result: ResultIn | None,
    seed: int,
) -> int:
    """Store a 96x80 scan of random pixels (from ``seed``) with ``result`` (None: unscored)."""
    return save_scan(
        db,
        actor,
        pixels=np.random.default_rng(seed).random((96, 80), dtype=np.float32),
        metadata={"source_format": "png", "width": 80, "height": 96},
        enhancement={},
        scan_date=when,
        filename=name,
        view=view,
        result=result,
    )


def scan_uploader(at: AppTest) -> Any:
    """The upload page's uploader of single films and series (not the ZIP file's)."""
    (uploader,) = [u for u in at.file_uploader if u.proto.label == "Chest radiographs"]
    return uploader


def upload(at: AppTest, *files: tuple[str, bytes]) -> AppTest:
    """Hand ``(name, bytes)`` files to the page's uploader of films and rerun it."""
    scan_uploader(at).set_value([(name, data, "application/octet-stream") for name, data in files])
    return at.run()


def edit_upload_table(at: AppTest, rows: dict[int, dict[str, str]]) -> AppTest:
    """Type into the upload table's cells (as the browser reports a keyed editor's edits) and
    rerun: ``{row: {"date": "2026-01-05", "view": "Side (lateral)"}}``."""
    (editor,) = at.data_editor
    at.session_state[editor.key] = {"edited_rows": rows, "added_rows": [], "deleted_rows": []}
    return at.run()


def upload_statuses(at: AppTest) -> list[str]:
    """The whole status sentences under the upload table, in row order, unescaped (an
    unusable file has an error box instead and no sentence here)."""
    (editor,) = at.data_editor
    heads = [f"**{markdown_literal(name)}**: " for name in editor.value["file"]]
    return [
        re.sub(r"\\(.)", r"\1", md.value.removeprefix(head))
        for head in heads
        for md in at.markdown
        if md.value.startswith(head)
    ]


def texts(at: AppTest) -> str:
    """Every message, heading and paragraph the page shows."""
    parts = [
        *at.markdown,
        *at.text,
        *at.info,
        *at.warning,
        *at.error,
        *at.success,
        *at.caption,
        *at.subheader,
        *at.title,
    ]
    return "\n".join(str(element.value) for element in parts)


def use_untrained_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version: str = "2"
) -> None:
    """Point the app at a real checkpoint of an untrained network.

    The scores are meaningless; the code paths are real.
    """
    import torch

    from models.architecture import ChestXrayNet
    from models.checkpoint import save_checkpoint
    from models.ood import FeatureGaussian

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = ChestXrayNet()
    size = model.embedding_size
    path = tmp_path / "untrained.pt"
    save_checkpoint(
        path,
        model=model,
        version=version,
        input_size=64,
        temperatures=dict.fromkeys(FINDINGS, 1.0),
        thresholds=dict.fromkeys(FINDINGS, 0.5),
        # An infinite-like threshold: nothing is out of distribution, so every scan is scored.
        ood=FeatureGaussian(mean=np.zeros(size), precision=np.eye(size), threshold=1e12),
        extra={},
    )
    monkeypatch.setenv("MODEL_CHECKPOINT", str(path))
    st.cache_resource.clear()
