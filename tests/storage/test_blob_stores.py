"""The blob store on local files and on SeaweedFS (S3): same behaviour, same quarantine rule.

Tests taking ``blob_store``/``blob_env`` run on both stores; tests taking ``database`` run on
SQLite + files and on PostgreSQL + SeaweedFS (see tests/storage/conftest.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlmodel import func, select

from core.errors import UserError
from core.settings import load_settings
from core.views import View
from services import maintenance
from storage import bootstrap, quarantine, schema
from storage.blobs import ANCHORS, QUARANTINE, BlobStore, BlobStoreUnavailable, S3BlobStore
from storage.bootstrap import StorageMismatch, open_database
from storage.scans import load_scan, save_scan
from tests.s3_server import bucket_and_prefix, raw_client
from tests.storage._factories import sample_pixels, save_sample_scan
from tests.storage.conftest import empty_backend


class _TwoDaysLater(datetime):
    """The clock of a sweep run two days from now (S3 servers set their own object times)."""

    @classmethod
    def now(cls, tz=None):  # type: ignore[override]
        return datetime.now(tz) + timedelta(days=2)


def _plant(env: dict[str, str], key: str, data: bytes) -> None:
    """Put an object the app did not write (a foreign file, a left-over ``.tmp``)."""
    url = urlsplit(env["BLOB_URL"])
    if url.scheme == "file":
        path = Path(url.path) / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return
    bucket, prefix = bucket_and_prefix(env)
    raw_client(env).put_object(Bucket=bucket, Key=prefix + key, Body=data)


def _keys(store: BlobStore, prefix: str = "") -> list[str]:
    return [info.key for info in store.list_objects(prefix)]


def test_write_read_size_list_delete(blob_store: BlobStore) -> None:
    first, second = sorted([BlobStore.new_name(), BlobStore.new_name()])
    blob_store.write(second, b"b" * 10)
    blob_store.write(first, b"a" * 20)

    assert blob_store.read(first) == b"a" * 20
    assert blob_store.size(first) == 20 and blob_store.size(BlobStore.new_name()) == 0
    assert _keys(blob_store) == [first, second]
    assert [info.size for info in blob_store.live()] == [20, 10]
    blob_store.delete(first)
    blob_store.delete(first)  # deleting twice is harmless
    assert _keys(blob_store) == [second]
    with pytest.raises(FileNotFoundError):
        blob_store.read(first)


@pytest.mark.parametrize("name", ["../escape", "/etc/passwd", "g" * 32, "quarantine/../x"])
def test_names_outside_the_stores_shapes_are_refused(blob_store: BlobStore, name: str) -> None:
    with pytest.raises(ValueError):
        blob_store.write(name, b"x")
    with pytest.raises(ValueError):
        blob_store.delete(name)


def test_foreign_objects_are_neither_listed_nor_touched(
    blob_store: BlobStore, blob_env: dict[str, str]
) -> None:
    _plant(blob_env, "README", b"not ours")
    _plant(blob_env, "backup/" + BlobStore.new_name(), b"not ours either")
    assert _keys(blob_store) == []
    with pytest.raises(ValueError):
        blob_store.delete("README")


def test_move_never_overwrites_and_reports_a_missing_source(blob_store: BlobStore) -> None:
    name, other = BlobStore.new_name(), BlobStore.new_name()
    blob_store.write(name, b"kept")
    blob_store.write(other, b"also kept")
    batch = "20260101T000000Z-abcdef"
    target = quarantine.quarantine_key(batch, name)
    blob_store.move(name, target)
    assert _keys(blob_store, QUARANTINE + "/") == [target]

    blob_store.write(name, b"newer")
    with pytest.raises(FileExistsError):
        blob_store.move(name, target)
    assert blob_store.read(name) == b"newer"
    with pytest.raises(FileNotFoundError):
        blob_store.move(BlobStore.new_name(), quarantine.quarantine_key(batch, other))


def test_sweep_sets_aside_only_old_unreferenced_blobs_and_deletes_nothing(
    blob_store: BlobStore, blob_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    used, orphan = BlobStore.new_name(), BlobStore.new_name()
    blob_store.write(used, b"u" * 64)
    blob_store.write(orphan, b"o" * 64)
    _plant(blob_env, f"{BlobStore.new_name()}.tmp", b"t")
    _plant(blob_env, "README", b"foreign")

    assert quarantine.sweep(blob_store, lambda: [used]) == []  # all younger than 24 h

    monkeypatch.setattr(quarantine, "datetime", _TwoDaysLater)
    moved = quarantine.sweep(blob_store, lambda: [used])
    assert orphan in {m.name for m in moved} and len(moved) == 2  # the orphan and the .tmp
    assert [info.name for info in blob_store.live()] == [used]
    [entry] = [e for e in quarantine.entries(blob_store) if e.name == orphan]
    assert entry.size == 64

    quarantine.restore(blob_store, entry)
    assert blob_store.read(orphan) == b"o" * 64
    assert len(quarantine.entries(blob_store)) == 1  # the .tmp stays until purged
    quarantine.purge(blob_store, quarantine.entries(blob_store)[0])
    assert quarantine.entries(blob_store) == []
    assert sorted(info.name for info in blob_store.live()) == sorted([used, orphan])


def test_sweep_spares_blobs_an_open_transaction_may_still_commit(
    blob_store: BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another app server wrote this blob inside a transaction that is still open."""
    opened = datetime.now(UTC) - timedelta(minutes=5)
    pending = BlobStore.new_name()
    blob_store.write(pending, b"p")
    monkeypatch.setattr(quarantine, "datetime", _TwoDaysLater)

    assert quarantine.sweep(blob_store, list, oldest_open=lambda: opened) == []
    assert [info.name for info in blob_store.live()] == [pending]


