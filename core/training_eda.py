"""Exploratory analysis of the project's training radiographs (``manifest.csv`` of the shared data).

Pure pandas/numpy/Pillow and plotly: class balance per split and source, a
seeded per-class sample with pixel-intensity statistics, and image sizes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from PIL import Image

from core.eda import DatasetUnavailable

#: Fixed seed so every analyst (and every rerun) sees the same sample.
SAMPLE_SEED = 20261122

#: Images per class drawn for the intensity statistics.
SAMPLE_PER_CLASS = 100

#: Histogram bins over [0, 1].
HISTOGRAM_BINS = 32

_SOURCES = {"kermany": "Kermany (children)", "covid_radiography": "COVID-19 set (adults)"}


def _class_name(dataset: str, label: str, subtype: str) -> str:
    source = "Kermany" if dataset == "kermany" else "COVID set"
    if label.upper() == "NORMAL":
        kind = "normal"
    elif label.upper() == "COVID":
        kind = "COVID-19"
    else:
        kind = f"{subtype} pneumonia" if subtype and subtype != "none" else label.lower()
    return f"{source}: {kind}"


def load_manifest(shared_dir: Path) -> pd.DataFrame:
    """Read the shared data's manifest.

    Args:
        shared_dir: ``Settings.shared_data_dir``.

    Returns:
        The manifest (``path, dataset, split, label, subtype, sha256``) plus
        ``source`` (readable dataset name) and ``image_class`` (source and class,
        e.g. ``"Kermany: bacterial pneumonia"``).

    Raises:
        DatasetUnavailable: The folder or its manifest is absent.
    """
    path = Path(shared_dir) / "manifest.csv"
    if not path.is_file():
        raise DatasetUnavailable("The training data folder is not available here.")
    # keep_default_na: the COVID set has an empty subtype, which must stay "" rather than NaN.
    manifest = pd.read_csv(path, keep_default_na=False, dtype=str)
    manifest["source"] = manifest["dataset"].map(_SOURCES).fillna(manifest["dataset"])
    manifest["image_class"] = [
        _class_name(dataset, label, subtype)
        for dataset, label, subtype in zip(
            manifest["dataset"], manifest["label"], manifest["subtype"], strict=True
        )
    ]
    return manifest


def class_balance(manifest: pd.DataFrame) -> pd.DataFrame:
    """Images per source, split and class.

    Args:
        manifest: Output of :func:`load_manifest`.

    Returns:
        Columns ``source, split, image_class, images, share`` where ``share`` is
        the class's fraction of its source-and-split.
    """
    counts = (
        manifest.groupby(["source", "split", "image_class"]).size().rename("images").reset_index()
    )
    counts["share"] = counts["images"] / counts.groupby(["source", "split"])["images"].transform(
        "sum"
    )
    return counts


def sample_per_class(
    manifest: pd.DataFrame, per_class: int = SAMPLE_PER_CLASS, seed: int = SAMPLE_SEED
) -> pd.DataFrame:
    """A fixed random sample of up to ``per_class`` images of every class.

    Args:
        manifest: Output of :func:`load_manifest`.
        per_class: Images per class (all of a smaller class).
        seed: Random seed.

    Returns:
        The sampled manifest rows, ordered by class.
    """
    parts = [
        group.sample(n=min(per_class, len(group)), random_state=seed)
        for _, group in manifest.groupby("image_class", sort=True)
    ]
    return pd.concat(parts, ignore_index=True) if parts else manifest.iloc[0:0]


def _gray(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("L"), dtype=np.float32) / 255.0


def intensity_statistics(
    root: Path, sample: pd.DataFrame, bins: int = HISTOGRAM_BINS
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-image intensity statistics and per-class mean histograms of a sample.

    Args:
        root: Shared data folder (manifest paths are relative to it).
        sample: Manifest rows to read (e.g. :func:`sample_per_class`).
        bins: Histogram bins over [0, 1].

    Returns:
        ``(per_image, histograms)``: ``per_image`` has ``image_class, mean, std``
        per image (grayscale in [0, 1]); ``histograms`` has ``image_class,
        intensity`` (bin centre) and ``density`` (mean share of pixels per bin).
    """
    edges = np.linspace(0.0, 1.0, bins + 1)
    stats, hists = [], []
    for path, image_class in zip(sample["path"], sample["image_class"], strict=True):
        pixels = _gray(Path(root) / path)
        stats.append((image_class, float(pixels.mean()), float(pixels.std())))
        counts, _ = np.histogram(pixels, bins=edges)
        hists.append((image_class, counts / pixels.size))
    per_image = pd.DataFrame(stats, columns=["image_class", "mean", "std"])
    rows: list[tuple[str, float, float]] = []
    for image_class in dict.fromkeys(name for name, _ in hists):
        mean = np.mean([h for name, h in hists if name == image_class], axis=0)
        centres = (edges[:-1] + edges[1:]) / 2
        rows.extend(zip([image_class] * bins, centres, mean, strict=True))
    histograms = pd.DataFrame(rows, columns=["image_class", "intensity", "density"])
    return per_image, histograms


def image_sizes(root: Path, manifest: pd.DataFrame) -> pd.DataFrame:
    """Image dimensions and colour modes, read from file headers only.

    Args:
        root: Shared data folder.
        manifest: Rows whose files to inspect.

    Returns:
        Columns ``source, width, height, mode, images`` (one row per distinct combination).
    """
    records = []
    for path, source in zip(manifest["path"], manifest["source"], strict=True):
        with Image.open(Path(root) / path) as image:
            records.append((source, image.width, image.height, image.mode))
    frame = pd.DataFrame(records, columns=["source", "width", "height", "mode"])
    return (
        frame.groupby(["source", "width", "height", "mode"]).size().rename("images").reset_index()
    )


def balance_figure(balance: pd.DataFrame) -> go.Figure:
    """Stacked bars of images per class, one panel per source, split on the x axis."""
    return px.bar(
        balance,
        x="split",
        y="images",
        color="image_class",
        facet_col="source",
        category_orders={"split": ["train", "val", "test"]},
        labels={"image_class": "Class", "images": "Images", "split": "Split"},
    )


def histogram_figure(histograms: pd.DataFrame) -> go.Figure:
    """Line plot of the mean pixel-intensity histogram of each class."""
    return px.line(
        histograms,
        x="intensity",
        y="density",
        color="image_class",
        labels={
            "intensity": "Pixel intensity (0 black, 1 white)",
            "density": "Share of pixels",
            "image_class": "Class",
        },
    )


def mean_std_figure(per_image: pd.DataFrame) -> go.Figure:
    """Scatter of each sampled image's mean against standard deviation, by class."""
    return px.scatter(
        per_image,
        x="mean",
        y="std",
        color="image_class",
        opacity=0.6,
        labels={
            "mean": "Mean intensity",
            "std": "Intensity standard deviation",
            "image_class": "Class",
        },
    )
