"""A patient's record (services.records): readings, the one displayed image, scans side by side."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest

from core.annotations import make_annotation
from core.enhance import SAVED_CAPTION, EnhanceSettings, enhance
from core.imaging import decode_scan
from core.report import HEATMAP_CAPTION
from core.scan_reading import ScanStatus
from core.timeline import format_version
from core.views import View
from services.imports import classify, save_decoded_scan
from services.records import (
    display_image,
    film_for_marking,
    open_scan_view,
    read_patient,
    scan_notes,
    side_by_side,
)
from storage.notes import add_note
from storage.policy import AccessDenied
from storage.scans import load_scan
from tests.data_urls import image_of

FILES = ("00000001_000.png", "16747_3_1.jpg")


def _store(database, patient, samples_dir: Path, classifier=None, **kwargs) -> list[int]:
    ids = []
    for day, name in enumerate(FILES, start=1):
        decoded = decode_scan((samples_dir / name).read_bytes(), name)
        ids.append(
            save_decoded_scan(
                database,
                patient,
                decoded,
                scan_date=date(2025, 1, day),
                filename=name,
                view=View.PA,
                result=None if classifier is None else classify(classifier, decoded),
                **kwargs,
            )
        )
    return ids


def test_display_image_applies_the_enhancement_saved_with_the_scan(
    database, make_user, samples_dir
) -> None:
    alice = make_user("alice")
    saved = EnhanceSettings(gamma=0.6)
    scan_id = _store(database, alice, samples_dir, enhancement=saved)[0]
    stored = load_scan(database, alice, scan_id)
    image, caption = display_image(stored)
    expected = np.round(enhance(stored.pixels, saved) * 255)
    assert image.shape == (*stored.pixels.shape, 3) and image.dtype == np.uint8
    assert np.abs(image[..., 0].astype(float) - expected).max() <= 1
    assert caption == SAVED_CAPTION
    # Settings chosen on the page replace the saved ones; no heatmap is spoken of unless drawn.
    chosen, words = display_image(stored, settings=EnhanceSettings())
    assert not np.array_equal(chosen, image)
    assert HEATMAP_CAPTION not in caption and HEATMAP_CAPTION not in words


def test_display_image_draws_the_heatmap_and_the_marks_and_says_so(
    database, make_user, classifier, samples_dir
) -> None:
    alice = make_user("alice")
    stored = load_scan(database, alice, _store(database, alice, samples_dir)[0])
    plain, _ = display_image(stored)
    heat, caption = display_image(stored, classifier=classifier, heatmap_finding="pneumonia")
    assert not np.array_equal(plain, heat) and caption.endswith(HEATMAP_CAPTION)
    height, width = stored.pixels.shape
    marked, words = display_image(stored, marks=[make_annotation(10, 10, width, height)])
    assert not np.array_equal(plain, marked) and "Green marks" in words


def test_open_scan_view_gives_the_reading_image_and_notes(
    database, make_user, classifier, samples_dir
) -> None:
    alice = make_user("alice")
    scan_ids = _store(database, alice, samples_dir, classifier)
    add_note(database, alice, scan_ids[0], "Taken after the cough started.")
    record = read_patient(database, alice, alice.user_id, classifier)
    assert [reading.scan_id for reading in record.readings] == scan_ids
    opened = open_scan_view(
        database, alice, record, scan_ids[0], classifier, heatmap_finding="pneumonia"
    )
    assert opened.reading == record.reading(scan_ids[0])
    assert opened.reading.status in (ScanStatus.SCORED, ScanStatus.VIEW_UNCERTAIN)
    decoded = decode_scan((samples_dir / FILES[0]).read_bytes(), FILES[0])
    assert np.array_equal(opened.record.pixels, decoded.pixels)
    assert [note.text for note in opened.notes] == ["Taken after the cough started."]
    assert opened.mark_labels == ("",)
    assert opened.filename == FILES[0]
    assert HEATMAP_CAPTION in opened.caption
    model = f"{classifier.info.name} {format_version(classifier.info.version)}"
    assert list(opened.details["Model"]) == [model]
    with pytest.raises(AccessDenied):
        read_patient(database, make_user("carol"), alice.user_id, classifier)


def test_a_scan_without_numbers_gets_no_heatmap(
    database, make_user, classifier, samples_dir
) -> None:
    alice = make_user("alice")
    scan_id = _store(database, alice, samples_dir)[0]  # saved without a model
    record = read_patient(database, alice, alice.user_id, classifier)
    assert record.reading(scan_id).status is ScanStatus.AWAITING_RESCORE
    opened = open_scan_view(
        database, alice, record, scan_id, classifier, heatmap_finding="pneumonia"
    )
    assert HEATMAP_CAPTION not in opened.caption
    assert record.report_default == record.readings[-1].scan_id


def test_side_by_side_enhances_alike_and_overlays_the_heatmap(
    database, make_user, classifier, samples_dir
) -> None:
    alice = make_user("alice")
    ids = _store(database, alice, samples_dir)
    settings = EnhanceSettings(gamma=0.8)
    plain = side_by_side(database, alice, ids, settings)
    heat = side_by_side(database, alice, ids, settings, classifier, "covid19")
    for image, name in zip(plain, FILES, strict=True):
        height, width = decode_scan((samples_dir / name).read_bytes(), name).pixels.shape
        assert image.shape == (height, width, 3) and image.dtype == np.uint8
        assert np.array_equal(image[..., 0], image[..., 2]), "gray without a heatmap"
    assert all(not np.array_equal(a, b) for a, b in zip(plain, heat, strict=True))
    with pytest.raises(AccessDenied):
        side_by_side(database, make_user("carol"), ids, settings)


def test_a_film_opened_for_marking_is_the_windowed_display_and_notes_follow_without_it(
    database, make_user, samples_dir
) -> None:
    alice = make_user("alice")
    scan_id = _store(database, alice, samples_dir)[0]
    record = read_patient(database, alice, alice.user_id, None)
    window = (0.35, 0.5)
    film = film_for_marking(database, alice, scan_id, window)
    stored = load_scan(database, alice, scan_id)
    height, width = stored.pixels.shape
    shown = display_image(stored, window=window)[0]
    step = film.picture.step
    sent = image_of(film.picture.url)
    assert (film.picture.width, film.picture.height) == (width, height)
    assert np.array_equal(np.asarray(sent), shown[::step, ::step, 0]), "the windowed film"
    assert film.has_dicom_uid is False, "a PNG has no SOP Instance UID to send a report for"

    add_note(database, alice, scan_id, "Here.", make_annotation(10, 10, width, height))
    noted = scan_notes(database, alice, record, scan_id)
    assert [note.text for note in noted.notes] == ["Here."]
    assert noted.mark_labels == ("Mark 1",) and len(noted.marks) == 1
    assert noted.reading == record.reading(scan_id)
    carol = make_user("carol")
    with pytest.raises(AccessDenied):
        film_for_marking(database, carol, scan_id, window)
    with pytest.raises(AccessDenied):
        scan_notes(database, carol, record, scan_id)
