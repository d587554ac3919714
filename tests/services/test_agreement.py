"""One real scan, every entry point: the same headline, flagged findings and label everywhere.

The scan is imported with the command line, then the upload page analyses the same file and the
history, report and timeline pages show the stored scan. Each must show the scan's one reading
(``services.records.read_patient``).
"""

from __future__ import annotations

import re
from pathlib import Path

import streamlit as st

from core.findings import FINDING_LABELS
from core.views import VIEW_LABELS, View
from core.words import in_sentence
from services.records import read_patient
from storage import accounts
from tests.pages._flows import (
    PASSWORD,
    edit_upload_table,
    open_database,
    page,
    scan_uploader,
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


def test_cli_and_pages_agree_on_one_scan(cli, tmp_path, monkeypatch, samples_dir: Path) -> None:
    monkeypatch.setenv("MODEL_CHECKPOINT", str(SHIPPED_CHECKPOINT))
    st.cache_resource.clear()
    db = open_database(tmp_path, monkeypatch)
    alice = accounts.register(db, "alice", PASSWORD)
    path = samples_dir / FILE

    imported = cli(
        {}, "import-scan", "--user", "alice", "--date", "2026-05-01", "--view", "PA", str(path)
    )
    assert imported.returncode == 0, imported.stderr
    record = read_patient(db, alice, alice.user_id, None)
    (reading,) = record.readings
    flagged = {item.finding for item in reading.findings if item.flagged}
    assert len(flagged) >= 2, "the file must exercise the rules"
    label = reading.label
    # The command line prints the reading's headline, as every page does.
    assert (
        imported.stdout.strip()
        == f"stored {path} as scan {reading.scan_id} (view PA): {reading.headline}"
    )

    upload = page("upload.py", alice).run()
    scan_uploader(upload).set_value([(FILE, path.read_bytes(), "image/jpeg")])
    upload = upload.run()
    # A JPEG states no view: the patient picks it in the upload table.
    upload = edit_upload_table(upload, {0: {"view": VIEW_LABELS[View.PA], "date": "2026-05-01"}})
    assert not upload.exception
    assert f"**{reading.headline}**" in [m.value for m in upload.markdown]

    history = page("history.py", alice).run()
    assert not history.exception
    row = history.table[0].value.iloc[0]
    assert row["Reading"] == reading.headline
    assert _flagged_in_reasons(row["Needs attention"]) == flagged
    assert list(history.selectbox(key="history_choice").options) == [label]

    report = page("report.py", alice).run()
    assert not report.exception
    assert f"**{reading.headline}**" in [m.value for m in report.markdown]
    table = report.dataframe[0].value
    assert {
        _BY_LABEL[in_sentence(f)] for f in table[table["Reached"] == "yes"]["Finding"]
    } == flagged
    assert label in texts(report) and FILE not in texts(report), "named by date and view"

    timeline = page("timeline.py", alice).run()
    assert not timeline.exception
    row = timeline.table[0].value.iloc[0]
    assert _flagged_in_reasons(row["Needs attention"]) == flagged
    assert row["Status"] == reading.status_words
