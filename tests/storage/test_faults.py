"""Faults during uploads: a worker killed mid-import, the object store down, PostgreSQL restarted.

Every upload either completes or ends with one plain sentence; nothing acknowledged is lost
and nothing is half-stored (no scan row without its image). An image left without a row is
only an orphan, set aside by the sweep and never deleted.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlmodel import select

from core.settings import Settings, load_settings
from core.views import View
from services.imports import ImportedScan, ScanFile, import_scans
from storage import accounts, schema
from storage.blobs import BlobStoreUnavailable
from storage.bootstrap import open_database
from storage.db import CommitUnconfirmed, Database, DatabaseUnavailable
from storage.scans import SaveUnconfirmed, load_scan
from tests.s3_server import s3_env
from tests.storage.conftest import PASSWORD, env_for

PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: The sentences an upload may end with when a service fails under it.
FAULT_SENTENCES = {
    str(BlobStoreUnavailable()),
    str(DatabaseUnavailable()),
    str(CommitUnconfirmed()),
    str(SaveUnconfirmed()),
}


def _png(seed: int, size: int = 768) -> bytes:
    """A distinct grayscale PNG (noise compresses badly, so each save takes a while)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def _upload(db: Database, actor, seed: int) -> ImportedScan:
    data = _png(seed)
    [outcome] = import_scans(
        db,
        actor,
        [ScanFile(f"film-{seed}.png", lambda: data, View.PA)],
        None,
        scan_date=date(2026, 1, 1),
    ).items
    return outcome


def _check_nothing_half_stored(db: Database, actor, acknowledged: set[int]) -> None:
    """Every acknowledged scan opens; every scan row has its image."""
    with db.transaction() as session:
        rows = session.exec(select(schema.Scan.id, schema.Scan.blob_name)).all()
    stored = {info.name for info in db.blobs.live()}
    assert acknowledged <= {scan_id for scan_id, _ in rows}
    assert {blob for _, blob in rows} <= stored, "a scan row lost its image"
    for scan_id, _ in rows:
        assert load_scan(db, actor, scan_id).pixels.size > 0


def _uploads_across(db: Database, actor, fault: Callable[[], object]) -> None:
    """Eight uploads in a thread with ``fault`` two uploads in: each completes or says so.

    Nothing acknowledged is lost and no scan row is left without its image.
    """
    outcomes: list[ImportedScan] = []
    first_two = threading.Event()

    def uploads() -> None:
        for seed in range(8):
            try:
                outcomes.append(_upload(db, actor, seed))
            except Exception as exc:  # shown by the assertion below
                outcomes.append(ImportedScan(f"film-{seed}.png", error=repr(exc)))
            if len(outcomes) == 2:
                first_two.set()

    uploader = threading.Thread(target=uploads)
    uploader.start()
    assert first_two.wait(60)
    fault()
    uploader.join(120)

    assert len(outcomes) == 8
    assert all(o.ok or o.error in FAULT_SENTENCES for o in outcomes), outcomes
    _check_nothing_half_stored(db, actor, {o.scan_id for o in outcomes if o.ok})


def _free_port(below: int = 50_000) -> int:
    # SeaweedFS also listens on port + 10000 (gRPC), so the port must leave room for that.
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port < below:
            return port


def _need(condition: bool, reason: str) -> None:
    if condition:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


# --------------------------------------------------------------- a worker killed mid-import

_WORKER = """
import sys
from datetime import date
from core.settings import load_settings
from core.views import View
from services.imports import ScanFile, import_scans
from storage import accounts
from storage.bootstrap import open_database
db = open_database(load_settings(), bootstrap_admin=False)
actor = accounts.find_actor(db, "alice")
for path in sys.argv[1:]:
    data = open(path, "rb").read()
    [item] = import_scans(db, actor, [ScanFile(path, lambda: data, View.PA)], None,
                          scan_date=date(2026, 1, 1)).items
    print(f"stored {item.scan_id}" if item.ok else f"failed {item.error}", flush=True)
"""


def test_a_worker_killed_mid_import_loses_nothing_acknowledged(
    settings_env, database, make_user, tmp_path
) -> None:
    alice = make_user("alice")
    files = []
    for seed in range(12):
        path = tmp_path / f"film-{seed}.png"
        path.write_bytes(_png(seed))
        files.append(str(path))
    worker = subprocess.Popen(
        [sys.executable, "-c", _WORKER, *files],
        cwd=PROJECT_ROOT,
        env={**os.environ, **settings_env},
        stdout=subprocess.PIPE,
        text=True,
    )
    acknowledged = set()
    assert worker.stdout is not None
    for line in worker.stdout:
        assert line.startswith("stored "), line
        acknowledged.add(int(line.split()[1]))
        if len(acknowledged) == 2:
            worker.send_signal(signal.SIGKILL)  # the next import is under way
            break
    worker.wait()
    worker.stdout.close()

    _check_nothing_half_stored(database, alice, acknowledged)


