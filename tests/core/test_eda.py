"""Tests for core.eda: NIH ChestX-ray14 metadata parsing and aggregates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from core import eda


def _raw(rows: list[tuple[str, str, int, int, int, str, str]]) -> pd.DataFrame:
    """A frame with the publisher's column names.

    Columns: image, labels, follow-up, patient, age, sex, view.
    """
    return pd.DataFrame(
        rows,
        columns=[
            "Image Index",
            "Finding Labels",
            "Follow-up #",
            "Patient ID",
            "Patient Age",
            "Patient Gender",
            "View Position",
        ],
    )


@pytest.fixture()
def small() -> pd.DataFrame:
    return eda.parse_nih_metadata(
        _raw(
            [
                ("1_000.png", "No Finding", 0, 1, 30, "M", "PA"),
                ("1_001.png", "Pneumonia", 1, 1, 31, "M", "AP"),
                ("2_000.png", "Pneumothorax|Effusion", 0, 2, 65, "F", "PA"),
                ("3_000.png", "Effusion|Pneumonia|Mass", 0, 3, 412, "F", "AP"),
                ("4_000.png", "Hernia", 0, 4, 12, "F", "PA"),
                ("4_001.png", "Effusion", 1, 4, 13, "F", "PA"),
                ("4_002.png", "No Finding", 2, 4, 14, "F", "PA"),
            ]
        )
    )


def test_parse_sets_one_flag_per_finding_without_substring_confusion(small: pd.DataFrame) -> None:
    # "Pneumothorax" must not count as "Pneumonia".
    assert small["Pneumonia"].tolist() == [False, True, False, True, False, False, False]
    assert small["Pneumothorax"].tolist() == [False, False, True, False, False, False, False]
    assert small["n_findings"].tolist() == [0, 1, 2, 3, 1, 1, 0]


def test_parse_rejects_missing_columns() -> None:
    with pytest.raises(KeyError):
        eda.parse_nih_metadata(pd.DataFrame({"Image Index": ["a.png"]}))


def test_impossible_ages_are_excluded_and_counted(small: pd.DataFrame) -> None:
    kept, excluded = eda.exclude_impossible_ages(small)
    assert excluded == 1
    assert len(kept) == 6
    assert kept["age"].max() <= eda.MAX_PLAUSIBLE_AGE


def test_age_exactly_at_limit_is_kept(small: pd.DataFrame) -> None:
    kept, excluded = eda.exclude_impossible_ages(small, max_age=65)
    assert excluded == 1
    assert 65 in kept["age"].tolist()


def test_filters_combine(small: pd.DataFrame) -> None:
    picked = eda.apply_filters(
        small, eda.NihFilters(sexes=("F",), age_range=(10, 70), views=("PA",), finding="Effusion")
    )
    assert picked["image"].tolist() == ["2_000.png", "4_001.png"]
    none = eda.apply_filters(small, eda.NihFilters(finding=eda.NO_FINDING))
    assert none["image"].tolist() == ["1_000.png", "4_002.png"]
    assert len(eda.apply_filters(small, eda.NihFilters())) == len(small)


def test_summary_counts_patients_once(small: pd.DataFrame) -> None:
    assert eda.summary(small) == {"images": 7, "patients": 4, "with_findings": 5}


def test_cooccurrence_is_symmetric_with_counts_on_diagonal(small: pd.DataFrame) -> None:
    matrix = eda.cooccurrence(small)
    assert matrix.shape == (14, 14)
    np.testing.assert_array_equal(matrix.to_numpy(), matrix.to_numpy().T)
    assert matrix.loc["Effusion", "Effusion"] == 3
    assert matrix.loc["Effusion", "Pneumonia"] == 1
    assert matrix.loc["Pneumothorax", "Effusion"] == 1
    assert matrix.loc["Hernia", "Effusion"] == 0


def test_findings_per_image_separates_single_and_multiple(small: pd.DataFrame) -> None:
    counts = eda.findings_per_image(small).set_index("n_findings")
    assert counts.loc[0, "kind"] == "No finding"
    assert counts.loc[1, "kind"] == "Single finding"
    assert counts.loc[3, "kind"] == "Multiple findings"
    assert counts["images"].sum() == 7


def test_visits_per_patient_bands(small: pd.DataFrame) -> None:
    visits = eda.visits_per_patient(small).set_index("visits")["patients"]
    assert visits["1"] == 2
    assert visits["2"] == 1
    assert visits["3-5"] == 1
    assert visits.sum() == 4


def test_view_mix_shares_sum_to_one(small: pd.DataFrame) -> None:
    views = eda.view_mix(small).set_index("view")
    assert views.loc["PA", "images"] == 5
    assert views["share"].sum() == pytest.approx(1.0)


def test_age_bands() -> None:
    bands = eda.age_band(pd.Series([0, 17, 18, 59, 60, 100])).astype(str).tolist()
    assert bands == ["0-17", "0-17", "18-39", "40-59", "60-79", "80+"]


def test_findings_by_band_and_sex_shares(small: pd.DataFrame) -> None:
    kept, _ = eda.exclude_impossible_ages(small)
    long = eda.findings_by_band_and_sex(kept)
    row = long[(long["age_band"] == "0-17") & (long["sex"] == "F") & (long["finding"] == "Hernia")]
    # Three images of girls aged 12-14, one with hernia.
    assert row["images"].item() == 1
    assert row["share"].item() == pytest.approx(1 / 3)


def test_age_distribution_preserves_total(small: pd.DataFrame) -> None:
    assert eda.age_distribution(small)["images"].sum() == 7


def test_figures_build(small: pd.DataFrame) -> None:
    figures = [
        eda.age_figure(eda.age_distribution(small)),
        eda.band_figure(eda.findings_by_band_and_sex(small)),
        eda.per_image_figure(eda.findings_per_image(small)),
        eda.cooccurrence_figure(eda.cooccurrence(small)),
        eda.visits_figure(eda.visits_per_patient(small)),
        eda.view_figure(eda.view_mix(small)),
    ]
    assert all(isinstance(fig, go.Figure) and fig.data for fig in figures)


def test_shipped_metadata_matches_published_totals() -> None:
    frame = eda.load_nih_metadata()
    assert eda.summary(frame)["images"] == 112_120
    assert eda.summary(frame)["patients"] == 30_805


def test_missing_file_raises_dataset_unavailable(tmp_path) -> None:
    with pytest.raises(eda.DatasetUnavailable):
        eda.load_nih_metadata(tmp_path / "absent.csv.gz")
