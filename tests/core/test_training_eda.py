"""Tests for core.training_eda on a tiny synthetic data folder and on the real manifest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from core import training_eda
from core.eda import DatasetUnavailable


def _write(
    root: Path, rel: str, value: int, size: tuple[int, int] = (8, 6), mode: str = "L"
) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color=value if mode == "L" else (value,) * 3).save(path)


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    rows = []
    for i in range(3):
        rel = f"kermany/train/NORMAL/IM-{i}.png"
        _write(tmp_path, rel, 0, mode="RGB")
        rows.append((rel, "kermany", "train", "NORMAL", "none"))
    for i in range(2):
        rel = f"kermany/test/PNEUMONIA/person{i}_bacteria.png"
        _write(tmp_path, rel, 255)
        rows.append((rel, "kermany", "test", "PNEUMONIA", "bacterial"))
    rel = "covid_radiography/train/COVID/COVID-1.png"
    _write(tmp_path, rel, 128, size=(4, 4))
    rows.append((rel, "covid_radiography", "train", "COVID", ""))
    frame = pd.DataFrame(rows, columns=["path", "dataset", "split", "label", "subtype"])
    frame["sha256"] = "0" * 64
    frame.to_csv(tmp_path / "manifest.csv", index=False)
    return tmp_path


def test_absent_folder_raises(tmp_path: Path) -> None:
    with pytest.raises(DatasetUnavailable):
        training_eda.load_manifest(tmp_path / "nowhere")


def test_manifest_classes(folder: Path) -> None:
    manifest = training_eda.load_manifest(folder)
    assert manifest["image_class"].value_counts().to_dict() == {
        "Kermany: normal": 3,
        "Kermany: bacterial pneumonia": 2,
        "COVID set: COVID-19": 1,
    }


def test_class_balance_shares_per_split(folder: Path) -> None:
    balance = training_eda.class_balance(training_eda.load_manifest(folder))
    assert balance["images"].sum() == 6
    assert balance.groupby(["source", "split"])["share"].sum().tolist() == pytest.approx([1, 1, 1])


def test_sample_is_capped_and_reproducible(folder: Path) -> None:
    manifest = training_eda.load_manifest(folder)
    first = training_eda.sample_per_class(manifest, per_class=2, seed=1)
    assert first["image_class"].value_counts().to_dict() == {
        "Kermany: normal": 2,
        "Kermany: bacterial pneumonia": 2,
        "COVID set: COVID-19": 1,
    }
    again = training_eda.sample_per_class(manifest, per_class=2, seed=1)
    assert first["path"].tolist() == again["path"].tolist()


def test_intensity_statistics(folder: Path) -> None:
    manifest = training_eda.load_manifest(folder)
    per_image, hists = training_eda.intensity_statistics(folder, manifest, bins=4)
    means = per_image.groupby("image_class")["mean"].mean()
    assert means["Kermany: normal"] == pytest.approx(0.0)
    assert means["Kermany: bacterial pneumonia"] == pytest.approx(1.0)
    assert means["COVID set: COVID-19"] == pytest.approx(128 / 255)
    assert (per_image["std"] == 0).all()
    # Each class's histogram is a distribution over 4 bins.
    assert hists.groupby("image_class")["density"].sum().to_numpy() == pytest.approx(np.ones(3))
    black = hists[hists["image_class"] == "Kermany: normal"]["density"].tolist()
    assert black == pytest.approx([1, 0, 0, 0])


def test_image_sizes(folder: Path) -> None:
    sizes = training_eda.image_sizes(folder, training_eda.load_manifest(folder))
    kermany = sizes[sizes["source"] == "Kermany (children)"]
    assert set(zip(kermany["width"], kermany["height"], kermany["mode"], strict=True)) == {
        (8, 6, "RGB"),
        (8, 6, "L"),
    }
    assert sizes["images"].sum() == 6


def test_figures_build(folder: Path) -> None:
    manifest = training_eda.load_manifest(folder)
    per_image, hists = training_eda.intensity_statistics(folder, manifest)
    assert training_eda.balance_figure(training_eda.class_balance(manifest)).data
    assert training_eda.histogram_figure(hists).data
    assert training_eda.mean_std_figure(per_image).data


def test_real_manifest_totals(shared_data: Path) -> None:
    balance = training_eda.class_balance(training_eda.load_manifest(shared_data))
    totals = balance.groupby("source")["images"].sum().to_dict()
    assert totals == {"COVID-19 set (adults)": 7130, "Kermany (children)": 5856}
