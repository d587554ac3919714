"""``python -m models.predict``: one JSON line per file, exit 2 when a file cannot be read."""

import json
import subprocess
import sys
from pathlib import Path

from core.findings import FINDINGS

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def test_predict_prints_json_lines_and_exit_status(samples_dir, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    files = [samples_dir / "00000001_000.png", samples_dir / "Fake_MONOHR1.dcm", bad]
    run = subprocess.run(
        [sys.executable, "-m", "models.predict", *map(str, files)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 2
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert [line["ok"] for line in lines] == [True, True, False]
    assert set(lines[0]["probabilities"]) == set(FINDINGS)
    assert lines[0]["model_version"]
    assert lines[2]["error"] == "This file is not a PNG, JPEG or DICOM image."
    for line in lines:
        assert set(line) >= {"file", "ok", "abstained", "probabilities", "model_version", "error"}
