"""The findings the classifier reports, in the model's output order, with plain-language names."""

from __future__ import annotations

FINDINGS: tuple[str, ...] = ("pneumonia", "bacterial_pneumonia", "viral_pneumonia", "covid19")

FINDING_LABELS: dict[str, str] = {
    "pneumonia": "Pneumonia",
    "bacterial_pneumonia": "Bacterial pneumonia",
    "viral_pneumonia": "Viral pneumonia",
    "covid19": "COVID-19 pneumonia",
}

DISCLAIMER = (
    "Decision support only, not a diagnosis: these numbers come from a computer model that can be "
    "wrong, so discuss every result with a qualified clinician."
)
