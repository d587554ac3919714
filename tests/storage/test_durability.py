"""Durability: a writer killed with SIGKILL loses no acknowledged write and corrupts nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import sqlalchemy as sa

from core.settings import PROJECT_ROOT, load_settings
from storage import accounts
from storage.bootstrap import open_database
from storage.pixels import quantise
from storage.scans import list_scans, load_scan
from tests.storage.conftest import PASSWORD, env_for

_CHILD = textwrap.dedent(
    """
    import sys
    from datetime import date, timedelta

    import numpy as np

    from core.settings import load_settings
    from storage import accounts
    from storage.bootstrap import open_database
    from storage.results import ResultIn
    from storage.scans import save_scan

    db = open_database(load_settings())
    actor = accounts.authenticate(db, "writer", sys.argv[1], None)
    for i in range(200):
        pixels = np.full((16, 16), i / 200, dtype=np.float32)
        result = ResultIn({"pneumonia": i / 200}, "m", "1", "00" * 32)
        scan_id = save_scan(db, actor, pixels=pixels, metadata={}, enhancement={},
                            scan_date=date(2020, 1, 1) + timedelta(days=i),
                            filename=f"f{i}.png", result=result)
        print(f"ACK {i} {scan_id}", flush=True)
    """
)


@pytest.mark.slow
def test_sigkill_mid_write_keeps_every_acknowledged_result(tmp_path) -> None:
    env = env_for(f"sqlite:///{tmp_path / 'app.db'}", tmp_path / "data")
    db = open_database(load_settings(env))
    accounts.register(db, "writer", PASSWORD)
    db.close()

    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, PASSWORD],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **env, "PYTHONPATH": str(PROJECT_ROOT)},
        cwd=PROJECT_ROOT,
    )
    acknowledged: dict[int, int] = {}
    for line in child.stdout:
        _, index, scan_id = line.split()
        acknowledged[int(index)] = int(scan_id)
        if len(acknowledged) == 60:
            child.send_signal(signal.SIGKILL)
            break
    child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL

    db = open_database(load_settings(env))
    try:
        with db.engine.connect() as conn:
            assert conn.execute(sa.text("PRAGMA integrity_check")).scalar_one() == "ok"
        writer = accounts.authenticate(db, "writer", PASSWORD, None)
        for index, scan_id in acknowledged.items():
            scan = load_scan(db, writer, scan_id)
            assert scan.filename == f"f{index}.png"
            assert scan.results[0].probabilities == {"pneumonia": index / 200}
            expected = quantise(np.full((16, 16), index / 200, np.float32))  # stored in 16 bits
            np.testing.assert_array_equal(scan.pixels, expected)
        assert len(list_scans(db, writer, writer.user_id)) >= len(acknowledged)
    finally:
        db.close()
