"""Timeline (AppTest): findings learned from other patients are off the chart and never flagged."""

from __future__ import annotations

import json
from datetime import date

import numpy as np

from core.findings import FINDINGS
from core.views import View
from models.inference import METRICS_PATH
from storage import accounts
from storage.profile import set_birth_year
from storage.results import ResultIn
from storage.scans import save_scan
from tests.pages._flows import PASSWORD, page, texts

SHIPPED_SHA = json.loads(METRICS_PATH.read_text())["model"]["sha256"]


def _scan(db, actor, when: date, bacterial: float, covid: float, seed: int) -> int:
    return save_scan(
        db,
        actor,
        pixels=np.random.default_rng(seed).random((96, 80), dtype=np.float32),
        metadata={"source_format": "png", "width": 80, "height": 96},
        enhancement={},
        scan_date=when,
        filename=f"{when}.png",
        view=View.PA,
        result=ResultIn(
            probabilities={
                **dict.fromkeys(FINDINGS, 0.01),
                "bacterial_pneumonia": bacterial,
                "covid19": covid,
            },
            model_name="cxr-test",
            model_version="1",
            checkpoint_sha256=SHIPPED_SHA,
            thresholds=dict.fromkeys(FINDINGS, 0.5),
            population="unknown",
        ),
    )


def test_an_adults_timeline_hides_and_never_flags_the_childrens_findings(db) -> None:
    alice = accounts.register(db, "alice", PASSWORD)
    set_birth_year(db, alice, 1961)
    _scan(db, alice, date(2026, 1, 5), bacterial=0.10, covid=0.05, seed=1)
    _scan(db, alice, date(2026, 1, 9), bacterial=0.70, covid=0.30, seed=2)

    at = page("timeline.py", alice).run()
    assert not at.exception
    shown = texts(at)
    # COVID-19 (learned from adults) rose by 25 points: flagged. Bacterial pneumonia (learned
    # from children only) rose by 60 points and crossed its level: not flagged, not plotted.
    assert "COVID-19 pneumonia rose from 5% to 30%" in shown
    assert "Bacterial pneumonia" not in " ".join(w.value for w in at.warning)
    assert "left off the chart and raise no flag" in shown
    spec = at.get("plotly_chart")[0].proto.spec
    assert "COVID-19 pneumonia" in spec and "Bacterial pneumonia" not in spec

    at.toggle(key="timeline_show_greyed").set_value(True).run()
    assert not at.exception
    assert "Bacterial pneumonia (greyed)" in at.get("plotly_chart")[0].proto.spec
    assert "COVID-19 pneumonia (greyed)" not in at.get("plotly_chart")[0].proto.spec
    assert "Bacterial pneumonia" not in " ".join(w.value for w in at.warning)


def test_without_an_age_nothing_is_hidden(db) -> None:
    alice = accounts.register(db, "alice", PASSWORD)
    _scan(db, alice, date(2026, 1, 5), bacterial=0.10, covid=0.05, seed=1)
    _scan(db, alice, date(2026, 1, 9), bacterial=0.70, covid=0.30, seed=2)
    at = page("timeline.py", alice).run()
    assert not at.exception
    assert "Bacterial pneumonia" in at.get("plotly_chart")[0].proto.spec
    assert "left off the chart" not in texts(at)


def test_compare_marks_the_findings_learned_from_other_patients(db) -> None:
    alice = accounts.register(db, "alice", PASSWORD)
    set_birth_year(db, alice, 1961)
    _scan(db, alice, date(2026, 1, 5), bacterial=0.10, covid=0.05, seed=1)
    _scan(db, alice, date(2026, 1, 9), bacterial=0.70, covid=0.30, seed=2)
    at = page("compare.py", alice).run()
    assert not at.exception
    table = at.dataframe[0].value.set_index("Finding")
    assert table.loc["Bacterial pneumonia", "Learned from other patients"] == "yes"
    assert table.loc["COVID-19 pneumonia", "Learned from other patients"] == ""
