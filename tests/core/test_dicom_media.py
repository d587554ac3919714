"""Tests for core.dicom_media: a patient's CD (DICOMDIR and folder), a ZIP download or a folder
of DICOM files, listed as studies and series, with the archive limits checked first.

Every disc and archive is built in code: pydicom's FileSet writes the DICOMDIR and names the
files as a CD writer does.
"""

from __future__ import annotations

import io
import stat
import struct
import tracemalloc
import zipfile
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from pydicom import uid

from core.dicom_media import (
    MediaError,
    MediaLimits,
    MediaListing,
    iter_images,
    list_media,
)
from core.imaging import decode_scan
from core.settings import load_settings
from core.views import View
from tests.dicom_files import (
    film_bytes,
    film_dataset,
    report_dataset,
    to_bytes,
    write_file_set,
    zip_folder,
)

LIMITS = MediaLimits(
    max_total_bytes=64 * 1024 * 1024, max_files=100, max_ratio=100, max_file_bytes=8 * 1024 * 1024
)
CHEST_STUDY, OLD_STUDY, HIP_STUDY = "1.2.826.1", "1.2.826.2", "1.2.826.3"


def _pixels(seed: int = 0, shape: tuple[int, int] = (80, 96)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 4096, shape).astype(np.uint16)


def _patient(**attributes: object) -> dict[str, object]:
    return {
        "PatientID": "H-1234",
        "PatientName": "Doe^Jane",
        "PatientBirthDate": "19800214",
        "PatientAge": "043Y",
        "PatientSex": "F",
        **attributes,
    }


def _disc_datasets() -> list:
    """Two chest studies (PA and lateral; an older PA in JPEG Lossless), a hip, a CT, a report."""
    return [
        film_dataset(
            _pixels(1),
            uid.JPEGLSLossless,
            StudyInstanceUID=CHEST_STUDY,
            StudyDescription="XR CHEST 2 VIEWS",
            SeriesInstanceUID=f"{CHEST_STUDY}.1",
            SeriesNumber=1,
            SeriesDescription="PA",
            StudyDate="20240105",
            **_patient(),
        ),
        film_dataset(
            _pixels(2),
            StudyInstanceUID=CHEST_STUDY,
            SeriesInstanceUID=f"{CHEST_STUDY}.2",
            SeriesNumber=2,
            ViewPosition="LL",
            StudyDate="20240105",
            **_patient(),
        ),
        *[
            film_dataset(
                _pixels(3 + number),
                uid.JPEGLosslessSV1,
                StudyInstanceUID=OLD_STUDY,
                SeriesInstanceUID=f"{OLD_STUDY}.1",
                InstanceNumber=number,
                StudyDate="20210310",
                BodyPartExamined="",
                SeriesDescription="Thorax pa",
                **_patient(PatientAge="040Y"),
            )
            for number in (2, 1)
        ],
        film_dataset(
            _pixels(6),
            StudyInstanceUID=HIP_STUDY,
            SeriesInstanceUID=f"{HIP_STUDY}.1",
            BodyPartExamined="HIP",
            **_patient(),
        ),
        film_dataset(
            _pixels(7),
            SOPClassUID=uid.CTImageStorage,
            Modality="CT",
            StudyInstanceUID=HIP_STUDY,
            SeriesInstanceUID=f"{HIP_STUDY}.2",
            **_patient(),
        ),
        report_dataset(StudyInstanceUID=CHEST_STUDY, **_patient()),
    ]


@pytest.fixture
def disc(tmp_path: Path) -> Path:
    """A CD's content: a DICOMDIR and its folder."""
    folder = tmp_path / "cd"
    folder.mkdir()
    write_file_set(folder, _disc_datasets())
    return folder


def _assert_disc_listing(listing: MediaListing) -> None:
    assert listing.dicomdir
    assert [study.uid for study in listing.studies] == [OLD_STUDY, CHEST_STUDY]
    old, chest = listing.studies
    assert (old.date, chest.date) == (date(2021, 3, 10), date(2024, 1, 5))
    assert chest.description == "XR CHEST 2 VIEWS"
    pa, lateral = chest.series
    assert (pa.number, pa.description, pa.modality, pa.body_part) == (1, "PA", "CR", "CHEST")
    assert (pa.views, lateral.views) == ((View.PA,), (View.LATERAL,))
    assert pa.image_count == lateral.image_count == 1
    (old_pa,) = old.series
    # No body part, but "Thorax" in its description: still a chest series.
    assert old_pa.image_count == 2 and old_pa.body_part is None
    assert [i.instance_number for i in old_pa.instances] == [1, 2]
    assert listing.preselected == (old_pa, pa, lateral)
    patient = pa.patient
    assert (patient.patient_id, patient.name) == ("H-1234", "Jane Doe")
    assert (patient.birth_date, patient.age, patient.sex) == (date(1980, 2, 14), 43, "F")
    assert old_pa.patient.age == 40
    assert "Jane" not in repr(listing)
    assert listing.patient_ids == {"H-1234"}
    assert listing.skipped == (
        "Left out a structured report (text, not an image).",
        "Left out 1 series of CT scans: the app reads chest X-rays only.",
        "Left out 1 series that shows the hip, not the chest.",
    )


