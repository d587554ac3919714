"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.settings import load_settings
from storage.blobs import BlobStore, open_blob_store
from tests.s3_server import s3_prefix

# Passwords are hashed at argon2's smallest cost in the whole suite, and in the servers and
# commands it starts (they inherit the environment), except where a test of hashing itself
# asks for the production cost (:func:`production_argon2`). Production refuses this profile.
os.environ.setdefault("ARGON2_PROFILE", "test")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files holding slow tests run first, in collection order otherwise.

    ``make test`` hands whole files to the workers in this order (``--dist loadfile
    --no-loadscope-reorder``). xdist's own order, most tests first, left the browser files (a
    few tests each, the longest of all) to the end, run by one worker while the other had
    nothing left to do.
    """
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)


@pytest.fixture
def production_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hash passwords at the production argon2 cost in this test (see storage/passwords.py)."""
    monkeypatch.delenv("ARGON2_PROFILE", raising=False)


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


#: The two blob-store backends every blob-store test runs on.
BLOB_BACKENDS = ["files", "seaweedfs"]


@pytest.fixture(params=BLOB_BACKENDS)
def blob_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Settings entries for an empty blob store: a new folder, or a new prefix of the test
    bucket on SeaweedFS (``TEST_S3_URL``; skipped where unset on a developer's machine,
    failed in CI)."""
    if request.param == "files":
        yield {"BLOB_URL": (tmp_path / "blobs").as_uri()}
        return
    with s3_prefix() as env:
        yield env


@pytest.fixture
def blob_store(blob_env: dict[str, str], tmp_path: Path) -> BlobStore:
    """An empty blob store on each backend (see :func:`blob_env`)."""
    return open_blob_store(load_settings({**blob_env, "DATA_DIR": str(tmp_path / "data")}))
