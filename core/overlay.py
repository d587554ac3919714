"""Drawing on a scan: the model's heatmap blended over the X-ray, and clinicians' numbered marks.

Used wherever a scan is shown (upload, compare, teleconsult) and by the report, so the colours
and the mark numbering look the same everywhere. Marks are in the full-size image's pixel
coordinates (see :mod:`core.annotations`).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from PIL import Image, ImageDraw

from core.annotations import mark_label
from core.thumbnails import png_data_url

#: Colour ramp of the heatmap (dark blue -> red -> yellow), at evenly spaced levels.
_HEAT_RAMP = np.array([[0, 0, 130], [0, 120, 255], [255, 60, 0], [255, 230, 0]], dtype=np.float32)

#: Stored marks, on the PIL image (RGB) and in the browser figure (the same green).
_MARK_RGB = (0, 255, 120)
_MARK_COLOUR = "#00ff78"

#: A mark being entered, before it is saved.
_PENDING_COLOUR = "#ff3b30"


def _resize(values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if values.shape == shape:
        return values
    image = Image.fromarray(values.astype(np.float32), mode="F")
    return np.asarray(
        image.resize((shape[1], shape[0]), Image.Resampling.BILINEAR), dtype=np.float32
    )


def overlay_heatmap(
    pixels: np.ndarray, heatmap: np.ndarray | None = None, alpha: float = 0.45
) -> np.ndarray:
    """Blend a heatmap over a grayscale image.

    Args:
        pixels: Grayscale image, float in [0, 1], shape (H, W).
        heatmap: Attention map in [0, 1], any (h, w); resized to the image.
            ``None`` gives the plain image in RGB.
        alpha: Largest opacity of the heat colours (reached where the map is 1),
            so that cold regions leave the X-ray readable.

    Returns:
        RGB image, uint8, shape (H, W, 3).
    """
    gray = np.clip(np.asarray(pixels, dtype=np.float32), 0, 1)
    shown = gray * 255
    rgb = np.empty((*gray.shape, 3), dtype=np.uint8)
    if heatmap is None:
        rgb[...] = np.clip(np.rint(shown), 0, 255)[..., None]
        return rgb
    heat = np.clip(_resize(np.asarray(heatmap, dtype=np.float32), gray.shape), 0, 1)
    levels = np.linspace(0, 1, len(_HEAT_RAMP))
    weight = alpha * heat
    # Channel by channel, with the X-ray's share computed once: the same arithmetic in the
    # same precision as blending whole (H, W, 3) arrays, without their copies (2-3x faster on
    # a 1024x1024 scan).
    kept = shown * (1 - weight)
    for channel in range(3):
        blended = np.interp(heat, levels, _HEAT_RAMP[:, channel]) * weight
        blended += kept
        rgb[..., channel] = np.clip(np.rint(blended, out=blended), 0, 255, out=blended)
    return rgb


def draw_annotations(rgb: np.ndarray, annotations: Sequence[Mapping[str, float]]) -> np.ndarray:
    """Draw labelled points and boxes (in image pixels) on an RGB image.

    Args:
        rgb: uint8 image (H, W, 3).
        annotations: The marked notes' points ``{"x", "y"}`` or boxes ``{"x0", "y0", "x1", "y1"}``
            (see ``core.annotations``), in note order; labelled by ``core.annotations.mark_label``.

    Returns:
        A new uint8 image with the marks drawn.
    """
    image = Image.fromarray(rgb)
    draw = ImageDraw.Draw(image)
    stroke = max(2, round(max(image.size) / 300))
    radius = 4 * stroke
    for index, mark in enumerate(annotations):
        if "x0" in mark:
            x, y = float(mark["x0"]), float(mark["y0"])
            draw.rectangle(
                (x, y, float(mark["x1"]), float(mark["y1"])), outline=_MARK_RGB, width=stroke
            )
        else:
            x, y = float(mark["x"]), float(mark["y"])
            draw.ellipse(
                (x - radius, y - radius, x + radius, y + radius), outline=_MARK_RGB, width=stroke
            )
        draw.text((x + radius + 2, max(0.0, y - 2 * radius)), mark_label(index), fill=_MARK_RGB)
    return np.asarray(image)


@dataclass(frozen=True)
class FilmPicture:
    """A film as a marking chart sends it to the browser, encoded once per film and window.

    Attributes:
        url: The downsampled image as a ``data:image/png`` URL.
        step: Full-size pixels per sent pixel, on both axes.
        width: The full-size image's width (the chart's x axis, in image pixels).
        height: The full-size image's height.
    """

    url: str
    step: int
    width: int
    height: int


def film_picture(rgb: np.ndarray, max_side: int = 768) -> FilmPicture:
    """Encode a displayed film for :func:`annotation_figure`.

    Args:
        rgb: uint8 image (H, W, 3), e.g. from :func:`overlay_heatmap`.
        max_side: Largest side of the image sent to the browser.

    Returns:
        The picture: downsampled by a whole pixel step, so the chart's axes can stay those of
        the full-size image, the coordinates marks are stored in.
    """
    height, width = rgb.shape[:2]
    step = max(1, int(np.ceil(max(height, width) / max_side)))
    small = rgb[::step, ::step]
    if np.array_equal(small[..., 0], small[..., 1]) and np.array_equal(
        small[..., 0], small[..., 2]
    ):
        # A film without a heatmap is grey: one channel is a third of the bytes to encode,
        # send and decode, for the same pixels.
        small = small[..., 0]
    buffer = io.BytesIO()
    # Level 1: a few times faster than the default, for a slightly larger file.
    Image.fromarray(small).save(buffer, format="PNG", compress_level=1)
    return FilmPicture(png_data_url(buffer.getvalue()), step, width, height)


def annotation_figure(
    picture: FilmPicture,
    annotations: Sequence[Mapping[str, float]] = (),
    pending: Mapping[str, float] | None = None,
    *,
    drawing: str | None = None,
) -> go.Figure:
    """Show a film with labelled marks in a plotly figure whose axes are in image pixels.

    The picture is drawn with its pixel step, so that axis coordinates (and hover) are those
    of the full-size image, the coordinates notes are stored in.

    Args:
        picture: The film (:func:`film_picture`).
        annotations: The marked notes' points or boxes, in note order; labelled by
            ``core.annotations.mark_label``.
        pending: A mark being entered, drawn dashed in another colour.
        drawing: ``"point"`` (a click places a point, a drag pans) or ``"box"`` (a drag draws
            a box) to let the user mark the image through the chart's selection; ``None`` for
            a figure to look at only. Image traces cannot be selected, so in point mode a
            point is picked on an invisible grid of :data:`_CLICK_GRID` points per side over
            the image; a box is reported by the chart as dragged, and the grid is left out
            there, since the browser takes about half a second to draw its thousands of
            points again after every mark or note.

    Returns:
        The figure.
    """
    width, height = picture.width, picture.height
    # Sent as a PNG: as ``z`` the pixels travel as JSON numbers, about 4 MB on every redraw.
    fig = go.Figure(
        go.Image(
            source=picture.url,
            dx=picture.step,
            dy=picture.step,
            hovertemplate="x %{x}, y %{y}<extra></extra>",
        )
    )
    radius = max(width, height) / 60
    marks = [
        (mark_label(index), mark, _MARK_COLOUR, "solid") for index, mark in enumerate(annotations)
    ]
    if pending is not None:
        marks.append(("new", pending, _PENDING_COLOUR, "dash"))
    for text, mark, colour, dash in marks:
        line = {"color": colour, "width": 2, "dash": dash}
        if "x0" in mark:
            x0, y0, x1, y1 = (float(mark[k]) for k in ("x0", "y0", "x1", "y1"))
            fig.add_shape(type="rect", x0=x0, y0=y0, x1=x1, y1=y1, line=line)
        else:
            x0, y0 = float(mark["x"]), float(mark["y"])
            fig.add_shape(
                type="circle",
                x0=x0 - radius,
                y0=y0 - radius,
                x1=x0 + radius,
                y1=y0 + radius,
                line=line,
            )
        fig.add_annotation(
            x=x0,
            y=y0,
            text=text,
            showarrow=False,
            xanchor="left",
            yanchor="bottom",
            font={"color": colour, "size": 14},
        )
    fig.update_layout(
        margin={"t": 10, "l": 10, "r": 10, "b": 10},
        xaxis={"showgrid": False},
        yaxis={"showgrid": False},
    )
    if drawing == "point":
        _add_click_grid(fig, width, height)
    if drawing is not None:
        fig.update_layout(
            dragmode="select" if drawing == "box" else "pan",
            # Keeps the user's zoom and pan when the page redraws the figure with a new mark.
            uirevision="marking",
            height=720,
            newselection={"line": {"color": _PENDING_COLOUR, "width": 2, "dash": "dash"}},
            showlegend=False,
        )
    return fig


#: Points per side of the invisible grid that makes clicks on the image selectable.
_CLICK_GRID = 80


def _add_click_grid(fig: go.Figure, width: int, height: int) -> None:
    xs = np.linspace(0, width - 1, min(_CLICK_GRID, width))
    ys = np.linspace(0, height - 1, min(_CLICK_GRID, height))
    grid_x, grid_y = np.meshgrid(np.round(xs, 1), np.round(ys, 1))
    invisible = {"marker": {"opacity": 0}}
    fig.add_trace(
        go.Scatter(
            x=grid_x.ravel(),
            y=grid_y.ravel(),
            mode="markers",
            marker={"size": 6, "opacity": 0},
            selected=invisible,
            unselected=invisible,
            hovertemplate="x %{x:.0f}, y %{y:.0f}<extra></extra>",
            name="image",
        )
    )