def test_a_dicomdir_folder_lists_its_studies_and_series(disc: Path) -> None:
    listing = list_media(disc, LIMITS)
    assert listing.kind == "folder"
    _assert_disc_listing(listing)
    # The DICOMDIR itself may be given instead of its folder.
    assert list_media(disc / "DICOMDIR", LIMITS) == listing


def test_a_zipped_disc_lists_the_same_from_a_path_or_an_upload(disc: Path, tmp_path: Path) -> None:
    archive = zip_folder(disc, tmp_path / "cd.zip", prefix="Patient CD/")
    from_path = list_media(archive, LIMITS)
    assert from_path.kind == "zip"
    _assert_disc_listing(from_path)
    upload = io.BytesIO(archive.read_bytes())
    assert list_media(upload, LIMITS).studies == from_path.studies


def test_the_dicomdir_finds_files_whatever_their_case(disc: Path, tmp_path: Path) -> None:
    # A CD copied by a desktop often comes back in lower case, or with ISO 9660 versions.
    archive = tmp_path / "lower.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for path in sorted(disc.rglob("*")):
            if path.is_file():
                name = path.relative_to(disc).as_posix()
                out.writestr(name if name == "DICOMDIR" else name.lower() + ";1", path.read_bytes())
    _assert_disc_listing(list_media(archive, LIMITS))


def test_files_the_dicomdir_does_not_list_are_not_read(disc: Path) -> None:
    (disc / "VIEWER").mkdir()
    (disc / "VIEWER" / "viewer.exe").write_bytes(b"MZ" + bytes(1000))
    (disc / "VIEWER" / "IM999").write_bytes(film_bytes(_pixels(9)))
    (disc / "PT000000" / "ST000000" / "SE000001" / "IM000000").unlink()
    listing = list_media(disc, LIMITS)
    assert [len(study.series) for study in listing.studies] == [1, 1]
    assert listing.skipped[0] == "The disc's index (DICOMDIR) lists 1 file that is not there."


def test_an_unreadable_dicomdir_falls_back_to_every_file(disc: Path) -> None:
    (disc / "DICOMDIR").write_bytes(b"not a DICOMDIR")
    listing = list_media(disc, LIMITS)
    assert not listing.dicomdir
    assert len(listing.series) == 3
    assert listing.skipped[0] == (
        "The disc's index (DICOMDIR) could not be read, so every file was looked at."
    )


