"""The DICOM SR export (services.dicom_sr): one Comprehensive SR per film that came as DICOM,
read back with pydicom and highdicom, checked against the readings every page shows, and
validated by dciodvfy (dicom3tools) with no error.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.uid import ComprehensiveSRStorage, SecondaryCaptureImageStorage

from core.imaging import decode_scan
from core.scan_reading import ScanStatus
from core.views import View
from services.dicom_refs import NO_UIDS_SENTENCE, NOT_DICOM_SENTENCE, dicom_ref
from services.dicom_sr import (
    MANUFACTURER,
    heatmap_capture,
    patient_srs,
    reading_sr,
    sr_bytes,
    sr_zip,
    status_of,
    write_srs,
)
from services.imports import ScanFile, classify, import_scans, save_decoded_scan
from services.records import display_image, read_patient
from storage.scans import load_scan
from storage.sharing import grant_access
from tests.services._dicom_check import dciodvfy_errors
from tests.services._dicom_films import SERIAL, film

NOW = datetime(2026, 2, 1, 9, 30, tzinfo=UTC)


@pytest.fixture
def films(database, make_user, classifier, shared_data: Path):
    """A patient with a scored DICOM film, a side DICOM film, an unsure DICOM film, a DICOM
    film saved without its UIDs (as before they were kept) and a PNG film."""
    alice = make_user("alice", "patient")
    serial = shared_data / SERIAL
    made = {
        "scored": film(serial / "p10_day17_38.png", study_date=date(2025, 3, 14)),
        "side": film(serial / "p13_day04_5.png", study_date=date(2025, 3, 15), view_position="LL"),
    }
    ids = {}
    for role, one in made.items():
        [item] = import_scans(
            database, alice, [ScanFile(one.name, lambda one=one: one.data, None)], classifier
        ).items
        assert item.ok, item
        ids[role] = item.scan_id
    made["unsure"] = film(serial / "p10_day19_39.png", study_date=date(2025, 3, 16))
    unsure = decode_scan(made["unsure"].data, "unsure.dcm")
    result = replace(
        classify(classifier, unsure), abstained=True, abstain_reason="This image looks odd."
    )
    ids["unsure"] = save_decoded_scan(
        database,
        alice,
        unsure,
        scan_date=date(2025, 3, 16),
        filename="unsure.dcm",
        view=View.PA,
        result=result,
    )
    old = decode_scan(film(serial / "p10_day27_40.png").data, "old.dcm")
    old = replace(
        old, metadata=replace(old.metadata, study_instance_uid=None, sop_instance_uid=None)
    )
    ids["no_uids"] = save_decoded_scan(
        database,
        alice,
        old,
        scan_date=date(2025, 3, 17),
        filename="old.dcm",
        view=View.PA,
        result=classify(classifier, old),
    )
    png = shared_data / "samples" / "00000001_000.png"
    [item] = import_scans(
        database,
        alice,
        [ScanFile(png.name, png.read_bytes, View.PA, scan_date=date(2025, 3, 18))],
        classifier,
    ).items
    ids["png"] = item.scan_id
    return alice, ids, made


def _items(dataset) -> list:
    found = []
    for item in dataset.get("ContentSequence", []):
        found.append(item)
        found.extend(_items(item))
    return found


def _texts(dataset, meaning: str) -> list[str]:
    return [
        item.TextValue
        for item in _items(dataset)
        if item.ValueType == "TEXT" and item.ConceptNameCodeSequence[0].CodeMeaning == meaning
    ]


def test_one_sr_per_dicom_film(database, classifier, films, tmp_path) -> None:
    alice, ids, made = films
    export = patient_srs(database, alice, alice.user_id, classifier, now=NOW)
    record = read_patient(database, alice, alice.user_id, classifier)
    assert {item.scan_id for item in export.files} == {ids["scored"], ids["side"], ids["unsure"]}
    skipped = {scan_id: reason for scan_id, _, reason in export.skipped}
    assert skipped == {ids["no_uids"]: NO_UIDS_SENTENCE, ids["png"]: NOT_DICOM_SENTENCE}

    written = write_srs(export, tmp_path / "sr")
    by_scan = {item.scan_id: paths[0] for item, paths in zip(export.files, written, strict=True)}
    assert len(set(by_scan.values())) == 3
    for role in ("scored", "side", "unsure"):
        reading = record.reading(ids[role])
        source = made[role]
        path = by_scan[ids[role]]
        # The IOD validator finds no error in any SR the app writes.
        assert dciodvfy_errors(path) == [], role
        sr = pydicom.dcmread(path)
        assert sr.SOPClassUID == ComprehensiveSRStorage
        assert sr.Modality == "SR" and sr.Manufacturer == MANUFACTURER
        assert (sr.CompletionFlag, sr.VerificationFlag) == ("COMPLETE", "UNVERIFIED")
        # Filed with the film: its study, patient and order; a series of its own.
        assert sr.StudyInstanceUID == source.study_uid
        assert sr.PatientID == "HOSP-0001" and sr.AccessionNumber == "ACC-1"
        assert sr.SeriesInstanceUID != source.series_uid
        assert str(sr.PatientName) == ""
        [evidence] = sr.CurrentRequestedProcedureEvidenceSequence
        assert evidence.StudyInstanceUID == source.study_uid
        [series] = [
            s for s in evidence.ReferencedSeriesSequence if s.SeriesInstanceUID == source.series_uid
        ]
        assert [s.ReferencedSOPInstanceUID for s in series.ReferencedSOPSequence] == [
            source.sop_uid
        ]
        # The reading's words, as every page says them.
        assert _texts(sr, "Impression") == [reading.headline]
        for flag in reading.flags:
            assert flag in _texts(sr, "Comment")
        groups = hd.sr.srread(path).content.get_image_measurement_groups()
        assert all(
            [s.referenced_sop_instance_uid for s in g.source_images] == [source.sop_uid]
            for g in groups
        )
        if reading.model_name is None:
            # Not scored (a side view): the app is the observer, no algorithm ran.
            assert _texts(sr, "Device Observer Name") == [MANUFACTURER]
            assert _texts(sr, "Algorithm Name") == []
        else:
            # The model as the observer device and as each group's algorithm.
            assert _texts(sr, "Device Observer Name") == [reading.model_name]
            algorithm_names = _texts(sr, "Algorithm Name")
            assert algorithm_names and set(algorithm_names) == {reading.model_name}
            assert set(_texts(sr, "Algorithm Version")) == {reading.model_version}
            assert set(_texts(sr, "Algorithm Parameters")) == {
                f"checkpoint SHA-256 {reading.checkpoint_sha256}"
            }
        if not reading.has_numbers:
            assert status_of(sr) is reading.status
            assert [g.get_measurements() for g in groups] == [[]]
            assert not [item for item in _items(sr) if item.ValueType == "NUM"]
            continue
        assert status_of(sr) is None
        assert [g.finding_type.value for g in groups] == [f.finding for f in reading.findings]
        for group, item in zip(groups, reading.findings, strict=True):
            values = {m.name.meaning: (m.value, m.unit.value) for m in group.get_measurements()}
            assert values == {
                "Probability": (pytest.approx(item.value * 100, abs=0.005), "%"),
                "Level for a closer look": (pytest.approx(item.threshold * 100, abs=0.005), "%"),
            }
            evaluations = {
                q.name.meaning: q.value.meaning for q in group.get_qualitative_evaluations()
            }
            assert evaluations["At or above its level"] == ("Yes" if item.flagged else "No")
            if item.valid is None:
                assert "Valid for the patient's population" not in evaluations
            else:
                expected = "Yes" if item.valid else "No"
                assert evaluations["Valid for the patient's population"] == expected

    statuses = {role: record.reading(ids[role]).status for role in ("scored", "side", "unsure")}
    assert statuses == {
        "scored": ScanStatus.SCORED,
        "side": ScanStatus.NOT_SCORED_VIEW,
        "unsure": ScanStatus.UNSURE,
    }


def test_a_flagged_finding_comes_with_its_heatmap_as_a_secondary_capture(
    database, classifier, films, tmp_path
) -> None:
    """The scored film has flagged findings: each flagged finding's group references a
    Secondary Capture of the film as displayed with where the model looked, filed in the film's
    study; findings not flagged, and films without numbers, have none."""
    alice, ids, made = films
    export = patient_srs(database, alice, alice.user_id, classifier, now=NOW)
    written = dict(
        zip((item.scan_id for item in export.files), write_srs(export, tmp_path), strict=True)
    )
    reading = read_patient(database, alice, alice.user_id, classifier).reading(ids["scored"])
    flagged = [item.finding for item in reading.findings if item.flagged]
    assert flagged and len(flagged) < len(reading.findings)
    assert [len(written[ids[role]]) for role in ("side", "unsure")] == [1, 1]
    sr_path, *heatmap_paths = written[ids["scored"]]
    assert [p.name.rsplit("_heatmap-", 1)[1] for p in heatmap_paths] == [
        f"{finding}.dcm" for finding in flagged
    ]
    source = made["scored"]
    stored = load_scan(database, alice, ids["scored"])
    plain = display_image(stored)[0].astype(float)
    maps = {}
    for finding, path in zip(flagged, heatmap_paths, strict=True):
        assert dciodvfy_errors(path, "SCImage") == [], finding
        sc = pydicom.dcmread(path)
        assert sc.SOPClassUID == SecondaryCaptureImageStorage
        assert sc.StudyInstanceUID == source.study_uid and sc.PatientID == "HOSP-0001"
        assert [s.ReferencedSOPInstanceUID for s in sc.SourceImageSequence] == [source.sop_uid]
        assert sc.BurnedInAnnotation == "NO" and "not a diagnosis" in sc.ImageComments
        # The film's header gave no Patient Orientation: left empty, never guessed.
        assert not sc.PatientOrientation
        # The pixels are the film as every page displays it with the finding's map (JPEG:
        # within a few grey levels), and differ from the film without the map.
        shown = display_image(stored, classifier=classifier, heatmap_finding=finding)[0]
        pixels = sc.pixel_array  # pydicom hands JPEG's YCbCr back as RGB
        assert pixels.shape == shown.shape
        error = np.abs(pixels.astype(float) - shown).mean()
        assert error < 3 and np.abs(pixels - plain).mean() > 3 * error
        maps[sc.SOPInstanceUID] = finding

    # Each flagged finding's group illustrates itself with its map; the evidence lists both.
    sr = hd.sr.srread(sr_path)
    illustrated = {}
    for group in sr.content.get_image_measurement_groups():
        images = [
            item
            for item in group[0].ContentSequence
            if item.ValueType == "IMAGE"
            and item.ConceptNameCodeSequence[0].CodeMeaning == "Illustration of ROI"
        ]
        for image in images:
            illustrated[image.ReferencedSOPSequence[0].ReferencedSOPInstanceUID] = (
                group.finding_type.value
            )
    assert illustrated == maps
    [evidence] = sr.CurrentRequestedProcedureEvidenceSequence
    referenced = {
        one.ReferencedSOPInstanceUID
        for series in evidence.ReferencedSeriesSequence
        for one in series.ReferencedSOPSequence
    }
    assert referenced == {source.sop_uid, *maps}

    # Without a model to draw it, no map (and nothing claims one).
    bare = patient_srs(database, alice, alice.user_id, None, scan_ids=[ids["scored"]])
    assert [len(item.heatmaps) for item in bare.files] == [0]

    # A film whose header gave its Patient Orientation (0020,0020) passes it on to its map.
    ref = dicom_ref(stored.metadata)
    assert ref is not None and ref.patient_orientation is None
    item = next(item for item in reading.findings if item.flagged)
    oriented = heatmap_capture(
        reading, replace(ref, patient_orientation=("L", "F")), item, shown, 1
    )
    assert list(oriented.PatientOrientation) == ["L", "F"]
    path = tmp_path / "oriented.dcm"
    path.write_bytes(sr_bytes(oriented))
    assert dciodvfy_errors(path, "SCImage") == []


def test_my_scans_download_is_a_zip_of_the_srs(database, classifier, films) -> None:
    alice, ids, _ = films
    with zipfile.ZipFile(io.BytesIO(sr_zip(database, alice, classifier))) as archive:
        names = archive.namelist()
        classes = {n: pydicom.dcmread(io.BytesIO(archive.read(n))).SOPClassUID for n in names}
    reports = [n for n, c in classes.items() if c == ComprehensiveSRStorage]
    assert {name.split("_")[0] for name in reports} == {
        f"scan-{ids[role]}" for role in ("scored", "side", "unsure")
    }
    heatmaps = [n for n, c in classes.items() if c == SecondaryCaptureImageStorage]
    assert heatmaps and {name.split("_")[0] for name in heatmaps} == {f"scan-{ids['scored']}"}
    assert len(names) == 3 + len(heatmaps)


def test_same_reading_same_uid_and_a_clinician_may_export(
    database, make_user, classifier, films
) -> None:
    alice, ids, made = films
    first = patient_srs(database, alice, alice.user_id, classifier, scan_ids=[ids["scored"]])
    again = patient_srs(database, alice, alice.user_id, classifier, scan_ids=[ids["scored"]])
    [one], [two] = first.files, again.files
    assert one.dataset.SOPInstanceUID == two.dataset.SOPInstanceUID
    doctor = make_user("dr.x", "clinician")
    grant_access(database, alice, "dr.x")
    theirs = patient_srs(database, doctor, alice.user_id, classifier, scan_ids=[ids["scored"]])
    assert theirs.files[0].dataset.SOPInstanceUID == one.dataset.SOPInstanceUID
    # A changed reading is a new SR instance (a changed view re-reads the scan).
    record = read_patient(database, alice, alice.user_id, classifier)
    reading = record.reading(ids["scored"])
    changed = replace(reading, headline="Something else.")
    ref = dicom_ref(load_scan(database, alice, ids["scored"]).metadata)
    assert ref is not None and ref.sop_instance_uid == made["scored"].sop_uid
    other = pydicom.dcmread(io.BytesIO(sr_bytes(reading_sr(changed, ref, now=NOW))))
    assert other.SOPInstanceUID != one.dataset.SOPInstanceUID


def test_cli_writes_one_sr_per_dicom_film(cli, settings_env, films, tmp_path) -> None:
    _, ids, _ = films
    command = ["export", "--user", "alice", "--format", "dicom-sr"]
    refused = cli(settings_env, *command)
    assert refused.returncode == 1 and "--out" in refused.stderr
    out = tmp_path / "srs"
    result = cli(settings_env, *command, "--out", str(out))
    assert result.returncode == 0, result.stderr
    classes = [pydicom.dcmread(path).SOPClassUID for path in sorted(out.glob("*.dcm"))]
    assert classes.count(ComprehensiveSRStorage) == 3
    assert classes.count(SecondaryCaptureImageStorage) >= 1  # the flagged findings' maps
    assert "3 SR files" in result.stdout
    assert "where the model looked" in result.stdout
    assert f"skipped scan {ids['png']}" in result.stdout
