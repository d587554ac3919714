"""Exploratory analysis of the public NIH ChestX-ray14 metadata (pure pandas and plotly).

The metadata table ships inside the installed ``torchxrayvision`` package, so the
analyst page works offline. Every function takes a frame produced by
:func:`load_nih_metadata` (or a filtered slice of it) and returns a small
aggregate or a plotly figure; nothing here touches user data.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from core.errors import UserError

#: The 14 ChestX-ray14 findings, in the publisher's order.
NIH_FINDINGS: tuple[str, ...] = (
    "Atelectasis",
    "Cardiomegaly",
    "Effusion",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pneumonia",
    "Pneumothorax",
    "Consolidation",
    "Edema",
    "Emphysema",
    "Fibrosis",
    "Pleural_Thickening",
    "Hernia",
)

NO_FINDING = "No Finding"

#: Ages above this are recording errors (the original 2017 release had ages up to 414).
MAX_PLAUSIBLE_AGE = 100

#: Age bands used for every "by age" view (lower bound inclusive, upper exclusive).
AGE_BANDS: tuple[tuple[int, int], ...] = ((0, 18), (18, 40), (40, 60), (60, 80), (80, 101))

_NIH_FILE = "Data_Entry_2017_v2020.csv.gz"
_COLUMNS = {
    "Image Index": "image",
    "Finding Labels": "labels",
    "Follow-up #": "follow_up",
    "Patient ID": "patient_id",
    "Patient Age": "age",
    "Patient Gender": "sex",
    "View Position": "view",
}


class DatasetUnavailable(UserError, FileNotFoundError):
    """Raised when a data set or its metadata file is not available on this machine."""

    code = "dataset_unavailable"
    default_message = "This data set is not available here."


@dataclass(frozen=True)
class NihFilters:
    """The analyst's selection on the NIH page; ``None`` or empty means "no restriction".

    Attributes:
        sexes: Sex codes to keep (``"M"``, ``"F"``).
        age_range: Inclusive (low, high) age in years.
        views: View positions to keep (``"PA"``, ``"AP"``).
        finding: Keep only images carrying this finding (or ``"No Finding"``).
    """

    sexes: tuple[str, ...] = ()
    age_range: tuple[int, int] | None = None
    views: tuple[str, ...] = ()
    finding: str | None = None


def nih_metadata_path() -> Path:
    """Locate the ChestX-ray14 metadata shipped with torchxrayvision.

    Returns:
        Path of ``Data_Entry_2017_v2020.csv.gz``.

    Raises:
        DatasetUnavailable: The package or its data file is missing.
    """
    try:
        path = Path(str(importlib.resources.files("torchxrayvision") / "data" / _NIH_FILE))
    except ModuleNotFoundError as exc:
        raise DatasetUnavailable("The torchxrayvision package is not installed.") from exc
    if not path.is_file():
        raise DatasetUnavailable("The NIH metadata file is missing.")
    return path


def parse_nih_metadata(raw: pd.DataFrame) -> pd.DataFrame:
    """Turn the publisher's table into tidy columns with one boolean column per finding.

    Args:
        raw: Frame with the original ``Data_Entry_2017`` column names.

    Returns:
        Frame with ``image, labels, follow_up, patient_id, age, sex, view``,
        ``age_band`` (see :func:`age_band`), ``n_findings`` (0 for "No Finding") and one bool
        column per :data:`NIH_FINDINGS` entry.

    Raises:
        KeyError: A required column is missing.
    """
    missing = [name for name in _COLUMNS if name not in raw.columns]
    if missing:
        raise KeyError(f"NIH metadata lacks columns {missing}")
    frame = raw[list(_COLUMNS)].rename(columns=_COLUMNS)
    frame["age"] = pd.to_numeric(frame["age"], errors="coerce")
    # Delimit both ends so that a finding never matches inside another one's name.
    padded = "|" + frame["labels"].astype(str) + "|"
    for finding in NIH_FINDINGS:
        frame[finding] = padded.str.contains(f"|{finding}|", regex=False).astype(bool)
    frame["n_findings"] = frame[list(NIH_FINDINGS)].sum(axis=1).astype(int)
    # Banded once here so that every filtered view skips re-cutting 112k ages.
    frame["age_band"] = age_band(frame["age"])
    return frame


def load_nih_metadata(path: Path | None = None) -> pd.DataFrame:
    """Read and parse the NIH ChestX-ray14 metadata.

    Args:
        path: CSV(.gz) file; defaults to :func:`nih_metadata_path`.

    Returns:
        The parsed frame (see :func:`parse_nih_metadata`).

    Raises:
        DatasetUnavailable: The file is missing.
    """
    path = path or nih_metadata_path()
    if not Path(path).is_file():
        raise DatasetUnavailable("The NIH metadata file is missing.")
    # Reading every column and selecting afterwards is ~50x faster than usecols here.
    return parse_nih_metadata(pd.read_csv(path))


def exclude_impossible_ages(
    frame: pd.DataFrame, max_age: int = MAX_PLAUSIBLE_AGE
) -> tuple[pd.DataFrame, int]:
    """Drop rows whose age is missing or above ``max_age``.

    Args:
        frame: Parsed NIH frame.
        max_age: Highest plausible age in years.

    Returns:
        The kept rows and the number of excluded rows.
    """
    valid = frame["age"].notna() & (frame["age"] >= 0) & (frame["age"] <= max_age)
    return frame[valid], int((~valid).sum())


def apply_filters(frame: pd.DataFrame, filters: NihFilters) -> pd.DataFrame:
    """Restrict the frame to the analyst's selection.

    Args:
        frame: Parsed NIH frame.
        filters: The selection.

    Returns:
        The matching rows.
    """
    mask = pd.Series(True, index=frame.index)
    if filters.sexes:
        mask &= frame["sex"].isin(filters.sexes)
    if filters.views:
        mask &= frame["view"].isin(filters.views)
    if filters.age_range is not None:
        low, high = filters.age_range
        mask &= frame["age"].between(low, high)
    if filters.finding == NO_FINDING:
        mask &= frame["n_findings"] == 0
    elif filters.finding:
        mask &= frame[filters.finding]
    return frame[mask]


def age_band(ages: pd.Series) -> pd.Series:
    """Label each age with its band from :data:`AGE_BANDS` (e.g. ``"40-59"``).

    Args:
        ages: Ages in years.

    Returns:
        Ordered categorical labels; ages outside every band become NaN.
    """
    edges = [low for low, _ in AGE_BANDS] + [AGE_BANDS[-1][1]]
    labels = [f"{low}-{high - 1}" if high <= 100 else f"{low}+" for low, high in AGE_BANDS]
    return pd.cut(ages, bins=edges, right=False, labels=labels)


def summary(frame: pd.DataFrame) -> dict[str, int]:
    """Headline counts.

    Args:
        frame: Parsed NIH frame (possibly filtered).

    Returns:
        ``images``, ``patients`` and ``with_findings`` (images with at least one finding).
    """
    return {
        "images": len(frame),
        "patients": int(frame["patient_id"].nunique()),
        "with_findings": int((frame["n_findings"] > 0).sum()),
    }


def age_distribution(frame: pd.DataFrame) -> pd.DataFrame:
    """Images per year of age, split by sex (pre-aggregated so the browser gets ~200 rows).

    Args:
        frame: Parsed NIH frame.

    Returns:
        Columns ``age, sex, images``.
    """
    return frame.groupby(["age", "sex"], observed=True).size().rename("images").reset_index()


def findings_by_band_and_sex(frame: pd.DataFrame) -> pd.DataFrame:
    """Prevalence of each finding within every age band and sex.

    Args:
        frame: Parsed NIH frame.

    Returns:
        Columns ``age_band, sex, finding, images, share`` where ``share`` is the
        fraction of that band-and-sex group's images carrying the finding.
    """
    bands = frame["age_band"] if "age_band" in frame.columns else age_band(frame["age"])
    grouped = frame.assign(age_band=bands).groupby(["age_band", "sex"], observed=True)
    counts = grouped[list(NIH_FINDINGS)].sum()
    totals = grouped.size()
    stacked = counts.stack()
    # The finding columns form a single level, so stacking them always yields a Series.
    assert isinstance(stacked, pd.Series)
    long = stacked.rename("images").reset_index().rename(columns={"level_2": "finding"})
    long["total"] = long.set_index(["age_band", "sex"]).index.map(totals.to_dict()).to_numpy()
    long["share"] = long["images"] / long["total"]
    return long.drop(columns="total")


def findings_per_image(frame: pd.DataFrame) -> pd.DataFrame:
    """How many findings each image carries.

    Args:
        frame: Parsed NIH frame.

    Returns:
        Columns ``n_findings, kind, images`` with ``kind`` one of ``No finding``,
        ``Single finding``, ``Multiple findings``.
    """
    counts = frame["n_findings"].value_counts().sort_index().rename("images").reset_index()
    counts["kind"] = np.select(
        [counts["n_findings"] == 0, counts["n_findings"] == 1],
        ["No finding", "Single finding"],
        default="Multiple findings",
    )
    return counts[["n_findings", "kind", "images"]]


def cooccurrence(frame: pd.DataFrame) -> pd.DataFrame:
    """Co-occurrence counts of the 14 findings.

    Args:
        frame: Parsed NIH frame.

    Returns:
        Symmetric 14x14 frame: cell (a, b) is the number of images carrying both;
        the diagonal is each finding's image count.
    """
    matrix = frame[list(NIH_FINDINGS)].to_numpy(dtype=np.int64)
    return pd.DataFrame(matrix.T @ matrix, index=list(NIH_FINDINGS), columns=list(NIH_FINDINGS))


def visits_per_patient(frame: pd.DataFrame) -> pd.DataFrame:
    """Distribution of the number of images (visits) per patient.

    Args:
        frame: Parsed NIH frame.

    Returns:
        Columns ``visits`` (band label, ordered) and ``patients``.
    """
    per_patient = frame.groupby("patient_id").size()
    edges = [1, 2, 3, 6, 11, 21, 51, np.inf]
    labels = ["1", "2", "3-5", "6-10", "11-20", "21-50", "51+"]
    bands = pd.cut(per_patient, bins=edges, right=False, labels=labels)
    counts = bands.value_counts().reindex(labels, fill_value=0)
    return pd.DataFrame({"visits": labels, "patients": counts.to_numpy()})


def view_mix(frame: pd.DataFrame) -> pd.DataFrame:
    """Images per view position.

    Args:
        frame: Parsed NIH frame.

    Returns:
        Columns ``view, images, share``.
    """
    counts = frame["view"].value_counts().rename("images").reset_index()
    counts["share"] = counts["images"] / max(len(frame), 1)
    return counts


# Figures: thin plotly wrappers over the aggregates above, so pages only render.


def age_figure(distribution: pd.DataFrame) -> go.Figure:
    """Stacked bar chart of images per age, by sex."""
    fig = px.bar(distribution, x="age", y="images", color="sex", barmode="stack")
    fig.update_layout(bargap=0, xaxis_title="Age (years)", yaxis_title="Images")
    return fig


def band_figure(long: pd.DataFrame) -> go.Figure:
    """Grouped bars of finding prevalence per age band, one panel per sex."""
    fig = px.bar(
        long,
        x="finding",
        y="share",
        color="age_band",
        facet_row="sex",
        barmode="group",
        labels={"share": "Share of images", "finding": "Finding", "age_band": "Age band"},
    )
    fig.update_yaxes(tickformat=".0%")
    return fig


def per_image_figure(counts: pd.DataFrame) -> go.Figure:
    """Bars of images by number of findings, coloured single vs multiple."""
    return px.bar(
        counts,
        x="n_findings",
        y="images",
        color="kind",
        labels={"n_findings": "Findings on the image", "images": "Images", "kind": ""},
    )


def cooccurrence_figure(matrix: pd.DataFrame) -> go.Figure:
    """Heat map of the co-occurrence matrix (log colour scale so rare pairs stay visible)."""
    fig = go.Figure(
        go.Heatmap(
            z=np.log10(matrix.to_numpy() + 1),
            x=list(matrix.columns),
            y=list(matrix.index),
            customdata=matrix.to_numpy(),
            hovertemplate="%{y} + %{x}: %{customdata} images<extra></extra>",
            colorbar={"title": "log10(images+1)"},
        )
    )
    fig.update_layout(yaxis={"autorange": "reversed"}, height=560)
    return fig


def visits_figure(visits: pd.DataFrame) -> go.Figure:
    """Bars of patients by number of visits."""
    return px.bar(visits, x="visits", y="patients", labels={"visits": "Images per patient"})


def view_figure(views: pd.DataFrame) -> go.Figure:
    """Pie chart of the view-position mix."""
    return px.pie(views, names="view", values="images", hole=0.4)


def finding_options() -> Sequence[str]:
    """Choices for the page's finding filter: every finding plus "No Finding"."""
    return (NO_FINDING, *NIH_FINDINGS)
