"""Real chest films wrapped as DICOM CR files, as a hospital's PACS holds them.

The pixels are real radiographs (``external/serial_adults`` of the shared data); the header is
what a CR modality writes: patient, study, series and instance identity, dates, view. Used by
the FHIR, DICOM SR and PACS tests and by ``benchmarks/bench_interop.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom.uid import generate_uid

from tests.dicom_files import film_dataset, to_bytes

#: Real adult chest films of the shared data (frontal unless named in SIDE_FILMS).
SERIAL = "external/serial_adults"
#: Films of that folder that are side (lateral) views.
SIDE_FILMS = frozenset({"p13_day04_5.png"})


@dataclass(frozen=True)
class Film:
    """One DICOM film and the identity it was written with."""

    name: str
    data: bytes
    study_uid: str
    series_uid: str
    sop_uid: str


def frontal_films(shared_data: Path) -> list[Path]:
    """The frontal films of :data:`SERIAL`, by name."""
    return sorted(p for p in (shared_data / SERIAL).glob("*.png") if p.name not in SIDE_FILMS)


def film(
    png: Path,
    *,
    patient_id: str = "HOSP-0001",
    study_uid: str | None = None,
    series_uid: str | None = None,
    study_date: date = date(2025, 3, 14),
    view_position: str = "PA",
    instance_number: int = 1,
    series_number: int = 1,
    accession_number: str = "ACC-1",
    modality: str = "CR",
    body_part: str = "CHEST",
    patient_age: str | None = "045Y",
) -> Film:
    """A real PNG film as a DICOM CR file (8 bits, Explicit VR Little Endian), built by
    :func:`tests.dicom_files.film_dataset`.

    Args:
        png: The film.
        patient_id: Patient ID (0010,0020).
        study_uid: Study Instance UID (new when None).
        series_uid: Series Instance UID (new when None).
        study_date: Study Date and Series Date.
        view_position: View Position (0018,5101), e.g. ``PA`` or ``LL``.
        instance_number: Instance Number.
        series_number: Series Number.
        accession_number: Accession Number.
        modality: Modality.
        body_part: Body Part Examined.
        patient_age: Patient's Age, or None to leave it out.

    Returns:
        The file's bytes and identity.
    """
    pixels = np.asarray(Image.open(png).convert("L"), dtype=np.uint8)
    ds = film_dataset(
        pixels,
        bits_stored=8,
        SpecificCharacterSet="ISO_IR 100",
        StudyInstanceUID=study_uid or generate_uid(),
        SeriesInstanceUID=series_uid or generate_uid(),
        StudyDate=study_date.strftime("%Y%m%d"),
        SeriesDate=study_date.strftime("%Y%m%d"),
        AccessionNumber=accession_number,
        Modality=modality,
        Manufacturer="Test",
        ReferringPhysicianName="",
        StudyDescription="XR CHEST",
        SeriesDescription=f"CHEST {view_position}",
        PatientName="Doe^Jane",
        PatientID=patient_id,
        PatientBirthDate="19800101",
        PatientSex="F",
        **({} if patient_age is None else {"PatientAge": patient_age}),
        BodyPartExamined=body_part,
        ViewPosition=view_position,
        SeriesNumber=series_number,
        InstanceNumber=instance_number,
        PatientOrientation="",
    )
    # As these films were always written (pydicom's choice for 8-bit Pixel Data set as bytes).
    ds["PixelData"].VR = "OW"
    return Film(
        name=f"{png.stem}.dcm",
        data=to_bytes(ds),
        study_uid=str(ds.StudyInstanceUID),
        series_uid=str(ds.SeriesInstanceUID),
        sop_uid=str(ds.SOPInstanceUID),
    )
