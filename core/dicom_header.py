"""Reading a DICOM header safely, and whether the object it describes is a chest radiograph.

Shared by the decoder (:mod:`core.imaging`), which refuses a file that says it is not a chest
film, and by the reader of CDs and archives (:mod:`core.dicom_media`), which lists series
without decoding them. Every value read here ends up on screen or in the database, so text is
kept only when it is short and printable, and dates and ages only when they are valid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

import pydicom
from pydicom.uid import UID

from core.views import View, view_from_header

#: Longest DICOM text value kept: LO, the longest VR read here, allows 64 characters.
MAX_TEXT_LENGTH = 64

#: DICOM Modality (0008,0060) values of projection radiographs: the films the app keeps.
RADIOGRAPH_MODALITIES = frozenset({"CR", "DX", "RG"})

#: Other image modalities, as a patient would name a series of them (plural).
_IMAGE_MODALITY_KINDS: dict[str, str] = {
    "CT": "CT scans",
    "MR": "MRI scans",
    "US": "ultrasound images",
    "NM": "nuclear medicine scans",
    "PT": "PET scans",
    "MG": "mammograms",
    "XA": "angiograms",
    "RF": "fluoroscopy images",
    "IO": "dental X-rays",
    "PX": "dental X-rays",
    "OP": "eye photographs",
    "XC": "photographs",
    "ES": "endoscopy images",
    "SM": "microscope slides",
}

#: Objects that hold no image, by Modality (0008,0060): (one, several), as a patient would
#: read them.
_DOCUMENT_KINDS: dict[str, tuple[str, str]] = {
    "SR": ("a structured report (text, not an image)", "structured reports (text, not images)"),
    "PR": (
        "a presentation state (display settings, not an image)",
        "presentation states (display settings, not images)",
    ),
    "KO": (
        "a key-object selection (a list of chosen images, not an image)",
        "key-object selections (lists of chosen images, not images)",
    ),
    "DOC": ("a document, not an image", "documents, not images"),
}

#: Words in a SOP Class UID's name (0008,0016) that mark an object without an image, with the
#: Modality code of that kind; used when Modality is absent or wrong.
_DOCUMENT_SOP_WORDS: tuple[tuple[str, str], ...] = (
    (" SR ", "SR"),
    ("Presentation State", "PR"),
    ("Key Object Selection", "KO"),
    ("Encapsulated", "DOC"),
)

#: Body Part Examined (0018,0015) words that mean a chest film (DICOM PS3.16 Annex L terms and
#: common writer variants); a value with any of them is a chest whatever else it names.
_CHEST_WORDS = frozenset({"CHEST", "THORAX", "TORAX", "LUNG", "LUNGS", "PORTCHEST"})
#: Words that start a combined Annex L term covering the chest (CHESTABDOMEN, CHEST_TO_PELVIS).
_CHEST_PREFIX = "CHEST"

#: Body Part Examined terms (PS3.16 Annex L and common variants) of other parts of the body,
#: in the words a patient uses. A value not listed here is not refused: the model's own
#: check judges the image.
_OTHER_BODY_PARTS: dict[str, str] = {
    "ABDOMEN": "the abdomen",
    "ABDOMENPELVIS": "the abdomen and pelvis",
    "ANKLE": "an ankle",
    "ARM": "an arm",
    "BREAST": "a breast",
    "CLAVICLE": "a collarbone",
    "COCCYX": "the tailbone",
    "CSPINE": "the neck (cervical spine)",
    "ELBOW": "an elbow",
    "EXTREMITY": "an arm or a leg",
    "FACE": "the face",
    "FEMUR": "a thigh",
    "FINGER": "a finger",
    "FOOT": "a foot",
    "FOREARM": "a forearm",
    "HAND": "a hand",
    "HEAD": "the head",
    "HEEL": "a heel",
    "HIP": "the hip",
    "HUMERUS": "an upper arm",
    "JAW": "the jaw",
    "KNEE": "a knee",
    "LEG": "a leg",
    "LSPINE": "the lower back (lumbar spine)",
    "MANDIBLE": "the jaw",
    "NECK": "the neck",
    "PELVIS": "the pelvis",
    "SACRUM": "the sacrum",
    "SHOULDER": "a shoulder",
    "SINUS": "the sinuses",
    "SKULL": "the skull",
    "SPINE": "the spine",
    "SSPINE": "the sacrum",
    "TIBIA": "a shin",
    "TLSPINE": "the spine",
    "TOE": "a toe",
    "TSPINE": "the upper back (thoracic spine)",
    "WHOLEBODY": "the whole body",
    "WRIST": "a wrist",
}

_WORD_SPLIT = re.compile(r"[^A-Z]+")


@dataclass(frozen=True)
class OutOfScope:
    """Why a DICOM object is not a chest radiograph, as its header says.

    Attributes:
        kind: ``"body_part"`` (Body Part Examined (0018,0015) names another part) or
            ``"document"`` (an object that holds no image: SR, PR, KO...).
        code: The Body Part Examined term (``"HIP"``) or the Modality code of the object's
            kind (``"SR"``).
        what: Plain words: the part shown (``"the hip"``) or the kind of object
            (``"a structured report (text, not an image)"``).
    """

    kind: str
    code: str
    what: str

    @property
    def sentence(self) -> str:
        """One sentence for the patient, e.g. "This is not a chest X-ray: the file says it
        shows the hip."."""
        if self.kind == "body_part":
            return f"This is not a chest X-ray: the file says it shows {self.what}."
        return f"This is not a chest X-ray: it is {self.what}."


