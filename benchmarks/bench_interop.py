"""Talking to hospital systems: finding and importing a study from a PACS, and exporting a
patient's readings as FHIR and as DICOM SR.

- PACS (Orthanc with its DICOMweb plugin, ``TEST_PACS_URL`` as storage/ORTHANC_SETUP.sh prints
  it, or ``--pacs URL``): a patient whose record holds one film of theirs finds a 10-film chest
  study by Patient ID and date range (``services.pacs.search_pacs``: QIDO-RS for the studies,
  series and instances, plus the record's own films for what is known already), then imports
  it (``import_from_pacs``: WADO-RS one film at a time, decoding, the model, sealing and saving,
  each film read as every page reads it); the retrieval alone (WADO-RS, the same 10 films) is
  timed apart. Each run is a new patient and a new copy of the
  study; the figure is the median of the runs.
- Export: a patient with 50 DICOM films (real adult films, each scored by the shipped model);
  ``services.fhir.fhir_bundle_json`` (read the record, open each DICOM film for its UIDs,
  build and serialise the Bundle) and ``services.dicom_sr.patient_srs`` + ``write_srs``
  (one SR per film and a heatmap per flagged finding, written to a folder). Medians after one
  warm-up run.

Temporary SQLite database, files for the blobs, the shipped model on the CPU threads torch
chooses. Run: ``.venv/bin/python benchmarks/bench_interop.py [--pacs URL] [--runs N]``.
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import pydicom

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._timing import run_seconds
from core.settings import load_settings
from models.inference import Classifier, load_classifier
from services.dicom_sr import patient_srs, write_srs
from services.fhir import fhir_bundle_json
from services.imports import ScanFile, import_scans
from services.pacs import Pacs, import_from_pacs, search_pacs
from storage import accounts
from storage.actor import Actor
from storage.bootstrap import open_database
from storage.db import Database
from tests.services._dicom_films import film, frontal_films

STUDY_FILMS = 10
EXPORT_SCANS = 50
PASSWORD = "benchmark password"


def _database(tmp: str) -> Database:
    return open_database(
        load_settings(
            {
                "DATA_DIR": tmp,
                "ADMIN_PASSWORD": "benchmark admin",
                "MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
            }
        )
    )


def _pacs(url: str) -> Pacs:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    bare = parts._replace(netloc=f"{parts.hostname}:{parts.port}").geturl()
    return Pacs(bare, "the benchmark PACS", parts.username, parts.password)


def pacs_rows(url: str, classifier: Classifier, runs: int) -> list[dict]:
    """Find and import a 10-film study ``runs`` times, each for a new patient."""
    pacs = _pacs(url)
    client = pacs.client()
    shared = load_settings().shared_data_dir
    pngs = frontal_films(shared)
    finds, imports, retrievals = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        db = _database(tmp)
        try:
            for run in range(runs):
                patient_id = f"BENCH-{uuid.uuid4().hex[:8]}"
                study = pydicom.uid.generate_uid()
                series = pydicom.uid.generate_uid()
                films = [
                    film(
                        png,
                        patient_id=patient_id,
                        study_uid=study,
                        series_uid=series,
                        instance_number=number,
                        study_date=date(2025, 3, 14),
                    )
                    for number, png in enumerate(pngs[:STUDY_FILMS], start=1)
                ]
                client.store_instances([pydicom.dcmread(io.BytesIO(f.data)) for f in films])
                patient = accounts.register(db, f"bench{run}", PASSWORD)
                cd = film(pngs[-1], patient_id=patient_id, study_date=date(2024, 6, 1))
                import_scans(
                    db, patient, [ScanFile(cd.name, lambda cd=cd: cd.data, None)], classifier
                )

                start = time.perf_counter()
                check = search_pacs(
                    db, patient, pacs, patient_id, date(2025, 1, 1), date(2025, 12, 31)
                )
                finds.append(time.perf_counter() - start)
                [found] = check.listing.studies
                assert sum(s.image_count for s in found.series) == STUDY_FILMS
                start = time.perf_counter()
                for one in found.series:
                    for instance in one.instances:
                        uid = str(instance.sop_instance_uid)
                        client.retrieve_instance(one.study_uid, one.uid, uid)
                retrievals.append(time.perf_counter() - start)
                start = time.perf_counter()
                report = import_from_pacs(
                    db, patient, pacs, check, check.listing.preselected, classifier
                )
                imports.append(time.perf_counter() - start)
                assert report.all_ok and len(report.items) == STUDY_FILMS, report.summary
        finally:
            db.close()
    find, take = statistics.median(finds), statistics.median(imports)
    return [
        {"benchmark": "PACS: find a 10-film study (QIDO-RS)", "value": round(find, 3), "unit": "s"},
        {
            "benchmark": "PACS: import a 10-film study (WADO-RS, decode, model, save)",
            "value": round(take, 2),
            "unit": "s",
        },
        {
            "benchmark": "PACS: find and import a 10-film study",
            "value": round(find + take, 2),
            "unit": "s",
        },
        {
            "benchmark": "PACS: retrieve the 10 films alone (WADO-RS, no import)",
            "value": round(statistics.median(retrievals), 2),
            "unit": "s",
        },
        {
            "benchmark": "PACS: import per film",
            "value": round(take / STUDY_FILMS * 1000),
            "unit": "ms",
        },
    ]


def _export_patient(db: Database, classifier: Classifier) -> Actor:
    shared = load_settings().shared_data_dir
    pngs = frontal_films(shared)
    patient = accounts.register(db, "exporter", PASSWORD)
    files = []
    for number in range(EXPORT_SCANS):
        one = film(
            pngs[number % len(pngs)],
            patient_id="BENCH-EXPORT",
            study_date=date(2020, 1, 1) + timedelta(days=30 * number),
            instance_number=number + 1,
        )
        files.append(ScanFile(one.name, lambda one=one: one.data, None))
    report = import_scans(db, patient, files, classifier)
    assert report.all_ok and len(report.items) == EXPORT_SCANS, report.summary
    return patient


def export_rows(classifier: Classifier, runs: int) -> list[dict]:
    """Export a 50-scan patient as a FHIR Bundle and as DICOM SR files."""
    with tempfile.TemporaryDirectory() as tmp:
        db = _database(tmp)
        try:
            patient = _export_patient(db, classifier)
            sizes: list[int] = []

            def fhir() -> None:
                sizes.append(len(fhir_bundle_json(db, patient, classifier)))

            written: list[int] = []
            heatmaps: list[int] = []

            def sr() -> None:
                export = patient_srs(db, patient, patient.user_id, classifier)
                out = Path(tmp) / f"sr-{len(written)}"
                paths = write_srs(export, out)
                written.append(sum(path.stat().st_size for group in paths for path in group))
                heatmaps.append(sum(len(group) - 1 for group in paths))
                assert len(paths) == EXPORT_SCANS

            fhir_s = statistics.median(run_seconds(fhir, runs))
            sr_s = statistics.median(run_seconds(sr, runs))
        finally:
            db.close()
    return [
        {
            "benchmark": "Export a 50-scan patient as a FHIR R4 Bundle",
            "value": round(fhir_s, 3),
            "unit": "s",
        },
        {"benchmark": "FHIR Bundle size (50 scans)", "value": sizes[-1] // 1024, "unit": "KiB"},
        {
            "benchmark": (
                f"Export a 50-scan patient as DICOM SR (50 SRs and {heatmaps[-1]} heatmaps "
                "of flagged findings written)"
            ),
            "value": round(sr_s, 3),
            "unit": "s",
        },
        {
            "benchmark": "DICOM SR and heatmap files (50 scans), total",
            "value": written[-1] // 1024,
            "unit": "KiB",
        },
    ]


def run(runs: int = 3) -> list[dict]:
    """Measure the exchanges with hospital systems.

    Returns:
        Rows ``{"benchmark", "value", "unit"}``; the PACS rows only when ``TEST_PACS_URL`` is
        set (a note is printed otherwise).
    """
    classifier = load_classifier()
    rows = []
    url = os.environ.get("TEST_PACS_URL")
    if url:
        rows += pacs_rows(url, classifier, runs)
    else:
        print("note: TEST_PACS_URL is unset; run storage/ORTHANC_SETUP.sh for the PACS figures")
    return rows + export_rows(classifier, runs)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pacs", metavar="URL", help="the PACS (default: TEST_PACS_URL)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per figure")
    args = parser.parse_args()
    if args.pacs:
        os.environ["TEST_PACS_URL"] = args.pacs
    for row in run(args.runs):
        print(f"{row['benchmark']}: {row['value']} {row['unit']}")
