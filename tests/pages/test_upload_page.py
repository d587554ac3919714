"""Tests for the home and upload pages, run headless through Streamlit's AppTest."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.findings import DISCLAIMER
from core.imaging import UnsupportedFormat

PROJECT_ROOT = Path(__file__).resolve().parents[2]
REAL_DICOM = "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"

#: Generous: the machine is shared with model training, and decoding plus CLAHE take a moment.
_TIMEOUT_S = 60


def _app(page: str) -> AppTest:
    """An AppTest for ``pages/<page>``, not yet run.

    Pages that require a login read the acting user from ``at.session_state``;
    seed it here before the first ``run()`` once they do.
    """
    return AppTest.from_file(str(PROJECT_ROOT / "pages" / page), default_timeout=_TIMEOUT_S)


def _texts(at: AppTest) -> str:
    parts = [*at.markdown, *at.info, *at.warning, *at.error, *at.caption, *at.subheader]
    return "\n".join(str(element.value) for element in parts)


def _upload(at: AppTest, name: str, data: bytes) -> AppTest:
    at.file_uploader[0].set_value((name, data, "application/octet-stream"))
    return at.run()


def test_home_page_states_scope_and_disclaimer() -> None:
    at = _app("home.py").run()
    assert not at.exception
    text = _texts(at)
    assert DISCLAIMER in text
    assert "not** make a diagnosis" in text
    for role in ("Patients", "Clinicians", "Analysts", "Administrators"):
        assert role in text


def test_upload_page_without_a_file_invites_an_upload() -> None:
    at = _app("upload.py").run()
    assert not at.exception
    assert len(at.file_uploader) == 1
    assert at.file_uploader[0].allowed_type == []  # type is read from content, any name accepted
    assert "Choose a PNG, JPEG or DICOM file" in _texts(at)
    assert "Results" not in [header.value for header in at.subheader]


def test_upload_of_a_dicom_shows_image_metadata_and_empty_results(samples_dir: Path) -> None:
    at = _app("upload.py").run()
    at = _upload(at, "scan", (samples_dir / REAL_DICOM).read_bytes())  # no extension on purpose
    assert not at.exception
    assert not at.error
    assert "upload_scan" in at.session_state
    assert len(at.get("image")) == 2, "before and after images side by side"
    assert "Results" in [header.value for header in at.subheader]
    text = _texts(at)
    assert "Results will appear here once the model is available." in text
    assert DISCLAIMER in text
    assert "%" not in "\n".join(str(info.value) for info in at.info), "no probabilities yet"
    metadata = at.table[0].value
    assert "DICOM" in metadata.to_string() and "CR" in metadata.to_string()


def test_moving_a_slider_re_renders_without_error(samples_dir: Path) -> None:
    at = _app("upload.py").run()
    at = _upload(at, "chest.png", (samples_dir / "00000001_000.png").read_bytes())
    gamma = at.slider(key="enhance_gamma")
    assert gamma.value == 1.0
    gamma.set_value(0.5)
    at = at.run()
    assert not at.exception and not at.error
    assert at.slider(key="enhance_gamma").value == 0.5
    assert len(at.get("image")) == 2


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("notes.png", b"just some text", UnsupportedFormat.default_message),
        ("empty.dcm", b"", "This file is empty."),
    ],
)
def test_bad_upload_shows_one_sentence_and_keeps_nothing(
    name: str, data: bytes, message: str
) -> None:
    at = _app("upload.py").run()
    at = _upload(at, name, data)
    assert not at.exception
    assert [error.value for error in at.error] == [message]
    assert "upload_scan" not in at.session_state
    assert not at.get("image")
    assert "Results" not in [header.value for header in at.subheader]
