"""Tests for storage.scans: saving, listing, loading, editing and deleting scans."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import date, timedelta

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func
from sqlmodel import select

from core.imaging import decode_scan
from core.settings import load_settings
from core.views import View
from storage.accounts import register
from storage.bootstrap import open_database
from storage.db import Database
from storage.notes import add_note, list_notes
from storage.policy import AccessDenied
from storage.scans import (
    RecordNotFound,
    StorageQuotaExceeded,
    UploadRateExceeded,
    add_results,
    delete_scan,
    list_scans,
    load_scan,
    save_scan,
    update_scan_date,
    update_scan_view,
)
from storage.schema import RateEvent, Scan
from tests.storage._factories import sample_pixels, sample_result, save_sample_scan
from tests.storage.conftest import PASSWORD


def test_saved_scan_reads_back_identically(database, make_user) -> None:
    alice = make_user("alice")
    scan_id = save_sample_scan(database, alice, seed=3)

    loaded = load_scan(database, alice, scan_id)

    np.testing.assert_array_equal(loaded.pixels, sample_pixels(3))
    assert loaded.pixels.dtype == np.float32
    assert loaded.scan_date == date(2024, 3, 14)
    assert loaded.filename == "chest_front.png"
    assert loaded.metadata["patient_age"] == 52
    assert loaded.enhancement == {"clahe": True, "clip_limit": 0.01}
    assert len(loaded.results) == 1
    result = loaded.results[0]
    assert result.probabilities == sample_result().probabilities
    assert result.model_version == "1.0.0"
    assert result.thresholds["covid19"] == 0.5


def test_list_scans_sorted_by_scan_date_with_results_oldest_first(database, make_user) -> None:
    alice = make_user("alice")
    late = save_sample_scan(database, alice, scan_date=date(2024, 6, 1))
    early = save_sample_scan(database, alice, scan_date=date(2023, 1, 1), with_result=False)
    add_results(database, alice, [(late, sample_result(0.4, version="2.0.0"))])

    scans = list_scans(database, alice, alice.user_id)

    assert [s.id for s in scans] == [early, late]
    assert scans[0].results == []
    assert [r.model_version for r in scans[1].results] == ["1.0.0", "2.0.0"]
    assert scans[1].latest_result.probabilities["pneumonia"] == 0.4


def test_update_scan_date_changes_ordering(database, make_user) -> None:
    alice = make_user("alice")
    first = save_sample_scan(database, alice, scan_date=date(2024, 1, 1))
    second = save_sample_scan(database, alice, scan_date=date(2024, 2, 1))
    update_scan_date(database, alice, first, date(2024, 3, 1))
    assert [s.id for s in list_scans(database, alice, alice.user_id)] == [second, first]


def test_a_confirmed_view_doubt_is_kept_with_the_scan_and_follows_a_view_change(
    database, make_user
) -> None:
    alice = make_user("alice")
    doubt = "This image does not look like a frontal film."
    scan_id = save_scan(
        database,
        alice,
        pixels=sample_pixels(1),
        metadata={},
        enhancement={},
        scan_date=date(2024, 3, 14),
        filename="side.png",
        view=View.PA,
        view_doubt=doubt,
        result=sample_result(),
    )
    plain = save_sample_scan(database, alice, scan_date=date(2024, 3, 15))
    by_id = {scan.id: scan for scan in list_scans(database, alice, alice.user_id)}
    assert (by_id[scan_id].view, by_id[scan_id].view_doubt) == (View.PA, doubt)
    assert by_id[plain].view_doubt is None
    assert load_scan(database, alice, scan_id).view_doubt == doubt

    # A change of view replaces the doubt with the check's word on the new choice.
    update_scan_view(database, alice, scan_id, View.LATERAL)
    changed = load_scan(database, alice, scan_id)
    assert (changed.view, changed.view_doubt) == (View.LATERAL, None)
    assert len(changed.results) == 1, "results are kept as they are"
    update_scan_view(database, alice, scan_id, View.AP, doubt)
    (again,) = [s for s in list_scans(database, alice, alice.user_id) if s.id == scan_id]
    assert (again.view, again.view_doubt) == (View.AP, doubt)


def test_delete_scan_removes_rows_blob_and_notes(database, make_user) -> None:
    alice = make_user("alice")
    scan_id = save_sample_scan(database, alice)
    add_note(database, alice, scan_id, "follow up in two weeks")
    blobs_before = list(database.blobs.list_objects())
    assert len(blobs_before) == 1

    delete_scan(database, alice, scan_id)

    assert list_scans(database, alice, alice.user_id) == []
    assert list(database.blobs.list_objects()) == []
    with pytest.raises(RecordNotFound):
        load_scan(database, alice, scan_id)


def test_save_scan_refuses_non_image(database, make_user) -> None:
    alice = make_user("alice")
    with pytest.raises(ValueError):
        save_scan(
            database,
            alice,
            pixels=np.zeros(5),
            metadata={},
            enhancement={},
            scan_date=date(2024, 1, 1),
            filename="a.png",
        )


def test_other_patient_scan_is_denied_not_leaked(database, make_user) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    scan_id = save_sample_scan(database, alice)
    with pytest.raises(AccessDenied):
        load_scan(database, bob, scan_id)
    assert list_scans(database, bob, bob.user_id) == []


def test_add_results_in_bulk_only_for_own_scans(database, make_user) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    first = save_sample_scan(database, alice, with_result=False)
    second = save_sample_scan(database, alice, with_result=False, seed=1)
    ids = add_results(
        database,
        alice,
        [(first, sample_result(0.1)), (second, sample_result(0.2)), (first, sample_result(0.3))],
    )
    assert len(ids) == 3
    by_id = {s.id: s for s in list_scans(database, alice, alice.user_id)}
    assert [r.probabilities["pneumonia"] for r in by_id[first].results] == [0.1, 0.3]
    with pytest.raises(AccessDenied):
        add_results(database, bob, [(first, sample_result())])


# --------------------------------------------------------------------------- stored image format


def _save(database, actor, pixels: np.ndarray, metadata: dict | None = None) -> int:
    return save_scan(
        database,
        actor,
        pixels=pixels,
        metadata=metadata or {},
        enhancement={},
        scan_date=date(2024, 1, 1),
        filename="film.png",
    )


def _blob_size(database, scan_id: int) -> int:
    with database.transaction() as session:
        blob_name = session.get(Scan, scan_id).blob_name
    return len(database.blobs.read(blob_name))


def test_pixels_are_kept_to_within_half_a_16_bit_step(database, make_user) -> None:
    alice = make_user("alice")
    pixels = np.random.default_rng(7).random((40, 30), dtype=np.float32)

    loaded = load_scan(database, alice, _save(database, alice, pixels))

    np.testing.assert_allclose(loaded.pixels, pixels, rtol=0, atol=0.5 / 65535)


def test_8_bit_upload_reads_back_exactly(database, make_user) -> None:
    alice = make_user("alice")
    gray = np.random.default_rng(0).integers(0, 256, (300, 200), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(gray).save(buffer, format="PNG")
    decoded = decode_scan(buffer.getvalue())

    loaded = load_scan(database, alice, _save(database, alice, decoded.pixels))

    np.testing.assert_array_equal(loaded.pixels, decoded.pixels)


def test_stored_image_is_compressed_far_below_float32(database, make_user, samples_dir) -> None:
    alice = make_user("alice")
    film = Image.open(samples_dir / "00000001_000.png").convert("L").resize((1024, 1024))
    pixels = decode_scan(_png_bytes(film)).pixels

    stored = _blob_size(database, _save(database, alice, pixels))

    # Raw float32 was 4 MiB; a real film keeps well under a quarter of that.
    assert stored < pixels.nbytes / 4


def _png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_large_image_is_stored_at_working_resolution_with_its_scale(database, make_user) -> None:
    alice = make_user("alice")
    # Stripes one pixel wide: without anti-aliasing a downscale would alias them into bands.
    stripes = np.tile(np.array([0.0, 1.0], dtype=np.float32), (3000, 2000))
    metadata = {"width": 4000, "height": 3000, "pixel_spacing": [0.1, 0.1], "modality": "DX"}

    loaded = load_scan(database, alice, _save(database, alice, stripes, metadata))

    assert loaded.pixels.shape == (1536, 2048)
    assert abs(float(loaded.pixels.mean()) - 0.5) < 0.01
    assert float(loaded.pixels.std()) < 0.05
    meta = loaded.metadata
    assert (meta["width"], meta["height"]) == (2048, 1536)
    assert (meta["original_width"], meta["original_height"]) == (4000, 3000)
    assert meta["storage_scale"] == pytest.approx(2048 / 4000)
    assert meta["pixel_spacing"] == pytest.approx([0.1 * 3000 / 1536, 0.1 * 4000 / 2048])
    assert meta["modality"] == "DX"


def test_marks_are_in_stored_image_coordinates(database, make_user) -> None:
    alice = make_user("alice")
    scan_id = _save(database, alice, np.full((3000, 4000), 0.5, dtype=np.float32))
    height, width = load_scan(database, alice, scan_id).pixels.shape

    corner = {"x0": width - 10.0, "y0": height - 10.0, "x1": float(width), "y1": float(height)}
    add_note(database, alice, scan_id, "lower right corner", corner)

    assert list_notes(database, alice, scan_id)[0].annotation == corner


def test_scan_stored_as_float32_before_the_png_format_still_loads(database, make_user) -> None:
    alice = make_user("alice")
    pixels = sample_pixels(5)
    scan_id = _save(database, alice, pixels)
    # Rewrite its blob as the app did before: a sealed float32 .npy array.
    legacy = io.BytesIO()
    np.save(legacy, pixels, allow_pickle=False)
    with database.transaction() as session:
        scan = session.get(Scan, scan_id)
        sealer = database.keyring.sealer(session, alice.user_id)
        database.blobs.write(
            scan.blob_name, sealer.seal("blob", scan_id, scan.key_version, legacy.getvalue())
        )

    loaded = load_scan(database, alice, scan_id)

    np.testing.assert_array_equal(loaded.pixels, pixels)
    assert loaded.pixels.dtype == np.float32


# --------------------------------------------------------------------------- abuse limits


@pytest.fixture
def limited(settings_env) -> Iterator[Database]:
    """A database allowing 3 uploads an hour and 1 MB of images per patient."""
    db = open_database(
        load_settings({**settings_env, "UPLOADS_PER_HOUR": "3", "USER_QUOTA_MB": "1"})
    )
    yield db
    db.close()


def _stored(db: Database) -> tuple[int, int]:
    """(scan rows, stored blobs) in the whole database."""
    with db.transaction() as session:
        rows = session.exec(select(func.count()).select_from(Scan)).one()
    return rows, len(list(db.blobs.list_objects()))


def test_upload_rate_is_refused_and_stores_nothing(limited) -> None:
    mallory = register(limited, "mallory", PASSWORD)
    first = [_save(limited, mallory, sample_pixels(i)) for i in range(3)]

    with pytest.raises(UploadRateExceeded) as caught:
        _save(limited, mallory, sample_pixels(3))

    assert str(caught.value) == (
        "You have uploaded 3 scans in the last hour, the most the app accepts; try again later."
    )
    assert _stored(limited) == (3, 3)
    # Deleting a scan does not give its upload back.
    delete_scan(limited, mallory, first[0])
    with pytest.raises(UploadRateExceeded):
        _save(limited, mallory, sample_pixels(4))
    assert _stored(limited) == (2, 2)
    # Another patient has an hour of their own.
    _save(limited, register(limited, "alice", PASSWORD), sample_pixels(5))


def test_upload_rate_counts_only_the_last_hour(limited) -> None:
    mallory = register(limited, "mallory", PASSWORD)
    for i in range(3):
        _save(limited, mallory, sample_pixels(i))
    with limited.transaction() as session:
        for event in session.exec(select(RateEvent)).all():
            event.created_at -= timedelta(minutes=61)
            session.add(event)

    _save(limited, mallory, sample_pixels(3))

    assert _stored(limited) == (4, 4)


def test_the_quota_reads_recorded_sizes_and_records_those_of_older_rows(limited) -> None:
    mallory = register(limited, "mallory", PASSWORD)
    noise = np.random.default_rng(0).random((600, 600), dtype=np.float32)
    first = _save(limited, mallory, noise)
    size = _blob_size(limited, first)
    with limited.transaction() as session:
        row = session.get(Scan, first)
        assert row.blob_bytes == size, "recorded at the save"
        row.blob_bytes = None  # as stored before sizes were recorded (migration step 12)
        session.add(row)
    _save(limited, mallory, sample_pixels(1))  # small: fits, and its save records the size
    with limited.transaction() as session:
        assert session.get(Scan, first).blob_bytes == size, "measured once, then recorded"
        blob_name = session.get(Scan, first).blob_name
    # The recorded size is what counts from now on: the blob store is no longer asked (with
    # S3, one request per earlier scan on every upload).
    limited.blobs.delete(blob_name)
    with pytest.raises(StorageQuotaExceeded):
        _save(limited, mallory, noise)


def test_upload_rate_holds_across_processes(limited, settings_env) -> None:
    mallory = register(limited, "mallory", PASSWORD)
    other = open_database(
        load_settings({**settings_env, "UPLOADS_PER_HOUR": "3", "USER_QUOTA_MB": "1"})
    )
    try:
        _save(limited, mallory, sample_pixels(0))
        _save(other, mallory, sample_pixels(1))
        _save(limited, mallory, sample_pixels(2))
        with pytest.raises(UploadRateExceeded):
            _save(other, mallory, sample_pixels(3))
    finally:
        other.close()
    assert _stored(limited) == (3, 3)


def test_storage_quota_is_refused_and_stores_nothing(limited) -> None:
    mallory = register(limited, "mallory", PASSWORD)
    # Noise does not compress: about 720 KB stored, so a second one passes 1 MB.
    noise = np.random.default_rng(0).random((600, 600), dtype=np.float32)
    first = _save(limited, mallory, noise)

    with pytest.raises(StorageQuotaExceeded) as caught:
        _save(limited, mallory, noise)

    assert str(caught.value) == (
        "Your scans already take 1 MB of the 1 MB each account may keep; "
        "delete some older scans before uploading another one."
    )
    assert _stored(limited) == (1, 1)
    with limited.transaction() as session:
        uploads = select(func.count()).where(RateEvent.kind == "upload")
        assert session.exec(uploads).one() == 1  # the refused upload was not counted
    # Deleting frees the space.
    delete_scan(limited, mallory, first)
    _save(limited, mallory, noise)
    assert _stored(limited) == (1, 1)