def out_of_scope(dataset: pydicom.Dataset, *, has_pixels: bool = True) -> OutOfScope | None:
    """Whether the header says the object is something other than a chest radiograph.

    An object without Pixel Data is named by its Modality (0008,0060) or, failing that, its
    SOP Class UID (0008,0016): structured report, presentation state, key-object selection,
    document. An image is out of scope when Body Part Examined (0018,0015) names another part
    of the body (hip, extremity, skull...). Image modalities other than radiography (CT, MR...)
    are not judged here: a decodable CT or MR slice is refused after decoding, with the other
    checks that look at the image (``core.scope``); :func:`other_modality_kind` names them
    for a listing.

    Args:
        dataset: The header (pixels need not be read).
        has_pixels: Whether the object carries Pixel Data (7FE0,0010); ``False`` when it was
            read without it and the caller knows there is none.

    Returns:
        The reason, or ``None`` when the header does not rule a chest film out.
    """
    document = document_kind(dataset)
    if document is not None or not has_pixels:
        return document
    return body_part_out_of_scope(dicom_text(dataset, "BodyPartExamined"))


def document_kind(dataset: pydicom.Dataset) -> OutOfScope | None:
    """The kind of an object that holds no image (SR, PR, KO, encapsulated document), if it is one.

    Args:
        dataset: The header: Modality (0008,0060), else SOP Class UID (0008,0016) or the File
            Meta Media Storage SOP Class UID (0002,0002).

    Returns:
        The object's kind, or ``None`` for an image (or an object the header does not name).
    """
    modality = (dicom_text(dataset, "Modality") or "").upper()
    if modality not in _DOCUMENT_KINDS:
        modality = _document_code_of_sop_class(dataset) or ""
    if modality not in _DOCUMENT_KINDS:
        return None
    return OutOfScope("document", modality, _DOCUMENT_KINDS[modality][0])


def documents_phrase(code: str, count: int) -> str:
    """A count of objects of one document kind in words.

    Args:
        code: The kind's Modality code (:attr:`OutOfScope.code` of a ``"document"``).
        count: How many.

    Returns:
        ``"a structured report (text, not an image)"`` for one, ``"3 structured reports
        (text, not images)"`` for three.
    """
    one, several = _DOCUMENT_KINDS[code]
    return one if count == 1 else f"{count} {several}"


def other_modality_kind(modality: str | None) -> str | None:
    """What images of a Modality (0008,0060) other than projection radiography are called.

    Args:
        modality: The Modality code; ``None`` (absent) is not refused.

    Returns:
        The kind in the plural (``"CT"`` -> ``"CT scans"``, an unknown code ``"XY"`` ->
        ``"XY images"``), or ``None`` for CR, DX, RG or an absent modality.
    """
    code = (modality or "").strip().upper()
    if not code or code in RADIOGRAPH_MODALITIES:
        return None
    return _IMAGE_MODALITY_KINDS.get(code, f"{code} images")


