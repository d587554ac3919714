"""Marks on a scan: the one rule for a valid point or box, and how marks are numbered.

A clinician's note may carry one mark, stored in pixel coordinates of the scan as stored
(at working resolution, see ``storage/pixels.py``; origin top left): a point ``{"x", "y"}``
or a box ``{"x0", "y0", "x1", "y1"}``. Notes
with a mark are numbered "Mark 1", "Mark 2", ... in note order, on the image and in every list
of notes, so a patient can match each note to its mark.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from numbers import Real
from typing import Any

from core.errors import UserError

POINT_KEYS: tuple[str, ...] = ("x", "y")
BOX_KEYS: tuple[str, ...] = ("x0", "y0", "x1", "y1")


class AnnotationError(UserError, ValueError):
    """A mark that is not a point or a box inside the image."""

    code = "bad_annotation"
    default_message = "A mark must be a point or a box inside the image."


def _coordinate(value: Any) -> float:
    # bool is a Real to Python, and a string would pass float(); neither is a coordinate.
    if isinstance(value, bool) or not isinstance(value, Real):
        raise AnnotationError("A mark's coordinates must be numbers.")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise AnnotationError("A mark's coordinates must be zero or more pixels.")
    return number


def validate_annotation(
    annotation: Mapping[str, Any] | None, *, image_size: tuple[int, int] | None = None
) -> dict[str, float] | None:
    """Check a mark and return it in its canonical form (the one rule, used before storing).

    Args:
        annotation: ``{"x", "y"}`` for a point or ``{"x0", "y0", "x1", "y1"}`` for a box, in
            pixels; ``None`` for a note without a mark.
        image_size: ``(width, height)`` of the scan in pixels, when known, to check that the
            mark lies inside it (edges included).

    Returns:
        ``None`` for no mark, else a new dict with exactly the point's or the box's keys, in
        that order, as finite non-negative floats.

    Raises:
        AnnotationError: Other keys, a value that is not a finite non-negative number, a box
            without a positive width and height, or a mark outside ``image_size``.
    """
    if annotation is None:
        return None
    return _checked_mark(annotation, image_size)


def _checked_mark(
    annotation: Mapping[str, Any], image_size: tuple[int, int] | None
) -> dict[str, float]:
    keys = set(annotation)
    if keys == set(POINT_KEYS):
        order = POINT_KEYS
    elif keys == set(BOX_KEYS):
        order = BOX_KEYS
    else:
        raise AnnotationError("A mark is either a point (x, y) or a box (x0, y0, x1, y1).")
    mark = {key: _coordinate(annotation[key]) for key in order}
    if order == BOX_KEYS and not (mark["x1"] > mark["x0"] and mark["y1"] > mark["y0"]):
        raise AnnotationError("A box needs a positive width and height.")
    if image_size is not None:
        width, height = image_size
        right, bottom = (mark["x"], mark["y"]) if order == POINT_KEYS else (mark["x1"], mark["y1"])
        if right > width or bottom > height:
            raise AnnotationError(
                f"The mark must lie inside the image ({width} x {height} pixels)."
            )
    return mark


def make_annotation(
    x: float, y: float, width: int, height: int, w: float = 0, h: float = 0
) -> dict[str, float]:
    """Build a marked point (``w = h = 0``) or box on an image of ``width`` x ``height`` pixels.

    Args:
        x: Point, or left edge of the box, in pixels from the left.
        y: Point, or top edge of the box, in pixels from the top.
        width: Image width in pixels.
        height: Image height in pixels.
        w: Box width in pixels (0 for a point).
        h: Box height in pixels (0 for a point).

    Returns:
        ``{"x", "y"}`` for a point or ``{"x0", "y0", "x1", "y1"}`` for a box.

    Raises:
        AnnotationError: The mark is not valid (see :func:`validate_annotation`).
    """
    point = w == 0 and h == 0
    raw = {"x": x, "y": y} if point else {"x0": x, "y0": y, "x1": x + w, "y1": y + h}
    return _checked_mark(raw, (width, height))


def mark_label(index: int) -> str:
    """The name of a mark, on the image and beside its note.

    Args:
        index: Position of the mark among the marked notes, counting from 0.

    Returns:
        ``"Mark 1"`` for index 0, and so on.
    """
    return f"Mark {index + 1}"


def mark_labels(annotations: Sequence[Mapping[str, Any] | None]) -> list[str | None]:
    """The mark name of each note, counting only notes that carry a mark.

    Args:
        annotations: Each note's mark (or ``None``), in note order.

    Returns:
        One entry per note: its :func:`mark_label`, or ``None`` for a note without a mark.
    """
    labels: list[str | None] = []
    count = 0
    for annotation in annotations:
        if annotation:
            labels.append(mark_label(count))
            count += 1
        else:
            labels.append(None)
    return labels


def mark_from_selection(
    selection: Mapping[str, Any], image_size: tuple[int, int]
) -> dict[str, float] | None:
    """The mark a user drew on a chart of the image, in image pixels.

    The chart's axes are the image's pixel coordinates (see ``core.overlay.annotation_figure``),
    so a selection's data coordinates are image coordinates whatever the zoom or pan; only the
    order of the corners (a box dragged up or left) and edges past the image need care.

    Args:
        selection: The chart's selection (``st.plotly_chart(..., on_select=...).selection``):
            ``"box"`` holds dragged boxes as ``{"x": [a, b], "y": [c, d]}``, ``"points"`` the
            clicked points as ``{"x", "y"}``.
        image_size: ``(width, height)`` of the image in pixels.

    Returns:
        The last box dragged (clipped to the image), else the last point clicked, as a valid
        mark; ``None`` when nothing is selected.

    Raises:
        AnnotationError: The box has no area inside the image, or the point lies outside it.
    """
    width, height = image_size
    boxes = [box for box in selection.get("box") or () if box.get("x") and box.get("y")]
    if boxes:
        xs = [min(max(float(v), 0.0), float(width)) for v in boxes[-1]["x"]]
        ys = [min(max(float(v), 0.0), float(height)) for v in boxes[-1]["y"]]
        raw = {"x0": min(xs), "y0": min(ys), "x1": max(xs), "y1": max(ys)}
        return _checked_mark({k: round(v, 1) for k, v in raw.items()}, image_size)
    points = [p for p in selection.get("points") or () if "x" in p and "y" in p]
    if points:
        point = {"x": points[-1]["x"], "y": points[-1]["y"]}
        return _checked_mark(point, image_size)
    return None
