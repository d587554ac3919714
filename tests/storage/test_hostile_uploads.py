"""Every hostile file of the decoder suite, sent through the real import pipeline.

Each one must leave nothing behind: no row and no blob.
"""

from __future__ import annotations

import contextlib
import io
import time
from datetime import date

import sqlalchemy as sa

from core.imaging import ExcessiveCompression, TooManyPixels
from core.views import View
from services.imports import ScanFile, import_scans
from storage import cli
from storage.blobs import open_blob_store
from storage.schema import Scan
from tests.core.test_hostile_inputs import _REFUSED, _jpeg_with_frame_size

#: Names an attacker might choose; the name is never used as a path inside the store.
_HOSTILE_NAMES = (
    "..%2F..%2Fetc%2Fpasswd.png",
    "scan.png.exe",
    "CON.dcm",
    "<script>.jpg",
    "a" * 200 + ".png",
)


def test_import_of_every_hostile_file_stores_no_row_and_no_blob(
    settings_env, settings, make_user, tmp_path, monkeypatch
):
    for name, value in settings_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MODEL_CHECKPOINT", str(tmp_path / "missing.pt"))
    make_user("mallory")
    folder = tmp_path / "uploads"
    folder.mkdir()
    files = []
    for index, (case, builder, _) in enumerate(_REFUSED):
        path = folder / f"{index:02d}-{_HOSTILE_NAMES[index % len(_HOSTILE_NAMES)]}-{case}"
        path.write_bytes(builder())
        files.append(str(path))
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        status = cli.main(["import-scan", "--user", "mallory", "--date", "2026-01-01", *files])
    lines = output.getvalue().splitlines()
    assert status == 2
    assert len(lines) == len(_REFUSED) >= 30
    assert all(line.startswith("FAILED ") for line in lines)
    engine = sa.create_engine(settings.database_url)
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(Scan)).scalar_one() == 0
    engine.dispose()
    assert not list(open_blob_store(settings).list_objects())


def test_tiny_jpeg_claiming_7000x7000_is_refused_fast_by_the_import_service(database, make_user):
    mallory = make_user("mallory")
    files = [
        ScanFile("film.jpg", lambda: _jpeg_with_frame_size(7_000, 7_000), View.PA),
        ScanFile("film2.jpg", lambda: _jpeg_with_frame_size(4_000, 4_000), View.PA),
    ]

    started = time.perf_counter()
    report = import_scans(database, mallory, files, None, scan_date=date(2026, 1, 1))

    assert time.perf_counter() - started < 1.0
    assert [item.error for item in report.items] == [
        str(TooManyPixels()),
        str(ExcessiveCompression()),
    ]
    with database.transaction() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Scan)) == 0
    assert not list(database.blobs.list_objects())
