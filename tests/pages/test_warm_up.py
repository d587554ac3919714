"""pages.ui.warm_up: the server-start warm-up fills the model cache the pages use."""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st
import torch

from models import inference
from pages import ui
from tests.pages._flows import PROJECT_ROOT, edit_upload_table, open_world, page, scan_uploader

SHIPPED_CHECKPOINT = PROJECT_ROOT / "models" / "checkpoint.pt"


@pytest.fixture(autouse=True)
def _unfreeze() -> Iterator[None]:
    """warm_up freezes the collector's view of the process; give later tests theirs back."""
    yield
    gc.unfreeze()


def test_warm_up_fills_the_cached_model_that_the_first_analysis_then_uses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, samples_dir: Path
) -> None:
    world = open_world(tmp_path, monkeypatch)
    monkeypatch.setenv("MODEL_CHECKPOINT", str(SHIPPED_CHECKPOINT))
    st.cache_resource.clear()
    monkeypatch.setenv("INFERENCE_THREADS", "1")
    before, threads = inference.load_count(), torch.get_num_threads()
    try:
        ui.warm_up()
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    assert inference.load_count() - before == 1

    at = page("upload.py", world.alice).run()
    scan_uploader(at).set_value(
        [("a.png", (samples_dir / "00000001_000.png").read_bytes(), "image/png")]
    )
    at = at.run()
    # A PNG states no date nor view: the patient enters them in the upload table before it
    # is scored.
    at = edit_upload_table(at, {0: {"date": "2026-01-05", "view": "Frontal (PA, standing)"}})
    assert not at.exception
    assert any(h.value == "Where the model looked" for h in at.subheader)
    # The page's analysis found the model already loaded.
    assert inference.load_count() - before == 1


def test_warm_up_without_a_model_logs_and_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("MODEL_CHECKPOINT", str(tmp_path / "missing.pt"))
    st.cache_resource.clear()
    with caplog.at_level(logging.INFO, logger=ui.__name__):
        ui.warm_up()
    assert any("The analysis model is not available" in r.getMessage() for r in caplog.records)
    assert any("warm-up done" in r.getMessage() for r in caplog.records)


def test_warm_up_opens_no_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Storage (and the first admin's one-time password) is left to the server's start-up."""
    data_dir = tmp_path / "data"
    monkeypatch.setenv("DATA_DIR", str(data_dir))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("MODEL_CHECKPOINT", str(tmp_path / "missing.pt"))
    st.cache_resource.clear()
    ui.warm_up()
    assert not data_dir.exists() or not any(data_dir.iterdir())


def test_warm_up_hides_what_it_loaded_from_the_garbage_collector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Streamlit's collection after each page then skips the libraries and the model."""
    monkeypatch.setenv("MODEL_CHECKPOINT", str(tmp_path / "missing.pt"))
    st.cache_resource.clear()
    ui.warm_up()
    assert gc.get_freeze_count() > 100_000
    tracked = len(gc.get_objects())
    assert tracked < gc.get_freeze_count() // 10
