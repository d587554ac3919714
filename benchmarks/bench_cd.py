"""Benchmark: a patient's CD of 60 films in 3 studies, listed and then read film by film.

The disc is generated in a temporary folder: a DICOMDIR (pydicom's FileSet) and 60 CR films
of 2048 x 2500 (the real chest of ``external/dicom_codecs/RG1_JLSN.dcm`` upscaled, or a
synthetic film without the shared data), three studies of two series (PA, lateral) of ten
films, each study in one of the lossless compressions CDs use (JPEG Lossless SV1, JPEG-LS,
JPEG 2000). The films of a study share their pixels (each is encoded once) but are separate
instances. Times, for the folder and for the same disc as a ZIP archive:

- listing: :func:`core.dicom_media.list_media` (every header read, no pixels);
- listing and decoding every pre-selected film: the listing, then
  :func:`core.dicom_media.iter_images` and :func:`core.imaging.decode_scan` one by one;
- importing the ZIP into a new patient's record (:func:`services.media.import_media`: decode,
  classify with the shipped model, encrypt and save each film, one at a time), into a
  temporary SQLite database and file blob store.

Peak memory is Python's own allocations during each step (``tracemalloc``: numpy arrays
included, a codec's internal buffers not), beside the process's peak resident size.

Run: ``.venv/bin/python benchmarks/bench_cd.py``
"""

from __future__ import annotations

import base64
import copy
import resource
import secrets
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    # Run as a script: make the project importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pydicom import uid
from pydicom.uid import generate_uid

from benchmarks.bench_imaging import cr_film
from core.dicom_media import MediaLimits, iter_images, list_media
from core.imaging import decode_scan
from core.settings import load_settings
from models.inference import Classifier, load_classifier
from services.media import check_media, import_media
from storage import accounts
from storage.bootstrap import open_database
from tests.dicom_files import film_dataset, write_file_set, zip_folder

_STUDIES = (
    ("20220314", uid.JPEGLosslessSV1),
    ("20230921", uid.JPEGLSLossless),
    ("20250102", uid.JPEG2000Lossless),
)
_FILMS_PER_SERIES = 10


def _write_disc(folder: Path, film: np.ndarray) -> int:
    """Write the 60-film disc into ``folder``; return its size in bytes."""
    datasets = []
    for study_number, (study_date, syntax) in enumerate(_STUDIES, start=1):
        study = generate_uid()
        for series_number, view in ((1, "PA"), (2, "LL")):
            template = film_dataset(film, syntax, StudyDate=study_date, ViewPosition=view)
            series = generate_uid()
            for number in range(1, _FILMS_PER_SERIES + 1):
                dataset = copy.deepcopy(template)
                instance = generate_uid()
                dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID = instance
                dataset.StudyInstanceUID, dataset.StudyID = study, str(study_number)
                dataset.SeriesInstanceUID = series
                dataset.SeriesNumber, dataset.InstanceNumber = series_number, number
                datasets.append(dataset)
    write_file_set(folder, datasets)
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def _measured(action: Callable[[], object]) -> tuple[float, int]:
    """Seconds and peak traced bytes of one run of ``action``."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        action()
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return seconds, peak


def _list_and_decode(source: Path, limits: MediaLimits) -> int:
    listing = list_media(source, limits)
    decoded = 0
    for image in iter_images(source, listing.preselected, limits):
        decode_scan(image.data)
        decoded += 1
    return decoded


def _import(archive: Path, folder: Path, classifier: Classifier) -> int:
    """Import the ZIP's chest series into a new patient's record; return the films saved."""
    env = {
        "DATA_DIR": str(folder),
        "MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "DATABASE_URL": f"sqlite:///{folder / 'app.db'}",
    }
    db = open_database(load_settings(env), bootstrap_admin=False)
    try:
        patient = accounts.register(db, "cd-patient", "a long enough pass phrase")
        check = check_media(db, patient, archive)
        report = import_media(db, patient, archive, check.listing.preselected, classifier)
        return sum(item.ok and not item.already_saved for item in report.items)
    finally:
        db.close()


def run() -> list[dict]:
    """Time listing, and listing plus decoding, of the generated disc as a folder and a ZIP.

    Returns:
        Rows ``{"benchmark", "value", "unit"}``, for ``benchmarks/run_all.py``.
    """
    film, source = cr_film()
    limits = MediaLimits.from_settings()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        disc = Path(tmp) / "cd"
        disc.mkdir()
        size = _write_disc(disc, film)
        archive = zip_folder(disc, Path(tmp) / "cd.zip")
        films = len(_STUDIES) * 2 * _FILMS_PER_SERIES
        assert _list_and_decode(disc, limits) == films, "every film is a pre-selected chest"
        what = f"{films} films, {len(_STUDIES)} studies, {size / 1e6:.0f} MB, {source}"
        for kind, medium in (("DICOMDIR folder", disc), ("ZIP", archive)):
            for step, action in (
                ("list", lambda medium=medium: list_media(medium, limits)),
                ("list and decode all", lambda medium=medium: _list_and_decode(medium, limits)),
            ):
                seconds, peak = _measured(action)
                label = f"CD: {step}, {kind} ({what})"
                rows.append({"benchmark": label, "value": round(seconds, 2), "unit": "s"})
                rows.append(
                    {
                        "benchmark": f"{label}, peak Python memory",
                        "value": round(peak / 1e6, 1),
                        "unit": "MB",
                    }
                )
        # Loaded before the timed import, as the app server holds it.
        classifier = load_classifier()
        target = Path(tmp) / "record"
        target.mkdir()
        seconds, peak = _measured(lambda: _import(archive, target, classifier))
        label = f"CD: import the ZIP into a new record, decoded, scored and saved ({what})"
        rows.append({"benchmark": label, "value": round(seconds, 1), "unit": "s"})
        rows.append(
            {
                "benchmark": f"{label}, peak Python memory",
                "value": round(peak / 1e6, 1),
                "unit": "MB",
            }
        )
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows.append(
        {
            "benchmark": "CD: peak resident size of the whole benchmark process",
            "value": round(peak_rss, 0),
            "unit": "MB",
        }
    )
    return rows


if __name__ == "__main__":
    from run_all import format_table

    print(format_table([row | {"module": Path(__file__).stem} for row in run()]))
