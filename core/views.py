"""Radiographic projections (views) of a chest film, and which of them the model can score.

PA, AP and AP supine are all frontal films but differ systematically (magnification of the
heart, position of the scapulae, fluid layering when supine), so a series is compared only
within one projection. Laterals are kept in the record but never scored by the frontal model.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum


class View(StrEnum):
    """The projection of one film, as stored with every scan."""

    PA = "PA"
    AP = "AP"
    AP_SUPINE = "AP supine"
    LATERAL = "lateral"
    UNKNOWN = "unknown"


#: Words shown to users for each view (labels, pickers, tables).
VIEW_LABELS: dict[View, str] = {
    View.PA: "Frontal (PA, standing)",
    View.AP: "Frontal (AP)",
    View.AP_SUPINE: "Frontal (AP, lying down)",
    View.LATERAL: "Side (lateral)",
    View.UNKNOWN: "Not known",
}

#: Views the frontal model may score.
FRONTAL_VIEWS: frozenset[View] = frozenset({View.PA, View.AP, View.AP_SUPINE})


def parse_view(value: str) -> View:
    """The view named by ``value`` (its stored value, case-insensitive).

    Raises:
        ValueError: ``value`` names no view.
    """
    wanted = value.strip().lower()
    for view in View:
        if view.value.lower() == wanted:
            return view
    raise ValueError(f"Unknown view {value!r}; choose one of: {', '.join(v.value for v in View)}.")


def is_frontal(view: View | str) -> bool:
    """Whether the frontal model may score a film of this view."""
    return View(view) in FRONTAL_VIEWS


#: Said wherever a side view appears without scores (upload, timeline, report, command line).
NOT_SCORED_SENTENCE = (
    "Side (lateral) views are kept in your record but not scored: "
    "the model was trained on frontal films only."
)

#: Said wherever a scan of unknown view appears without scores.
UNKNOWN_NOT_SCORED_SENTENCE = (
    "This scan's view was not confirmed, so it is kept in your record but not scored: "
    "choose its view (frontal or side) to have a frontal film scored."
)

#: View Position (0018,5101) defined terms (DICOM PS3.3 C.8.11.5 / C.8.1.1) and common writer
#: variants, mapped to the projection they name. Decubitus (RLD, LLD) and oblique (RLO, LLO)
#: films are neither of the standard frontal projections nor a true lateral, so they stay
#: unknown (and unscored) unless the uploader says otherwise.
_VIEW_POSITION_TERMS: dict[str, View] = {
    "PA": View.PA,
    "AP": View.AP,
    "LL": View.LATERAL,
    "RL": View.LATERAL,
    "LAT": View.LATERAL,
    "LATERAL": View.LATERAL,
    "LLAT": View.LATERAL,
    "RLAT": View.LATERAL,
    "RLD": View.UNKNOWN,
    "LLD": View.UNKNOWN,
    "RLO": View.UNKNOWN,
    "LLO": View.UNKNOWN,
}

#: Patient Position (0018,5100) terms ending in S (HFS, FFS, LFS, RFS) mean lying face up.
_SUPINE_POSITIONS = frozenset({"HFS", "FFS", "LFS", "RFS"})


def view_from_header(
    view_position: str | None,
    patient_orientation: Sequence[str] = (),
    patient_position: str | None = None,
    descriptions: Sequence[str] = (),
) -> View | None:
    """The view a DICOM header states, or ``None`` when it does not say which projection.

    View Position (0018,5101) decides; where it is empty, the first value of Patient
    Orientation (0020,0020), the patient direction of the image rows, tells a lateral (A or P:
    rows run front to back) from a frontal film (L or R), but not PA from AP, so an
    orientation-only frontal film is AP supine when the header says the patient lay supine and
    otherwise undetermined. An AP film is AP supine when Patient Position (0018,5100) is a
    supine term (HFS, FFS...) or a description (series, protocol, study) contains "SUPINE".

    Args:
        view_position: View Position (0018,5101), e.g. ``"PA"``, ``"LL"``.
        patient_orientation: Patient Orientation (0020,0020) values, e.g. ``("L", "F")``.
        patient_position: Patient Position (0018,5100), e.g. ``"HFS"``.
        descriptions: Free-text descriptions (Series Description, Protocol Name...).

    Returns:
        The view, ``View.UNKNOWN`` for a stated projection outside the five (decubitus,
        oblique, an unrecognised term), or ``None`` when the header gives no projection.
    """
    supine = (patient_position or "").strip().upper() in _SUPINE_POSITIONS or any(
        "SUPINE" in text.upper() for text in descriptions
    )
    term = (view_position or "").strip().upper()
    if term:
        view = _VIEW_POSITION_TERMS.get(term, View.UNKNOWN)
        return View.AP_SUPINE if view is View.AP and supine else view
    rows = patient_orientation[0].strip().upper() if patient_orientation else ""
    if rows in {"A", "P"}:
        return View.LATERAL
    if rows in {"L", "R"} and supine:
        return View.AP_SUPINE
    return None
