"""Viewing stored scans (services.viewing): one with its notes, two side by side."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest

from core.enhance import EnhanceSettings
from core.imaging import decode_scan
from core.views import View
from services.imports import save_decoded_scan
from services.viewing import open_scan, side_by_side
from storage.notes import add_note
from storage.policy import AccessDenied

FILES = ("00000001_000.png", "16747_3_1.jpg")


def _store(database, patient, samples_dir: Path) -> list[int]:
    return [
        save_decoded_scan(
            database,
            patient,
            decode_scan((samples_dir / name).read_bytes(), name),
            scan_date=date(2025, 1, day),
            filename=name,
            view=View.PA,
            result=None,
        )
        for day, name in enumerate(FILES, start=1)
    ]


def test_open_scan_gives_the_pixels_and_the_notes(database, make_user, samples_dir) -> None:
    alice = make_user("alice")
    scan_id = _store(database, alice, samples_dir)[0]
    add_note(database, alice, scan_id, "Taken after the cough started.")
    opened = open_scan(database, alice, scan_id)
    decoded = decode_scan((samples_dir / FILES[0]).read_bytes(), FILES[0])
    assert np.array_equal(opened.record.pixels, decoded.pixels)
    assert [note.text for note in opened.notes] == ["Taken after the cough started."]
    with pytest.raises(AccessDenied):
        open_scan(database, make_user("carol"), scan_id)


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
