"""One real scan, every entry point: the same top finding, flagged findings and label everywhere.

The scan is imported with the command line, then the upload page analyses the same file and the
history, report and timeline pages show the stored scan. Each must agree with the rules in
``core.findings`` and ``core.labels`` applied to the stored result.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import streamlit as st

from core.findings import FINDING_LABELS, flagged_findings, top_finding
from core.labels import scan_label
from core.views import VIEW_LABELS, View
from core.words import in_sentence
from storage import accounts
from storage.scans import list_scans
from tests.pages._flows import (
    PASSWORD,
    PROJECT_ROOT,
    edit_upload_table,
    open_database,
    page,
    texts,
)
from tests.services.conftest import SHIPPED_CHECKPOINT

#: A real radiograph the shipped model flags for two findings.
FILE = "16747_3_1.jpg"

_BY_LABEL = {in_sentence(label): finding for finding, label in FINDING_LABELS.items()}


def _flagged_in_reasons(reasons: str) -> set[str]:
    """The findings a red-flag text says are at or above their threshold."""
    return {
        _BY_LABEL[in_sentence(label.strip())]
        for label in re.findall(r"([\w -]+?) is at \d+%", reasons)
    }


def test_cli_and_pages_agree_on_one_scan(tmp_path, monkeypatch, samples_dir: Path) -> None:
    monkeypatch.setenv("MODEL_CHECKPOINT", str(SHIPPED_CHECKPOINT))
    st.cache_resource.clear()
    db = open_database(tmp_path, monkeypatch)
    alice = accounts.register(db, "alice", PASSWORD)
    path = samples_dir / FILE

    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "storage.cli",
            "import-scan",
            "--user",
            "alice",
            "--date",
            "2026-05-01",
            "--view",
            "PA",
            str(path),
        ],
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert cli.returncode == 0, cli.stderr
    (scan,) = list_scans(db, alice, alice.user_id)
    result = scan.latest_result
    top = top_finding(result.probabilities, result.thresholds)
    flagged = set(flagged_findings(result.probabilities, result.thresholds))
    label = scan_label(scan)
    assert top is not None and len(flagged) >= 2, "the file must exercise the rules"
    assert cli.stdout.strip() == (
        f"stored {path} as scan {scan.id} (view PA) "
        f"(top finding {top} {result.probabilities[top]:.2f})"
    )

    upload = page("upload.py", alice).run()
    upload.file_uploader[0].set_value([(FILE, path.read_bytes(), "image/jpeg")])
    upload = upload.run()
    # A JPEG states no view: the patient picks it in the upload table.
    upload = edit_upload_table(upload, {0: {"view": VIEW_LABELS[View.PA]}})
    assert not upload.exception
    headline = next(m.value for m in upload.markdown if "strongest signal" in m.value)
    assert f"strongest signal is {in_sentence(FINDING_LABELS[top])} " in headline
    others = headline.split("also above their level: ")[1].rstrip(".*").split(", ")
    assert {_BY_LABEL[name] for name in others} | {top} == flagged

    history = page("history.py", alice).run()
    assert not history.exception
    row = history.dataframe[0].value.iloc[0]
    assert row["top finding"].startswith(f"{FINDING_LABELS[top]} (")
    assert row["needs attention"] == "yes, see below"
    assert _flagged_in_reasons(" ".join(w.value for w in history.warning)) == flagged
    assert list(history.selectbox(key="history_choice").options) == [label]

    report = page("report.py", alice).run()
    assert not report.exception
    table = report.dataframe[0].value
    assert {
        _BY_LABEL[in_sentence(f)] for f in table[table["Reached"] == "yes"]["Finding"]
    } == flagged
    assert list(report.selectbox[0].options) == [label]
    assert label in texts(report) and FILE not in texts(report), "named by date and view"

    timeline = page("timeline.py", alice).run()
    assert not timeline.exception
    assert timeline.table[0].value["Red flags"][0] == "yes, see above"
    assert _flagged_in_reasons(" ".join(w.value for w in timeline.warning)) == flagged
    assert list(timeline.selectbox(key="date_scan").options) == [label]
