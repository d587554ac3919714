"""The one rule for a valid mark on a scan, and how marks are numbered."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.annotations import (
    AnnotationError,
    make_annotation,
    mark_from_selection,
    mark_label,
    mark_labels,
    validate_annotation,
)
from core.errors import UserError


def test_points_and_boxes_come_back_as_floats_in_their_canonical_order() -> None:
    assert validate_annotation(None) is None
    point = validate_annotation({"y": 6, "x": np.int64(5)})
    assert point == {"x": 5.0, "y": 6.0} and list(point) == ["x", "y"]
    assert all(type(v) is float for v in point.values())
    box = validate_annotation({"y1": 6, "x1": 4, "y0": 2, "x0": 1})
    assert list(box) == ["x0", "y0", "x1", "y1"] and box == {
        "x0": 1.0,
        "y0": 2.0,
        "x1": 4.0,
        "y1": 6.0,
    }


@pytest.mark.parametrize(
    "annotation",
    [
        {"x": 1},
        {"x": 1, "y": 2, "z": 3},
        {"x0": 1, "y0": 1, "x1": 2},
        {"x": 1, "y": 2, "x0": 1, "y0": 1, "x1": 2, "y1": 2},
        {"x": "1", "y": 2},
        {"x": True, "y": 2},
        {"x": None, "y": 2},
        {"x": math.nan, "y": 2},
        {"x": math.inf, "y": 2},
        {"x": -1, "y": 2},
        {"x0": 5, "y0": 1, "x1": 5, "y1": 3},
        {"x0": 1, "y0": 3, "x1": 5, "y1": 2},
    ],
)
def test_malformed_marks_are_refused_with_one_user_sentence(annotation: dict) -> None:
    with pytest.raises(AnnotationError) as caught:
        validate_annotation(annotation)
    assert isinstance(caught.value, UserError) and isinstance(caught.value, ValueError)
    message = str(caught.value)
    assert message.endswith(".") and message.count(". ") == 0


def test_a_mark_outside_the_known_image_size_is_refused_edges_included() -> None:
    assert validate_annotation({"x": 10, "y": 20}, image_size=(10, 20)) == {"x": 10.0, "y": 20.0}
    with pytest.raises(AnnotationError, match="inside the image"):
        validate_annotation({"x": 10.5, "y": 1}, image_size=(10, 20))
    with pytest.raises(AnnotationError, match="inside the image"):
        validate_annotation({"x0": 1, "y0": 1, "x1": 5, "y1": 21}, image_size=(10, 20))


def test_make_annotation_builds_points_and_boxes_inside_the_image() -> None:
    assert make_annotation(5, 6, 10, 10) == {"x": 5.0, "y": 6.0}
    assert make_annotation(1, 2, 10, 10, w=3, h=4) == {"x0": 1.0, "y0": 2.0, "x1": 4.0, "y1": 6.0}
    with pytest.raises(AnnotationError, match="inside the image"):
        make_annotation(8, 8, 10, 10, w=5, h=1)
    with pytest.raises(AnnotationError, match="positive width and height"):
        make_annotation(1, 1, 10, 10, w=-1)
    # A box with no height is a line, not a box.
    with pytest.raises(AnnotationError, match="positive width and height"):
        make_annotation(1, 1, 10, 10, w=3, h=0)


def test_marks_are_numbered_from_one_counting_only_notes_with_a_mark() -> None:
    assert mark_label(0) == "Mark 1"
    assert mark_label(9) == "Mark 10"
    notes = [None, {"x": 1.0, "y": 1.0}, {}, {"x0": 0.0, "y0": 0.0, "x1": 1.0, "y1": 1.0}]
    assert mark_labels(notes) == [None, "Mark 1", None, "Mark 2"]
    assert mark_labels([]) == []


def test_a_dragged_box_becomes_a_box_in_image_pixels_whatever_the_drag_direction() -> None:
    selection = {"box": [{"xref": "x", "yref": "y", "x": [300.4, 100.0], "y": [250.0, 50.0]}]}
    assert mark_from_selection(selection, (1024, 1024)) == {
        "x0": 100.0,
        "y0": 50.0,
        "x1": 300.4,
        "y1": 250.0,
    }


def test_a_box_dragged_past_the_edge_is_clipped_to_the_image() -> None:
    selection = {"box": [{"x": [-40.0, 120.0], "y": [900.0, 1300.0]}], "points": [{"x": 1, "y": 1}]}
    assert mark_from_selection(selection, (1000, 1000)) == {
        "x0": 0.0,
        "y0": 900.0,
        "x1": 120.0,
        "y1": 1000.0,
    }


def test_a_clicked_point_becomes_a_point_and_nothing_selected_is_no_mark() -> None:
    assert mark_from_selection({"points": [{"x": 512.0, "y": 200.5}]}, (1024, 1024)) == {
        "x": 512.0,
        "y": 200.5,
    }
    assert mark_from_selection({"points": [], "box": [], "lasso": []}, (10, 10)) is None


def test_a_box_entirely_outside_the_image_is_refused() -> None:
    with pytest.raises(AnnotationError):
        mark_from_selection({"box": [{"x": [1100.0, 1200.0], "y": [0.0, 10.0]}]}, (1024, 1024))
