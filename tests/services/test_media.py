"""A patient's CD (services.media): listed, checked against the account, imported once.

The disc holds real chest pixels (an NIH film of the samples) in two compressed chest series,
a hip series and a report, with a DICOMDIR, as hospitals write them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydicom import uid

from core.views import View
from services.media import IdentityNotConfirmed, check_media, import_media
from storage.profile import set_birth_year
from storage.scans import list_scans
from tests.dicom_files import film_dataset, report_dataset, write_file_set, zip_folder
from tests.services.conftest import SHIPPED_CHECKPOINT, CliRun

STUDY = "1.2.826.0.1.3680043.8.498.1"
HIP = "1.2.826.0.1.3680043.8.498.2"


def _chest_pixels(samples_dir: Path) -> np.ndarray:
    film = Image.open(samples_dir / "00000001_000.png").convert("L").resize((512, 512))
    return (np.asarray(film, dtype=np.uint16) * 16).astype(np.uint16)


def _disc(folder: Path, pixels: np.ndarray, **patient: object) -> Path:
    who = {
        "PatientID": "H-1234",
        "PatientName": "Doe^Jane",
        "PatientBirthDate": "19800214",
        "PatientAge": "045Y",
        **patient,
    }
    folder.mkdir()
    write_file_set(
        folder,
        [
            film_dataset(
                pixels,
                uid.JPEGLosslessSV1,
                StudyInstanceUID=STUDY,
                SeriesInstanceUID=f"{STUDY}.1",
                SeriesNumber=1,
                StudyDate="20250302",
                **who,
            ),
            film_dataset(
                pixels[:, ::-1].copy(),
                uid.JPEGLSLossless,
                StudyInstanceUID=STUDY,
                SeriesInstanceUID=f"{STUDY}.2",
                SeriesNumber=2,
                ViewPosition="LL",
                StudyDate="20250302",
                **who,
            ),
            film_dataset(
                pixels,
                StudyInstanceUID=HIP,
                SeriesInstanceUID=f"{HIP}.1",
                BodyPartExamined="HIP",
                StudyDate="20250401",
                **who,
            ),
            report_dataset(StudyInstanceUID=STUDY, **who),
        ],
    )
    return folder


def test_a_disc_is_listed_then_its_chest_series_imported_once(
    database, make_user, classifier, samples_dir: Path, tmp_path: Path
) -> None:
    alice = make_user("alice")
    set_birth_year(database, alice, 1980)
    disc = _disc(tmp_path / "cd", _chest_pixels(samples_dir))

    check = check_media(database, alice, disc)
    assert not check.needs_confirmation
    assert check.names == ("Jane Doe",)  # shown to the patient, never stored
    assert [s.views for s in check.listing.preselected] == [(View.PA,), (View.LATERAL,)]
    assert any("hip" in sentence for sentence in check.listing.skipped)

    first = import_media(database, alice, disc, check.listing.preselected, classifier)
    assert [item.ok and not item.already_saved for item in first.items] == [True, True]
    scans = list_scans(database, alice, alice.user_id)
    assert sorted((s.scan_date.isoformat(), s.view) for s in scans) == [
        ("2025-03-02", View.PA),
        ("2025-03-02", View.LATERAL),
    ]
    assert all("Jane" not in s.filename and "Doe" not in s.filename for s in scans)
    [lateral] = [i for i in first.items if i.view is View.LATERAL]
    assert lateral.reading is not None and not lateral.reading.has_numbers

    again = import_media(database, alice, disc, check.listing.preselected, classifier)
    assert all(item.already_saved for item in again.items)
    assert len(list_scans(database, alice, alice.user_id)) == 2


@pytest.mark.parametrize(
    ("patient", "doubt"),
    [
        ({"PatientBirthDate": "19500101"}, "born in 1950; your account says 1980"),
        ({"PatientBirthDate": "", "PatientAge": "075Y"}, "age as 75"),
    ],
)
def test_films_of_someone_else_need_the_patients_word(
    database, make_user, classifier, samples_dir: Path, tmp_path: Path, patient, doubt
) -> None:
    alice = make_user("alice")
    set_birth_year(database, alice, 1980)
    disc = _disc(tmp_path / "cd", _chest_pixels(samples_dir), **patient)
    check = check_media(database, alice, disc)
    assert check.needs_confirmation and doubt in " ".join(check.doubts)
    with pytest.raises(IdentityNotConfirmed):
        import_media(database, alice, disc, check.listing.preselected, classifier)
    assert list_scans(database, alice, alice.user_id) == []
    confirmed = import_media(
        database, alice, disc, check.listing.preselected, classifier, identity_confirmed=True
    )
    assert confirmed.all_ok


def test_the_command_line_imports_a_zipped_disc_once(
    cli, settings_env, make_user, samples_dir: Path, tmp_path: Path
) -> None:
    make_user("alice")
    disc = _disc(tmp_path / "cd", _chest_pixels(samples_dir), PatientID="OTHER")
    archive = zip_folder(disc, tmp_path / "cd.zip")
    env = {**settings_env, "MODEL_CHECKPOINT": str(SHIPPED_CHECKPOINT)}

    def run(*extra: str) -> CliRun:
        return cli(env, "import-scan", "--user", "alice", *extra)

    first = run(str(archive))
    assert first.returncode == 0, first.stderr
    assert "2 of 2 files were saved." in first.stdout
    assert "Left out" in first.stdout  # the hip and the report, one sentence per kind
    again = run(str(archive))
    assert again.returncode == 0, again.stderr
    assert "0 of 2 files were saved; 2 were already in your record." in again.stdout
