"""Fixtures shared by the whole suite."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import load_settings


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real radiographs beside the project; skips only where the folder is absent."""
    path = load_settings().shared_data_dir
    if not (path / "manifest.csv").is_file():
        pytest.skip(f"real data folder {path} is absent (set SHARED_DATA_DIR to use it)")
    return path


@pytest.fixture(scope="session")
def samples_dir(shared_data: Path) -> Path:
    """Real upload fixtures: NIH PNGs, JPEGs and two DICOMs."""
    return shared_data / "samples"