# ------------------------------------------------------------- the object store stops


@pytest.fixture
def own_seaweedfs(tmp_path: Path) -> Iterator[tuple[dict[str, str], dict[str, str]]]:
    """A SeaweedFS of this test's own (it is stopped and started again); yields its settings
    and the environment that starts it with storage/SEAWEEDFS_SETUP.sh."""
    weed = PROJECT_ROOT / ".venv" / "bin" / "weed"
    _need(weed.exists() or shutil.which("weed") is not None, "the weed binary is missing")
    script_env = {
        **os.environ,
        "SW_S3_PORT": str(_free_port()),
        "SW_MASTER_PORT": str(_free_port()),
        "SW_VOLUME_PORT": str(_free_port()),
        "SW_FILER_PORT": str(_free_port()),
        "SW_ADMIN_PORT": str(_free_port()),
        "SW_BUCKET": "faults",
        "SW_STATE_DIR": str(tmp_path / "seaweedfs"),
    }
    url = subprocess.run(
        ["bash", "storage/SEAWEEDFS_SETUP.sh"],
        cwd=PROJECT_ROOT,
        env=script_env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    try:
        yield s3_env(url, "faults"), script_env
    finally:
        _stop_weed(script_env)


def _stop_weed(script_env: dict[str, str]) -> None:
    pid_file = Path(script_env["SW_STATE_DIR"]) / "weed.pid"
    try:
        pid = int(pid_file.read_text())
        os.kill(pid, signal.SIGTERM)
    except (FileNotFoundError, ProcessLookupError):
        return
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        threading.Event().wait(0.1)


def _until_images_read_back(db: Database, timeout_s: float = 120) -> None:
    """Wait until a restarted SeaweedFS serves a stored image again.

    Its S3 port answers before its volume server serves reads (an InternalError until then,
    which the app reports as "cannot be reached right now"): the check of what was stored
    must not run in that window.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            name = next(info.name for info in db.blobs.live())
            db.blobs.read(name)
            return
        except BlobStoreUnavailable:
            if time.monotonic() > deadline:
                raise
            threading.Event().wait(0.2)


@pytest.mark.slow
def test_uploads_while_the_object_store_is_down_complete_or_say_so(own_seaweedfs, tmp_path) -> None:
    s3, script_env = own_seaweedfs
    settings = load_settings({**env_for(f"sqlite:///{tmp_path / 'app.db'}", tmp_path), **s3})
    db = open_database(settings)
    try:
        alice = accounts.operator_create_user(db, "alice", PASSWORD, "patient")

        def outage() -> None:
            _stop_weed(script_env)
            threading.Event().wait(3)  # a few seconds without the store, uploads going on
            subprocess.run(
                ["bash", "storage/SEAWEEDFS_SETUP.sh"],
                cwd=PROJECT_ROOT,
                env={**script_env, "SW_KEEP_DATA": "1"},
                check=True,
                capture_output=True,
            )
            _until_images_read_back(db)

        _uploads_across(db, alice, outage)
        assert _upload(db, alice, 100).ok  # the store is back: uploads work again
    finally:
        db.close()


# ------------------------------------------------------------------ PostgreSQL restarts


@pytest.fixture
def own_postgres() -> Iterator[tuple[str, list[str]]]:
    """A PostgreSQL server of this test's own (it is restarted); yields its URL and the
    command that restarts it. Needs root (the server runs as the postgres user)."""
    binaries = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    _need(bool(binaries) and os.geteuid() == 0, "needs root and PostgreSQL's server binaries")
    bin_dir = binaries[-1].parent
    # Not under pytest's folder: the postgres user cannot enter root's 0700 tmp_path.
    home = Path(tempfile.mkdtemp(prefix="cxr-faults-pg-"))
    shutil.chown(home, "postgres")
    port = _free_port()
    as_postgres = ["su", "postgres", "-c"]
    subprocess.run(
        [*as_postgres, f"{bin_dir}/initdb -D {home}/data -A trust -U postgres"],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {home} -c listen_addresses=127.0.0.1"
    ctl = f"{bin_dir}/pg_ctl -D {home}/data -l {home}/log -w"
    subprocess.run([*as_postgres, f"{ctl} -o '{options}' start"], check=True, capture_output=True)
    try:
        url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        yield url, [*as_postgres, f"{ctl} -m fast -o '{options}' restart"]
    finally:
        subprocess.run([*as_postgres, f"{ctl} -m immediate stop"], capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


def test_uploads_across_a_postgresql_restart_complete_or_say_so(own_postgres, tmp_path) -> None:
    url, restart = own_postgres
    settings: Settings = load_settings(env_for(url, tmp_path / "data"))
    db = open_database(settings)
    try:
        alice = accounts.operator_create_user(db, "alice", PASSWORD, "patient")
        _uploads_across(db, alice, lambda: subprocess.run(restart, check=True, capture_output=True))
        assert _upload(db, alice, 100).ok  # the pool reconnects: uploads work again
    finally:
        db.close()