def body_part_out_of_scope(body_part: str | None) -> OutOfScope | None:
    """Whether Body Part Examined (0018,0015) names a part of the body other than the chest.

    Args:
        body_part: The value as read (``"HIP"``, ``"L KNEE"``, ``"CHEST_TO_PELVIS"``).

    Returns:
        The reason with the part in plain words, or ``None`` when the value is absent, names
        the chest, or is not a term this module knows.
    """
    words = [word for word in _WORD_SPLIT.split((body_part or "").upper()) if word]
    if any(word in _CHEST_WORDS or word.startswith(_CHEST_PREFIX) for word in words):
        return None
    for word in words:
        if word in _OTHER_BODY_PARTS:
            return OutOfScope("body_part", word, _OTHER_BODY_PARTS[word])
    return None


def mentions_chest(*texts: str | None) -> bool:
    """Whether any text (a body part, a series or study description) names the chest."""
    return any(
        word in _CHEST_WORDS or word.startswith(_CHEST_PREFIX)
        for text in texts
        for word in _WORD_SPLIT.split((text or "").upper())
        if word
    )


def _document_code_of_sop_class(dataset: pydicom.Dataset) -> str | None:
    uid = dataset.get("SOPClassUID") or dataset.get("file_meta", {}).get("MediaStorageSOPClassUID")
    name = f" {UID(str(uid)).name} " if uid else ""
    return next((code for words, code in _DOCUMENT_SOP_WORDS if words in name), None)


# --------------------------------------------------------------------------- values


def dicom_text(dataset: pydicom.Dataset, keyword: str) -> str | None:
    """A short printable text attribute; ``None`` when absent, oversized or with control
    characters (a hostile file must not put megabytes or line breaks on screen).

    Args:
        dataset: The header.
        keyword: The attribute's keyword, e.g. ``"BodyPartExamined"``.

    Returns:
        The stripped text, at most :data:`MAX_TEXT_LENGTH` characters, or ``None``.
    """
    value = dataset.get(keyword)
    if isinstance(value, bytes):
        # pydicom leaves a value it could not decode as bytes; never show its repr.
        return None
    text = str(value).strip() if value is not None else ""
    if len(text) > MAX_TEXT_LENGTH or not text.isprintable():
        return None
    return text or None


def dicom_date(value: Any) -> date | None:
    """Parse a DICOM DA value ``YYYYMMDD`` (the old ``YYYY.MM.DD`` too); invalid gives ``None``."""
    text = str(value or "").strip().replace(".", "")
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


def dicom_age(value: Any) -> int | None:
    """Parse a DICOM AS value (``'045Y'``, ``'006M'``...) into whole years.

    A bare number (some writers omit the unit) is read as years; over 150 gives ``None``.
    """
    text = str(value or "").strip().upper()
    if not text:
        return None
    unit = text[-1] if text[-1] in "DWMY" else "Y"
    number = text[:-1] if text[-1] in "DWMY" else text
    if not number.isdigit():
        return None
    years = {"D": 365, "W": 52, "M": 12, "Y": 1}[unit]
    age = int(number) // years
    return age if age <= 150 else None


def _orientation_values(dataset: pydicom.Dataset) -> list[str]:
    orientation = dataset.get("PatientOrientation")
    if isinstance(orientation, str):
        return [orientation] if orientation else []
    return [str(value) for value in orientation or []]


def dicom_orientation(dataset: pydicom.Dataset) -> tuple[str, str] | None:
    """Patient Orientation (0020,0020): the directions of the image's rows and columns.

    Returns:
        ``(row direction, column direction)``, e.g. ``("L", "F")`` for a frontal chest film
        seen as if facing the patient; ``None`` unless the header gives both.
    """
    values = _orientation_values(dataset)
    return (values[0], values[1]) if len(values) == 2 and all(values) else None


def dicom_view(dataset: pydicom.Dataset) -> View | None:
    """The projection the header states (see :func:`core.views.view_from_header`).

    Reads View Position (0018,5101), Patient Orientation (0020,0020), Patient Position
    (0018,5100) and the Series Description (0008,103E), Protocol Name (0018,1030) and Study
    Description (0008,1030).
    """
    descriptions = [
        text
        for keyword in ("SeriesDescription", "ProtocolName", "StudyDescription")
        if (text := dicom_text(dataset, keyword)) is not None
    ]
    return view_from_header(
        dicom_text(dataset, "ViewPosition"),
        _orientation_values(dataset),
        dicom_text(dataset, "PatientPosition"),
        descriptions,
    )
