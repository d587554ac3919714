"""Upload & analyze as a series (AppTest): one table for one or many files, dates, views, saves."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.views import VIEW_LABELS, View
from storage.profile import get_birth_year, set_birth_year
from storage.scans import list_scans
from tests.pages._flows import (
    REAL_DICOM,
    edit_upload_table,
    page,
    texts,
    upload,
    upload_statuses,
)

#: A real adult film: nih_adult/labels.csv gives age 68, AP view.
NIH_ADULT = "nih_adult/test/Pneumonia/00000415_001.jpeg"
#: A real film of a child aged 1-5 (Kermany).
KERMANY_CHILD = "kermany/test/PNEUMONIA/person100_bacteria_475.jpeg"


def _table(at: AppTest):
    (editor,) = at.data_editor
    return editor.value


def _saved(world) -> list:
    return list_scans(world.db, world.alice, world.alice.user_id)


def test_one_file_and_several_files_take_the_same_table(world, samples_dir: Path) -> None:
    png = (samples_dir / "00000001_000.png").read_bytes()
    one = upload(page("upload.py", world.alice).run(), ("a.png", png))
    several = upload(
        page("upload.py", world.alice).run(),
        ("a.png", png),
        ("b.png", (samples_dir / "00027426_000.png").read_bytes()),
    )
    for at, rows in ((one, 1), (several, 2)):
        assert not at.exception
        assert len(_table(at)) == rows
        # No date field per file: the date is a table column (the only date field applies
        # one date to several files of a series).
        assert [d.key for d in at.date_input] in ([], ["upload_bulk_date"])
        assert at.button(key="upload_save").disabled


def test_save_is_enabled_only_when_every_row_has_a_date_and_a_view(
    world, samples_dir: Path
) -> None:
    at = upload(
        page("upload.py", world.alice).run(),
        ("front.png", (samples_dir / "00000001_000.png").read_bytes()),
        ("chest_2026-01-05.png", (samples_dir / "00027426_000.png").read_bytes()),
    )
    statuses = upload_statuses(at)
    assert statuses == ["Enter the date the X-ray was taken and its view.", "Enter its view."]
    assert _table(at)["date"].tolist()[1].date() == date(2026, 1, 5), "date from the file name"
    assert at.button(key="upload_save").disabled

    at = edit_upload_table(
        at, {0: {"view": VIEW_LABELS[View.PA]}, 1: {"view": VIEW_LABELS[View.LATERAL]}}
    )
    assert at.button(key="upload_save").disabled, "the first file still has no date"
    at = edit_upload_table(
        at,
        {
            0: {"view": VIEW_LABELS[View.PA], "date": "2026-01-05"},
            1: {"view": VIEW_LABELS[View.LATERAL]},
        },
    )
    assert not at.button(key="upload_save").disabled
    assert upload_statuses(at)[1].startswith("Ready to save.")
    # A side view is saved but not scored: the cell points to that sentence below the table.
    assert _table(at)["status"].tolist() == ["Ready to save", "Ready to save; read the note below"]


def test_a_series_is_saved_with_each_rows_date_and_view_and_once_only(
    world, samples_dir: Path
) -> None:
    before = len(_saved(world))
    at = upload(
        page("upload.py", world.alice).run(),
        ("chest_2026-01-05.png", (samples_dir / "00000001_000.png").read_bytes()),
        ("notes.png", b"just some text"),
        ("real.dcm", (samples_dir / REAL_DICOM).read_bytes()),
    )
    assert at.error[0].value == (
        "notes.png cannot be used: This file is not a PNG, JPEG or DICOM image."
    )
    # The DICOM states its view (PA) but only a placeholder date.
    assert "looks like a placeholder" in upload_statuses(at)[1], "notes.png has an error box"
    # notes.png has no row: the table's rows are the usable files.
    assert _table(at)["file"].tolist() == ["chest_2026-01-05.png", "real.dcm"]
    at = edit_upload_table(at, {0: {"view": VIEW_LABELS[View.LATERAL]}, 1: {"date": "2026-01-07"}})
    assert at.button(key="upload_save").label == "Save 2 scans to my record"
    at = at.button(key="upload_save").click().run()
    assert not at.exception
    assert "2 of 2 files were saved." in texts(at)
    new = {s.filename: s for s in _saved(world)}
    assert len(new) == before + 2
    assert (new["chest_2026-01-05.png"].scan_date, new["chest_2026-01-05.png"].view) == (
        date(2026, 1, 5),
        View.LATERAL,
    )
    assert not new["chest_2026-01-05.png"].results, "a lateral film is not scored"
    assert (new["real.dcm"].scan_date, new["real.dcm"].view) == (date(2026, 1, 7), View.PA)

    # The page now knows both files: nothing is left to save.
    statuses = upload_statuses(at)
    assert statuses[0].startswith(
        "Already in your record: the X-ray of 5 Jan 2026, side (lateral), saved on "
    )
    # Each saved row shows the date and view it was saved with, not an empty cell to fill.
    table = _table(at)
    assert table["view"].tolist() == [VIEW_LABELS[View.LATERAL], VIEW_LABELS[View.PA]]
    assert [d.date() for d in table["date"].dropna()] == [date(2026, 1, 5), date(2026, 1, 7)]
    assert at.button(key="upload_save").disabled
    # The report stays while these files stay chosen (the table's refresh runs the page
    # again), and goes when others are chosen.
    at = at.run()
    assert "2 of 2 files were saved." in texts(at)
    at = upload(at, ("other.png", (samples_dir / "00027426_000.png").read_bytes()))
    assert "files were saved" not in texts(at)


def test_a_double_click_on_save_stores_each_file_once(world, samples_dir: Path) -> None:
    """Two Save requests for the same table (the second sent before the first re-ran)."""
    files = [("chest_2026-01-05.png", (samples_dir / "00000001_000.png").read_bytes())]
    pa = {0: {"view": VIEW_LABELS[View.PA]}}
    first = edit_upload_table(upload(page("upload.py", world.alice).run(), *files), pa)
    second = edit_upload_table(upload(page("upload.py", world.alice).run(), *files), pa)
    before = len(_saved(world))
    first.button(key="upload_save").click().run()
    second.button(key="upload_save").click().run()
    assert len(_saved(world)) == before + 1
    assert "0 of 1 file was saved; 1 was already in your record." in texts(second)


def test_a_dicom_age_offers_the_birth_year(world, samples_dir: Path) -> None:
    at = upload(
        page("upload.py", world.alice).run(), ("real.dcm", (samples_dir / REAL_DICOM).read_bytes())
    )
    at = edit_upload_table(at, {0: {"date": "2026-01-07"}})
    assert "suggests the patient was born in 1964" in texts(at)  # Patient's Age 062Y
    at.button(key="upload_birth_year").click().run()
    assert get_birth_year(world.db, world.alice, world.alice.user_id) == 1964


@pytest.mark.parametrize(
    ("path", "birth_year", "sentence"),
    [
        (
            NIH_ADULT,
            1958,
            "Bacterial pneumonia was learned from children aged 1-5 only, so this number says "
            "little about an adult's film; it is shown greyed and raises no flag.",
        ),
        (
            KERMANY_CHILD,
            2022,
            "COVID-19-like pattern was learned from adults only, so this number says little about "
            "a child's film; it is shown greyed and raises no flag.",
        ),
    ],
)
def test_real_films_grey_what_was_learned_from_other_patients(
    world, shipped_model, shared_data: Path, path: str, birth_year: int, sentence: str
) -> None:
    set_birth_year(world.db, world.alice, birth_year)
    at = upload(
        page("upload.py", world.alice).run(), ("film.jpeg", (shared_data / path).read_bytes())
    )
    at = edit_upload_table(at, {0: {"view": VIEW_LABELS[View.AP], "date": "2026-01-05"}})
    assert not at.exception
    shown = texts(at)
    assert sentence in shown
    assert "Each number was learned from different patients" in shown


def test_edits_of_one_set_of_files_never_apply_to_the_next(world, samples_dir: Path) -> None:
    at = upload(
        page("upload.py", world.alice).run(),
        ("a.png", (samples_dir / "00000001_000.png").read_bytes()),
    )
    at = edit_upload_table(at, {0: {"view": VIEW_LABELS[View.LATERAL], "date": "2026-01-05"}})
    assert not at.button(key="upload_save").disabled
    at = upload(at, ("b.png", (samples_dir / "00027426_000.png").read_bytes()))
    assert upload_statuses(at) == ["Enter the date the X-ray was taken and its view."]
    assert at.button(key="upload_save").disabled


def test_one_date_and_view_are_applied_to_several_files_at_once(world, samples_dir: Path) -> None:
    at = upload(
        page("upload.py", world.alice).run(),
        ("front.png", (samples_dir / "00000001_000.png").read_bytes()),
        ("chest_2026-01-05.png", (samples_dir / "00027426_000.png").read_bytes()),
    )
    # The second row keeps an edit of its own made before the bulk change.
    at = edit_upload_table(at, {1: {"date": "2026-01-06"}})
    at.multiselect(key="upload_bulk_files").set_value([0, 1])
    at.selectbox(key="upload_bulk_view").set_value(VIEW_LABELS[View.PA])
    at = at.date_input(key="upload_bulk_date").set_value(date(2026, 2, 3)).run()
    at = at.button(key="upload_bulk_apply").click().run()
    assert not at.exception
    table = _table(at)
    assert table["view"].tolist() == [VIEW_LABELS[View.PA]] * 2
    assert [d.date() for d in table["date"]] == [date(2026, 2, 3)] * 2
    assert not at.button(key="upload_save").disabled
    at.multiselect(key="upload_bulk_files").set_value([1])
    at.selectbox(key="upload_bulk_view").set_value(VIEW_LABELS[View.LATERAL])
    at = at.date_input(key="upload_bulk_date").set_value(None).run()
    at = at.button(key="upload_bulk_apply").click().run()
    table = _table(at)
    assert table["view"].tolist() == [VIEW_LABELS[View.PA], VIEW_LABELS[View.LATERAL]]
    assert [d.date() for d in table["date"]] == [date(2026, 2, 3)] * 2, "dates kept"