def test_a_folder_without_dicomdir_reads_every_file_and_says_what_it_left_out(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "download"
    (folder / "series").mkdir(parents=True)
    chest = film_bytes(_pixels(1), uid.RLELossless, **_patient())
    (folder / "series" / "1.dcm").write_bytes(chest)
    (folder / "series" / "copy.dcm").write_bytes(chest)
    (folder / "series" / "2.dcm").write_bytes(
        film_bytes(_pixels(2), PatientID="OTHER", SeriesInstanceUID="9.9", BodyPartExamined="")
    )
    (folder / "README.txt").write_text("Your images")
    (folder / "damaged.dcm").write_bytes(chest[:200])
    (folder / ".DS_Store").write_bytes(b"\0" * 10)
    (folder / "big.dcm").write_bytes(bytes(LIMITS.max_file_bytes + 1))
    (folder / "report.dcm").write_bytes(to_bytes(report_dataset()))
    (folder / "link.dcm").symlink_to(folder / "series" / "1.dcm")
    listing = list_media(folder, LIMITS)
    assert (listing.kind, listing.dicomdir) == ("folder", False)
    first, second = sorted(listing.series, key=lambda s: s.patient.patient_id or "")
    assert first.preselected and not second.preselected  # nothing says chest
    assert listing.patient_ids == {"H-1234", "OTHER"}
    assert listing.skipped == (
        "Left out a structured report (text, not an image).",
        "Left out 1 file that is not a DICOM image.",
        "Left out 1 DICOM file that holds no readable image.",
        "Left out 1 file too large for one film.",
        "Left out 1 copy of a file already listed.",
        "Did not follow 1 link to other places on the disk.",
    )


def test_the_chosen_series_come_one_file_at_a_time_and_decode(disc: Path, tmp_path: Path) -> None:
    archive = zip_folder(disc, tmp_path / "cd.zip")
    listing = list_media(archive, LIMITS)
    images = iter_images(archive, listing.preselected, LIMITS)
    first = next(images)
    assert first.series.uid == f"{OLD_STUDY}.1" and first.instance.instance_number == 1
    rest = list(images)
    assert [image.series.uid for image in rest] == [
        f"{OLD_STUDY}.1",
        f"{CHEST_STUDY}.1",
        f"{CHEST_STUDY}.2",
    ]
    for image in (first, *rest):
        scan = decode_scan(image.data)
        assert scan.pixels.shape == (80, 96)
        assert scan.metadata.view == (image.instance.view or scan.metadata.view)


def test_a_changed_source_is_refused_at_import(disc: Path) -> None:
    listing = list_media(disc, LIMITS)
    (disc / listing.preselected[0].instances[0].location).write_bytes(b"changed")
    with pytest.raises(MediaError, match="changed since it was read"):
        list(iter_images(disc, listing.preselected, LIMITS))


def test_limits_come_from_the_settings() -> None:
    settings = load_settings(
        {"ARCHIVE_MAX_MB": "700", "ARCHIVE_MAX_FILES": "500", "ARCHIVE_MAX_RATIO": "20"}
    )
    assert MediaLimits.from_settings(settings) == MediaLimits(
        max_total_bytes=700 * 1024 * 1024,
        max_files=500,
        max_ratio=20,
        max_file_bytes=settings.max_upload_bytes,
    )
    defaults = load_settings({})
    assert (defaults.archive_max_files, defaults.archive_max_ratio) == (10_000, 100)
    assert defaults.archive_max_bytes == 1024 * 1024 * 1024


# --------------------------------------------------------------------------- hostile archives


def _zip(members: dict[str, bytes], **info: object) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            entry = zipfile.ZipInfo(name)
            entry.compress_type = zipfile.ZIP_DEFLATED
            for key, value in info.items():
                setattr(entry, key, value)
            archive.writestr(entry, data)
    return buffer.getvalue()


def _encrypted(archive: bytes) -> bytes:
    """The archive with every member flagged as encrypted (bit 0 of the general purpose flag,
    in the local header and the central directory), which zipfile cannot write itself."""
    data = bytearray(archive)
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.find(signature)
        while at >= 0:
            data[at + offset] |= 0x1
            at = data.find(signature, at + 4)
    return bytes(data)


def _with_declared_count(archive: bytes, count: int) -> bytes:
    """The archive with its end of central directory record claiming ``count`` members."""
    at = archive.rindex(b"PK\x05\x06")
    counts = struct.pack("<HH", count, count)
    return archive[: at + 8] + counts + archive[at + 12 :]


_FILM = film_bytes(_pixels())

_HOSTILE: list[tuple[str, Callable[[], bytes], str]] = [
    ("parent-folder", lambda: _zip({"../../etc/cron.d/x.dcm": _FILM}), "outside itself"),
    ("absolute-path", lambda: _zip({"/etc/x.dcm": _FILM}), "outside itself"),
    ("windows-drive", lambda: _zip({"C:/Windows/x.dcm": _FILM}), "outside itself"),
    ("backslashes", lambda: _zip({"cd\\..\\..\\x.dcm": _FILM}), "outside itself"),
    (
        "symlink",
        lambda: _zip(
            {"IM1": b"/etc/passwd"}, create_system=3, external_attr=(stat.S_IFLNK | 0o777) << 16
        ),
        "link to another file",
    ),
    ("password", lambda: _encrypted(_zip({"IM1": _FILM})), "password"),
    ("ratio-bomb", lambda: _zip({"IM1": bytes(8 * 1024 * 1024)}), "packed far tighter"),
    ("too-many-members", lambda: _zip({f"IM{n}": b"x" for n in range(101)}), "more than 100 files"),
    (
        "declared-too-many",
        lambda: _with_declared_count(_zip({"IM1": _FILM}), 60_000),
        "more than 100 files",
    ),
    # 80 members of 900 kB (each below the ratio floor) unpack to 72 MB.
    ("too-big-unpacked", lambda: _zip({f"IM{n}": bytes(900_000) for n in range(80)}), "64 MB"),
    ("not-a-zip", lambda: _FILM, "not a ZIP archive"),
    ("truncated-zip", lambda: _zip({"IM1": _FILM})[:-30], "not a ZIP archive"),
    ("empty", lambda: b"", "not a ZIP archive"),
]


@pytest.mark.parametrize(
    ("build", "words"), [case[1:] for case in _HOSTILE], ids=[case[0] for case in _HOSTILE]
)
def test_hostile_archives_are_refused_before_anything_is_read(
    build: Callable[[], bytes], words: str
) -> None:
    with pytest.raises(MediaError, match=words) as caught:
        list_media(io.BytesIO(build()), LIMITS)
    message = str(caught.value)
    assert message.endswith(".") and "\n" not in message and message.count(". ") == 0


def test_a_cd_sized_archive_is_streamed_not_held_in_memory(tmp_path: Path) -> None:
    # 24 films of 2 MB (noise: nothing to pack) in a 48 MB archive; listing and reading
    # every film must never hold more than a couple of them at once.
    archive = tmp_path / "cd.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as out:
        for number in range(24):
            pixels = _pixels(number, (1024, 1024))
            out.writestr(f"DICOM/IM{number:06}", film_bytes(pixels, InstanceNumber=number))
    assert archive.stat().st_size > 48 * 1024 * 1024
    tracemalloc.start()
    try:
        listing = list_media(archive, LIMITS)
        sizes = [len(image.data) for image in iter_images(archive, listing.series, LIMITS)]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(sizes) == 24 and min(sizes) > 2 * 1024 * 1024
    assert peak < 3 * max(sizes)
