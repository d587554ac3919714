"""What users see when something fails: the project's own sentence, or one generic sentence."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from pages.ui import GENERIC_ERROR
from services import records
from tests.pages._flows import (
    TIMEOUT_S,
    World,
    page,
    scan_uploader,
    texts,
    upload_statuses,
)

#: What a library might raise deep inside a use case; none of it is for a patient's eyes.
LIBRARY_TEXT = "could not broadcast input array from shape (3,) into shape (96,80)"


def _show_both() -> None:
    from pages.ui import show_error
    from storage.policy import AccessDenied

    show_error(AccessDenied("You cannot open these scans."))
    show_error(ValueError("could not broadcast input array from shape (3,) into shape (96,80)"))


def test_only_user_errors_show_their_text(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="pages.ui"):
        at = AppTest.from_function(_show_both, default_timeout=TIMEOUT_S).run()
    assert not at.exception
    assert [error.value for error in at.error] == ["You cannot open these scans.", GENERIC_ERROR]
    (logged,) = [r for r in caplog.records if r.name == "pages.ui"]
    assert logged.exc_info and LIBRARY_TEXT in str(logged.exc_info[1]), "logged with traceback"


def test_a_stray_library_error_on_a_page_shows_the_generic_sentence(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args, **kwargs):
        raise ValueError(LIBRARY_TEXT)

    monkeypatch.setattr(records, "load_scan", broken)
    at = page("history.py", world.alice).run()  # opens the newest scan
    assert not at.exception
    assert [error.value for error in at.error] == [GENERIC_ERROR]
    assert LIBRARY_TEXT not in texts(at)


def test_a_batch_file_without_any_date_says_what_to_do(world: World, samples_dir: Path) -> None:
    at = page("upload.py", world.alice).run()
    png = (samples_dir / "00000001_000.png").read_bytes()
    scan_uploader(at).set_value([("a.png", png, "image/png"), ("b.png", png, "image/png")])
    at = at.run()
    assert not at.exception
    (editor,) = at.data_editor
    assert editor.value["status"].tolist() == ["Needs your input", "Same file as above"]
    assert upload_statuses(at) == [
        "Enter the date the X-ray was taken and its view.",
        "The same file as a.png above: it is saved once.",
    ]
    assert at.button(key="upload_save").disabled
