"""Tests for core.dicom_header: what a header says the object is, and its safe values."""

from __future__ import annotations

from datetime import date

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ComprehensiveSRStorage, ComputedRadiographyImageStorage

from core.dicom_header import (
    body_part_out_of_scope,
    dicom_date,
    dicom_orientation,
    dicom_text,
    document_kind,
    documents_phrase,
    mentions_chest,
    other_modality_kind,
    out_of_scope,
)


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("HIP", "HIP"),
        ("hip", "HIP"),
        ("KNEE LEFT", "KNEE"),
        ("L-SPINE", "SPINE"),
        ("LSPINE", "LSPINE"),
    ],
)
def test_body_parts_are_read_word_by_word(value: str, code: str | None) -> None:
    reason = body_part_out_of_scope(value)
    assert (reason.code if reason else None) == code


@pytest.mark.parametrize(
    "value", ["CHEST", "CHESTABDOMEN", "THORAX", "LUNG", "CHEST HIP", None, ""]
)
def test_a_body_part_naming_the_chest_is_never_refused(value: str | None) -> None:
    assert body_part_out_of_scope(value) is None


def test_the_sentences_name_the_part_or_the_kind() -> None:
    hip = body_part_out_of_scope("HIP")
    assert hip is not None and hip.kind == "body_part"
    assert hip.sentence == "This is not a chest X-ray: the file says it shows the hip."
    report = Dataset()
    report.SOPClassUID = ComprehensiveSRStorage
    kind = document_kind(report)
    assert kind is not None and (kind.kind, kind.code) == ("document", "SR")
    assert (
        kind.sentence
        == "This is not a chest X-ray: it is a structured report (text, not an image)."
    )
    assert documents_phrase("SR", 1) == "a structured report (text, not an image)"
    assert documents_phrase("SR", 3) == "3 structured reports (text, not images)"


def test_an_image_is_not_a_document_and_pixels_decide_nothing_else() -> None:
    film = Dataset()
    film.SOPClassUID = ComputedRadiographyImageStorage
    film.Modality = "CR"
    film.BodyPartExamined = "CHEST"
    assert document_kind(film) is None and out_of_scope(film) is None
    film.BodyPartExamined = "SKULL"
    assert out_of_scope(film) is not None
    # An object read without its pixels is judged by its kind alone.
    assert out_of_scope(film, has_pixels=False) is None


@pytest.mark.parametrize(
    ("modality", "kind"),
    [
        ("CT", "CT scans"),
        ("mr", "MRI scans"),
        ("XY", "XY images"),
        ("CR", None),
        ("DX", None),
        (None, None),
    ],
)
def test_other_modalities_are_named_in_the_plural(modality: str | None, kind: str | None) -> None:
    assert other_modality_kind(modality) == kind


def test_chest_is_found_in_descriptions() -> None:
    assert mentions_chest(None, "Thorax PA", "")
    assert mentions_chest("CHEST_TO_PELVIS")
    assert not mentions_chest("Hip AP", None)


def test_values_are_short_printable_and_valid() -> None:
    dataset = Dataset()
    dataset.SeriesDescription = "Chest\nPA"
    dataset.StudyDescription = "  Thorax  "
    assert dicom_text(dataset, "SeriesDescription") is None
    assert dicom_text(dataset, "StudyDescription") == "Thorax"
    assert dicom_date("20240229") == date(2024, 2, 29)
    assert dicom_date("20230229") is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [(["L", "F"], ("L", "F")), (["P", "FL"], ("P", "FL")), ("L", None), ([], None), (None, None)],
)
def test_patient_orientation_needs_both_directions(value, expected) -> None:
    """Patient Orientation (0020,0020) names the rows' and the columns' direction; one value
    or none says nothing usable."""
    dataset = Dataset()
    if value is not None:
        dataset.PatientOrientation = value
    assert dicom_orientation(dataset) == expected
