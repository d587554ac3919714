"""Heatmap overlay and numbered marks drawn on a scan."""

from __future__ import annotations

import numpy as np
import pytest

from core.annotations import make_annotation
from core.overlay import (
    _HEAT_RAMP,
    annotation_figure,
    draw_annotations,
    film_picture,
    overlay_heatmap,
)
from tests.data_urls import image_of


def test_overlay_blends_heat_only_where_the_map_is_warm() -> None:
    pixels = np.full((100, 80), 0.5, dtype=np.float32)
    heat = np.zeros((10, 8), dtype=np.float32)
    heat[:5] = 1.0
    rgb = overlay_heatmap(pixels, heat)
    assert rgb.shape == (100, 80, 3) and rgb.dtype == np.uint8
    assert tuple(rgb[90, 40]) == (128, 128, 128)
    assert rgb[10, 40, 0] > rgb[10, 40, 2]
    plain = overlay_heatmap(pixels)
    assert (plain == 128).all()


def _blend_whole_arrays(pixels: np.ndarray, heat: np.ndarray, alpha: float) -> np.ndarray:
    """The blend written on whole (H, W, 3) arrays, as before it was made faster."""
    gray = np.clip(pixels.astype(np.float32), 0, 1)
    rgb = np.repeat(gray[..., None], 3, axis=2) * 255
    levels = np.linspace(0, 1, len(_HEAT_RAMP))
    colours = np.stack([np.interp(heat, levels, _HEAT_RAMP[:, c]) for c in range(3)], axis=2)
    weight = (alpha * heat)[..., None]
    return np.clip(np.rint(rgb * (1 - weight) + colours * weight), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("alpha", [0.45, 1.0, np.float64(0.3)])
def test_overlay_is_exactly_the_whole_array_blend(alpha: float) -> None:
    rng = np.random.default_rng(5)
    pixels = rng.random((64, 48), dtype=np.float32) * 1.2 - 0.1
    heat = rng.random((64, 48), dtype=np.float32)
    np.testing.assert_array_equal(
        overlay_heatmap(pixels, heat, alpha), _blend_whole_arrays(pixels, heat, alpha)
    )


def test_annotations_are_drawn_on_a_copy_of_the_image() -> None:
    rgb = overlay_heatmap(np.full((100, 80), 0.5, dtype=np.float32))
    marked = draw_annotations(rgb, [make_annotation(10, 10, 80, 100, w=30, h=40)])
    assert tuple(marked[10, 20]) == (0, 255, 120)
    assert tuple(marked[30, 25]) == (128, 128, 128)
    assert (rgb == 128).all()


def test_each_mark_carries_its_label_next_to_it() -> None:
    rgb = overlay_heatmap(np.full((200, 200), 0.0, dtype=np.float32))
    point = make_annotation(50, 100, 200, 200)
    marked = draw_annotations(rgb, [point])
    # The circle (radius 8 at this size) ends at x = 58; its label is written to the right of it.
    assert not rgb[:, 60:].any()
    assert marked[80:100, 60:, 1].any()


def test_annotation_figure_keeps_full_size_coordinates_and_labels_marks() -> None:
    rgb = np.zeros((2000, 1000, 3), dtype=np.uint8)
    marks = [
        make_annotation(100, 200, 1000, 2000),
        make_annotation(10, 20, 1000, 2000, w=300, h=400),
    ]
    fig = annotation_figure(film_picture(rgb), marks, pending=make_annotation(500, 500, 1000, 2000))
    image = fig.data[0]
    assert image.dx == 3 and image.dy == 3
    sent = image_of(image.source)
    assert (sent.format, sent.size) == ("PNG", (334, 667)), "downsampled, full-size axes"
    assert image.z is None, "pixels are not sent as JSON numbers"
    shapes = fig.layout.shapes
    assert [s.type for s in shapes] == ["circle", "rect", "circle"]
    assert (shapes[1].x0, shapes[1].y0, shapes[1].x1, shapes[1].y1) == (10, 20, 310, 420)
    assert shapes[2].line.dash == "dash"
    assert [a.text for a in fig.layout.annotations] == ["Mark 1", "Mark 2", "new"]


def test_a_grey_film_is_sent_as_one_channel_and_a_heatmap_in_colour() -> None:
    gray = np.linspace(0, 1, 600 * 400, dtype=np.float32).reshape(600, 400)
    plain = film_picture(overlay_heatmap(gray))
    heat = np.zeros((60, 40), dtype=np.float32)
    heat[20:40, 10:30] = 1
    coloured = film_picture(overlay_heatmap(gray, heat))
    assert image_of(plain.url).mode == "L" and image_of(coloured.url).mode == "RGB"
    assert np.array_equal(np.asarray(image_of(plain.url)), overlay_heatmap(gray)[..., 0])
    assert (plain.step, plain.width, plain.height) == (1, 400, 600)


def test_a_point_is_picked_on_a_grid_and_a_box_is_dragged_without_one() -> None:
    picture = film_picture(np.zeros((1000, 800, 3), dtype=np.uint8))
    point = annotation_figure(picture, drawing="point")
    box = annotation_figure(picture, drawing="box")
    grid = point.data[1]
    assert (point.layout.dragmode, box.layout.dragmode) == ("pan", "select")
    assert grid.type == "scatter" and (min(grid.x), max(grid.x), max(grid.y)) == (0, 799, 999)
    assert [trace.type for trace in box.data] == ["image"], "nothing to redraw but the film"
    assert [trace.type for trace in annotation_figure(picture).data] == ["image"]
