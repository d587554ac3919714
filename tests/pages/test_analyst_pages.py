"""AppTest runs of the analyst pages against a real, private database.

Each page must load for an analyst, refuse a patient and ask a visitor to log in;
the NIH filters must change the numbers, the performance page must never invent
numbers, and the cohort page must hide groups of fewer than ten people.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from core.settings import load_settings
from pages import ui
from storage import accounts
from storage.actor import Actor
from storage.bootstrap import open_database
from storage.db import Database
from storage.results import ResultIn
from storage.scans import save_scan
from tests.core.test_performance import _entry
from tests.pages import _flows

PAGES_DIR = Path(__file__).resolve().parents[2] / "pages"
ANALYST_PAGES = (
    "analyst_nih.py",
    "analyst_training_data.py",
    "analyst_performance.py",
    "analyst_cohort.py",
)
ADMIN_PASSWORD = "first-admin-pass"
PASSWORD = "a long enough pass"
REFUSED = "This page is not available for your account."

#: Generous: the machine is shared with model training.
_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A private DATA_DIR, database and checkpoint folder for this module's pages."""
    root = tmp_path_factory.mktemp("analyst_pages")
    values = {
        "DATA_DIR": str(root / "data"),
        "DATABASE_URL": f"sqlite:///{root / 'app.db'}",
        "MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "ADMIN_PASSWORD": ADMIN_PASSWORD,
        "MODEL_CHECKPOINT": str(root / "model" / "checkpoint.pt"),
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in values.items():
            patch.setenv(name, value)
        # pages.ui caches one database per process; drop any handle opened with other settings.
        st.cache_resource.clear()
        yield values
        st.cache_resource.clear()


@pytest.fixture(scope="module")
def db(env: dict[str, str]) -> Iterator[Database]:
    database = open_database(load_settings())
    yield database
    database.close()


@pytest.fixture(scope="module")
def admin(db: Database) -> Actor:
    return accounts.authenticate(db, "admin", ADMIN_PASSWORD, "tests")


@pytest.fixture(scope="module")
def analyst(db: Database, admin: Actor) -> Actor:
    return accounts.operator_create_user(db, "analyst_one", PASSWORD, "analyst")


@pytest.fixture(scope="module")
def patient(db: Database) -> Actor:
    return accounts.register(db, "patient_one", PASSWORD)


def _run(page: str, actor: Actor | None) -> AppTest:
    at = AppTest.from_file(str(PAGES_DIR / page), default_timeout=_TIMEOUT_S)
    if actor is not None:
        _flows.log_in(at, actor)
    return at.run()


def _texts(at: AppTest) -> str:
    parts = [*at.title, *at.info, *at.warning, *at.error, *at.success, *at.caption]
    return "\n".join(str(element.value) for element in parts)


def _metrics(at: AppTest) -> dict[str, str]:
    return {metric.label: metric.value for metric in at.metric}


@pytest.mark.parametrize("page", ANALYST_PAGES)
def test_page_loads_for_an_analyst(page: str, analyst: Actor) -> None:
    at = _run(page, analyst)
    assert not at.exception
    assert len(at.title) == 1
    assert REFUSED not in _texts(at)


@pytest.mark.parametrize("page", ANALYST_PAGES)
def test_page_is_refused_for_a_patient(page: str, patient: Actor) -> None:
    at = _run(page, patient)
    assert not at.exception
    assert [error.value for error in at.error] == [REFUSED]
    assert not at.title


@pytest.mark.parametrize("page", ANALYST_PAGES)
def test_page_asks_a_visitor_to_log_in(page: str, env: dict[str, str]) -> None:
    at = _run(page, None)
    assert "Please log in" in _texts(at)
    assert not at.title


def test_nih_page_counts_and_filters(analyst: Actor) -> None:
    at = _run("analyst_nih.py", analyst)
    assert _metrics(at)["Images"] == "112,120"
    assert _metrics(at)["Patients"] == "30,805"
    assert len(at.get("plotly_chart")) == 6
    at.multiselect[0].set_value(["F"]).run()
    assert _metrics(at)["Images"] == "48,780"
    at.multiselect[0].set_value(["F", "M"]).run()
    at.selectbox[0].set_value("Hernia").run()
    assert _metrics(at)["Images"] == "227"


def test_nih_page_says_so_when_no_image_matches(analyst: Actor) -> None:
    at = _run("analyst_nih.py", analyst)
    at.multiselect[0].set_value([]).run()
    assert "No images match these filters." in _texts(at)
    assert not at.get("plotly_chart")


def test_training_page_shows_the_shared_data(analyst: Actor, shared_data: Path) -> None:
    at = _run("analyst_training_data.py", analyst)
    assert not at.exception
    assert _metrics(at)["Images"] == "12,986"
    assert len(at.get("plotly_chart")) == 3


def test_training_page_without_the_data_folder(
    analyst: Actor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHARED_DATA_DIR", str(tmp_path / "absent"))
    at = _run("analyst_training_data.py", analyst)
    assert not at.exception
    assert "is not available on this machine" in _texts(at)
    assert not at.get("plotly_chart")


def test_performance_page_without_an_evaluation(analyst: Actor) -> None:
    at = _run("analyst_performance.py", analyst)
    assert "No evaluation has been run yet" in _texts(at)
    assert not at.dataframe and not at.get("plotly_chart")


def test_performance_page_shows_targets_and_misses(analyst: Actor, env: dict[str, str]) -> None:
    report = {
        "model": {"name": "net", "version": "1.0", "sha256": "cd" * 32},
        "evaluation": {
            "kermany_test": {"pneumonia": _entry(auc=0.98, accuracy=0.91, ece=0.03)},
            "covid_test": {"covid19": _entry(auc=0.99, accuracy=0.97, ece=0.02)},
        },
    }
    path = Path(env["MODEL_CHECKPOINT"]).with_name("metrics.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report))
    try:
        at = _run("analyst_performance.py", analyst)
    finally:
        path.unlink()
    assert not at.exception
    assert "Pneumonia accuracy, Kermany test" in at.warning[0].value
    targets = at.dataframe[0].value.set_index("target")
    assert targets.loc["3-way accuracy (normal/bacterial/viral)", "status"] == "not measured"
    assert targets.loc["COVID-19 AUC, COVID test", "status"] == "met"
    assert len(at.get("plotly_chart")) >= 2  # ROC curves and confusion matrices
    # One test set is drawn at a time; choosing the other shows its findings only.
    assert list(at.dataframe[1].value["finding"]) == ["pneumonia"]
    at.segmented_control(key="performance_source").set_value("covid_test")
    path.write_text(json.dumps(report))
    try:
        at = at.run()
    finally:
        path.unlink()
    assert not at.exception
    assert list(at.dataframe[1].value["finding"]) == ["covid19"]


def test_performance_page_shows_the_shipped_validity_table(analyst: Actor, env) -> None:
    shipped = Path(__file__).resolve().parents[2] / "models" / "metrics.json"
    path = Path(env["MODEL_CHECKPOINT"]).with_name("metrics.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(shipped.read_text())
    try:
        at = _run("analyst_performance.py", analyst)
    finally:
        path.unlink()
    assert not at.exception
    assert "Who each finding is valid for" in [s.value for s in at.subheader]
    [validity] = [f.value for f in at.dataframe if "population" in f.value.columns]
    rows = {(r.finding, r.population): r.valid for r in validity.itertuples()}
    assert rows[("COVID-19-like pattern", "Adults")] == "yes"
    assert rows[("COVID-19-like pattern", "Children")] == "no"


def _store_result(db: Database, patient: Actor, pneumonia: float) -> None:
    result = ResultIn(
        probabilities={
            "pneumonia": pneumonia,
            "bacterial_pneumonia": 0.1,
            "viral_pneumonia": 0.1,
            "covid19": 0.1,
        },
        model_name="net",
        model_version="1.0",
        checkpoint_sha256="cd" * 32,
        thresholds={
            "pneumonia": 0.5,
            "bacterial_pneumonia": 0.5,
            "viral_pneumonia": 0.5,
            "covid19": 0.5,
        },
    )
    save_scan(
        db,
        patient,
        pixels=np.zeros((8, 8), np.float32),
        metadata={"patient_sex": "F", "patient_age": 45},
        enhancement={},
        scan_date=date(2026, 3, 1),
        filename="scan.png",
        result=result,
    )


def test_cohort_page_shows_groups_of_ten_people_or_more(db: Database, analyst: Actor) -> None:
    # Eleven people flagged with pneumonia (one of them twice), twelve without any finding.
    for index in range(11):
        person = accounts.register(db, f"cohort_pneumonia_{index}", PASSWORD)
        _store_result(db, person, 0.9)
        if index == 0:
            _store_result(db, person, 0.8)
    for index in range(12):
        _store_result(db, accounts.register(db, f"cohort_clear_{index}", PASSWORD), 0.1)

    at = _run("analyst_cohort.py", analyst)
    assert not at.exception
    table = at.dataframe[0].value.set_index("Finding")
    assert table.loc["pneumonia", "Results"] == 12
    assert table.loc["pneumonia", "People"] == 11
    assert table.loc["none", "People"] == 12
    assert not {"user_id", "username"} & set(at.dataframe[0].value.columns)


def test_cohort_page_leaves_out_a_small_group_and_its_complement(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Three people without a finding: showing pneumonia (11) beside the total (14) would
    # reveal them, so both groups are left out and nothing is listed. A database of its own,
    # since the module's database holds other tests' people.
    db = _flows.open_database(tmp_path, monkeypatch)
    try:
        analyst = accounts.operator_create_user(db, "analyst_two", PASSWORD, "analyst")
        for index in range(11):
            _store_result(db, accounts.register(db, f"pneumonia_{index}", PASSWORD), 0.9)
        for index in range(3):
            _store_result(db, accounts.register(db, f"clear_{index}", PASSWORD), 0.1)

        at = _run("analyst_cohort.py", analyst)
        assert not at.exception
        assert not [frame for frame in at.dataframe if "Finding" in frame.value.columns]
        assert "No group is large enough" in " ".join(info.value for info in at.info)
    finally:
        db.close()
        ui.get_database.clear()
