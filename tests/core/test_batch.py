"""Tests of the per-file batch loop, with the real decoder on real and broken files."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from core.batch import batch_summary, process_batch
from core.imaging import decode_scan


def _png(side: int = 128) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.linspace(0, 255, side * side, dtype=np.uint8).reshape(side, side)).save(buffer, "PNG")
    return buffer.getvalue()


def test_a_bad_file_reports_its_message_and_the_others_continue() -> None:
    files = [("a.png", _png()), ("notes.txt", b"hello, not an image"), ("empty.png", b""), ("b.png", _png(96))]
    progress: list[tuple[int, int, str]] = []
    items = process_batch(
        files,
        lambda name, data: decode_scan(data, name).metadata.width,
        lambda done, total, name: progress.append((done, total, name)),
    )
    assert [item.name for item in items] == ["a.png", "notes.txt", "empty.png", "b.png"]
    assert [item.ok for item in items] == [True, False, False, True]
    assert items[0].value == 128 and items[3].value == 96
    assert items[1].value is None
    assert items[1].error and items[1].error.endswith(".") and "Traceback" not in items[1].error
    assert items[2].error == "This file is empty."
    assert progress == [(1, 4, "a.png"), (2, 4, "notes.txt"), (3, 4, "empty.png"), (4, 4, "b.png")]
    assert batch_summary(items) == "2 of 4 files were saved; 2 could not be used."


def test_unexpected_errors_propagate() -> None:
    def broken(name: str, data: bytes) -> None:
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError):
        process_batch([("a.png", _png())], broken)


def test_extra_expected_errors_are_reported_per_file() -> None:
    def denied(name: str, data: bytes) -> None:
        raise PermissionError("You cannot add scans to this record.")

    items = process_batch([("a.png", b"x")], denied, expected=(PermissionError,))
    assert items[0].error == "You cannot add scans to this record."
    assert batch_summary(items) == "0 of 1 file was saved; 1 could not be used."
    assert batch_summary(process_batch([], denied)) == "0 of 0 files were saved."
