"""Views (projections): what a DICOM header states, decoded from variants of a real CR file."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest

from core.imaging import decode_scan
from core.views import View, is_frontal, parse_view, view_from_header

#: The real CR chest film of the shared samples; its View Position (0018,5101) is PA.
DICOM = "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"


@pytest.mark.parametrize(
    ("position", "expected"),
    [
        ("PA", View.PA),
        ("ap", View.AP),
        (" LL ", View.LATERAL),
        ("RL", View.LATERAL),
        ("LATERAL", View.LATERAL),
        ("LAT", View.LATERAL),
        ("RLD", View.UNKNOWN),
        ("LLO", View.UNKNOWN),
        ("XYZ", View.UNKNOWN),
    ],
)
def test_view_position_terms(position: str, expected: View) -> None:
    assert view_from_header(position) is expected


def test_ap_is_supine_from_patient_position_or_a_description() -> None:
    assert view_from_header("AP", patient_position="HFS") is View.AP_SUPINE
    assert view_from_header("AP", descriptions=["CHEST AP SUPINE PORTABLE"]) is View.AP_SUPINE
    assert view_from_header("AP", patient_position="HFP") is View.AP
    # A PA film is never supine, whatever the description says.
    assert view_from_header("PA", descriptions=["supine"]) is View.PA


def test_patient_orientation_when_view_position_is_empty() -> None:
    # Rows running front to back (A or P) can only be a side view.
    assert view_from_header("", ["P", "F"]) is View.LATERAL
    assert view_from_header(None, ["A", "F"]) is View.LATERAL
    # Rows running left-right: a frontal film, but PA and AP look alike here.
    assert view_from_header(None, ["L", "F"]) is None
    assert view_from_header(None, ["R", "F"], patient_position="FFS") is View.AP_SUPINE
    assert view_from_header(None, []) is None


def test_parse_view_and_frontal() -> None:
    assert parse_view("ap SUPINE") is View.AP_SUPINE
    assert is_frontal(View.AP_SUPINE) and not is_frontal(View.LATERAL)
    assert not is_frontal(View.UNKNOWN)
    with pytest.raises(ValueError, match="Unknown view"):
        parse_view("oblique")


def _variant(samples_dir: Path, **tags: object) -> bytes:
    dataset = pydicom.dcmread(samples_dir / DICOM)
    for keyword, value in tags.items():
        if value is not None:
            setattr(dataset, keyword, value)
        elif keyword in dataset:
            delattr(dataset, keyword)
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    return out.getvalue()


def test_the_real_cr_file_states_pa(samples_dir: Path) -> None:
    metadata = decode_scan((samples_dir / DICOM).read_bytes()).metadata
    assert metadata.view_position == "PA"
    assert metadata.view is View.PA
    assert metadata.to_dict()["view"] == "PA"


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ({"ViewPosition": "LL"}, View.LATERAL),
        ({"ViewPosition": "AP"}, View.AP),
        ({"ViewPosition": "AP", "PatientPosition": "HFS"}, View.AP_SUPINE),
        ({"ViewPosition": "AP", "SeriesDescription": "Chest supine"}, View.AP_SUPINE),
        ({"ViewPosition": "", "PatientOrientation": ["P", "F"]}, View.LATERAL),
        ({"ViewPosition": None, "PatientOrientation": ["A", "H"]}, View.LATERAL),
        ({"ViewPosition": "", "PatientOrientation": ["L", "F"]}, None),
        ({"ViewPosition": None, "PatientOrientation": None}, None),
    ],
)
def test_dicom_variants_give_their_view(samples_dir: Path, tags: dict, expected: View) -> None:
    metadata = decode_scan(_variant(samples_dir, **tags)).metadata
    assert metadata.view is expected
