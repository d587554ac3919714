"""Radiographic projections (views) of a chest film, and which of them the model can score.

PA, AP and AP supine are all frontal films but differ systematically (magnification of the
heart, position of the scapulae, fluid layering when supine), so a series is compared only
within one projection. Laterals are kept in the record but never scored by the frontal model.
"""

from __future__ import annotations

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