def test_stored_objects_hold_only_ciphertext(database, make_user) -> None:
    alice = make_user("alice")
    save_sample_scan(database, alice, filename="alice_smith_chest.png")
    [info] = list(database.blobs.live())
    stored = database.blobs.read(info.name)
    assert b"\x89PNG" not in stored and b"alice" not in stored and b"IHDR" not in stored


def test_start_refuses_an_empty_database_beside_stored_images(
    settings_env, database, make_user, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wrong DATABASE_URL must not make every stored image look like an orphan."""
    # A bucket's objects cannot be aged, so every image counts as settled here; the window
    # itself is tested on files (tests/storage/test_bootstrap.py).
    monkeypatch.setattr(bootstrap, "UPLOAD_IN_FLIGHT", timedelta(0))
    alice = make_user("alice")
    save_sample_scan(database, alice, seed=1)
    before = {info.key: database.blobs.read(info.name) for info in database.blobs.live()}
    database.close()
    kind = "sqlite" if settings_env["DATABASE_URL"].startswith("sqlite") else "postgres"
    with (
        empty_backend(kind, database.settings.data_dir.parent / "other") as wrong_url,
        pytest.raises(StorageMismatch) as refused,
    ):
        open_database(load_settings(dict(settings_env, DATABASE_URL=wrong_url)))
    assert "1 image," in str(refused.value) and database.blobs.location in str(refused.value)
    assert {info.key: database.blobs.read(info.name) for info in database.blobs.live()} == before


def test_start_quarantines_old_orphans_and_the_commands_restore_them(
    settings, database, make_user, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = make_user("alice")
    scan_id = save_sample_scan(database, alice)
    orphan = BlobStore.new_name()
    database.blobs.write(orphan, b"o" * 64)
    database.close()

    monkeypatch.setattr(quarantine, "datetime", _TwoDaysLater)
    again = open_database(settings)
    try:
        assert [e.name for e in maintenance.list_quarantine(again)] == [orphan]
        assert load_scan(again, alice, scan_id).filename == "chest_front.png"
        maintenance.restore_quarantine(again, orphan, operator="(test)")
        assert again.blobs.read(orphan) == b"o" * 64
        assert maintenance.list_quarantine(again) == []
    finally:
        again.close()


def test_an_unreachable_bucket_is_refused_at_start_with_a_sentence(settings_env) -> None:
    env = {
        **settings_env,
        "BLOB_URL": "s3://nowhere",
        "S3_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_ACCESS_KEY_ID": "k",
        "AWS_SECRET_ACCESS_KEY": "s",
        "AWS_REGION": "us-east-1",
    }
    with pytest.raises(BlobStoreUnavailable) as refused:
        open_database(load_settings(env))
    assert "s3://nowhere" in str(refused.value) and "S3_ENDPOINT_URL" in str(refused.value)


def test_a_save_while_the_store_is_down_says_so_and_stores_nothing(database, make_user) -> None:
    import boto3
    from botocore.config import Config

    alice = make_user("alice")
    down = boto3.client(
        "s3",
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="k",
        aws_secret_access_key="s",
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}),
    )
    database.blobs = S3BlobStore(down, "cxr")
    with pytest.raises(BlobStoreUnavailable) as refused:
        save_scan(
            database,
            alice,
            pixels=sample_pixels(1),
            metadata={"modality": "png", "width": 32, "height": 32},
            enhancement={},
            scan_date=datetime(2026, 1, 1).date(),
            filename="chest.png",
            result=None,
            view=View.PA,
        )
    assert isinstance(refused.value, UserError)
    assert "nothing was saved" in str(refused.value)
    with database.transaction() as session:
        assert session.exec(select(func.count()).select_from(schema.Scan)).one() == 0


def test_anchors_are_written_once_and_kept_apart_from_the_images(blob_store: BlobStore) -> None:
    folder = f"{ANCHORS}/{'ab' * 8}"
    image = BlobStore.new_name()
    blob_store.write(image, b"i" * 8)
    blob_store.write_anchor(f"{folder}/{2:020d}", b"second")
    blob_store.write_anchor(f"{folder}/{1:020d}", b"first")
    with pytest.raises(FileExistsError):
        blob_store.write_anchor(f"{folder}/{2:020d}", b"replaced")

    assert blob_store.read_anchor(f"{folder}/{2:020d}") == b"second"
    assert blob_store.read_anchor(f"{folder}/{3:020d}") is None
    assert blob_store.anchors_after(folder, f"{folder}/{0:020d}") == [
        f"{folder}/{1:020d}",
        f"{folder}/{2:020d}",
    ]
    assert blob_store.anchors_after(folder, f"{folder}/{1:020d}") == [f"{folder}/{2:020d}"]
    # The sweep, the quota and the operator's commands never see an anchor.
    assert _keys(blob_store) == [image] and [info.key for info in blob_store.live()] == [image]
    for name in (f"{folder}/../x", f"{ANCHORS}/x/{1:020d}", image):
        with pytest.raises(ValueError):
            blob_store.write_anchor(name, b"x")
    with pytest.raises(ValueError):
        blob_store.delete(f"{folder}/{1:020d}")
