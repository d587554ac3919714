"""The training data: manifest rows, multi-label targets and patient-grouped splits.

Labels follow the file names of the public sets (see ``../shared/data/README.md``):
Kermany NORMAL -> all findings 0; bacteria -> pneumonia and bacterial 1; virus ->
pneumonia and viral 1; COVID-radiography COVID -> covid19 1 with the other findings
unknown (masked out of the loss); its Normal -> all 0. NIH adult (``nih_adult/labels.csv``)
Pneumonia -> pneumonia 1 and covid19 0 (NIH released the set in 2017, before COVID-19),
bacterial and viral unknown; its No_findings -> all 0.

Each example also carries the patient's population (``models.populations``): Kermany
patients are children aged 1-5, COVID-radiography patients are adults, and NIH films
have the patient's age.
"""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.findings import FINDINGS
from models.populations import ADULT, CHILD, population_for_age

#: Share of Kermany train patients carved out for validation (early stopping,
#: temperature scaling, thresholds and the out-of-distribution threshold).
VALIDATION_SHARE = 0.15
#: The NIH adult listing inside the shared data folder, with age, sex and view per image.
NIH_LABELS = "nih_adult/labels.csv"

_PERSON = re.compile(r"^(person\d+)_")
_NORMAL = re.compile(r"^((?:NORMAL2-)?IM-\d+)-")
#: Where the age is not recorded, the population each source's patients belong to.
_SOURCE_POPULATION = {"kermany": CHILD, "covid_radiography": ADULT}


@dataclass(frozen=True)
class Example:
    """One labelled radiograph.

    Attributes:
        path: Absolute file path.
        source: ``kermany``, ``covid_radiography`` or ``nih_adult``.
        split: The publisher's split (``train``, ``val``, ``test``).
        patient: Patient group id (file-name based; one image per id where unknown).
        target: Float array (len(FINDINGS),) of 0/1 labels.
        mask: Float array (len(FINDINGS),): 1 where the label is known.
        subtype: ``normal``, ``bacterial``, ``viral``, ``covid`` or ``pneumonia`` (NIH, no
            subtype).
        age: The patient's age in years where the source records it.
    """

    path: Path
    source: str
    split: str
    patient: str
    target: np.ndarray
    mask: np.ndarray
    subtype: str
    age: int | None = None

    @property
    def population(self) -> str:
        """``child`` or ``adult``: from the age where known, else from the source."""
        return (
            population_for_age(self.age)
            if self.age is not None
            else _SOURCE_POPULATION[self.source]
        )


def _labels(dataset: str, label: str, subtype: str) -> tuple[list[float], list[float], str]:
    known = [1.0] * len(FINDINGS)
    if dataset == "kermany":
        if label == "NORMAL":
            return [0.0, 0.0, 0.0, 0.0], known, "normal"
        if subtype == "bacterial":
            return [1.0, 1.0, 0.0, 0.0], known, "bacterial"
        return [1.0, 0.0, 1.0, 0.0], known, "viral"
    if dataset == "nih_adult" and label == "Pneumonia":
        # Certain covid19 negatives (2017); NIH labels carry no bacterial/viral subtype.
        return [1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 1.0], "pneumonia"
    if label == "COVID":
        # A COVID-19 pneumonia is a pneumonia, but these images carry no bacterial/viral
        # labels of the Kermany kind, so only covid19 is trained on.
        return [0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 1.0], "covid"
    return [0.0, 0.0, 0.0, 0.0], known, "normal"


def patient_id(dataset: str, path: str) -> str:
    """Group id of the patient an image belongs to.

    Args:
        dataset: ``kermany``, ``covid_radiography`` or ``nih_adult``.
        path: Manifest path of the image.

    Returns:
        ``personN`` or ``IM-NNNN`` for Kermany, the NIH patient number (``<patient>_<follow-up>``
        file names); the file path where a set has no ids.
    """
    name = Path(path).name
    if dataset == "kermany":
        for pattern in (_PERSON, _NORMAL):
            match = pattern.match(name)
            if match:
                return f"kermany:{match.group(1)}"
    if dataset == "nih_adult":
        return f"nih_adult:{int(name.split('_')[0])}"
    return f"{dataset}:{path}"


def _read_rows(shared_dir: Path, listing: str) -> list[Example]:
    examples = []
    with open(shared_dir / listing, newline="") as handle:
        for row in csv.DictReader(handle):
            target, mask, subtype = _labels(row["dataset"], row["label"], row["subtype"])
            examples.append(
                Example(
                    path=shared_dir / row["path"],
                    source=row["dataset"],
                    split=row["split"],
                    patient=patient_id(row["dataset"], row["path"]),
                    target=np.array(target, dtype=np.float32),
                    mask=np.array(mask, dtype=np.float32),
                    subtype=subtype,
                    age=int(row["age"]) if row.get("age") else None,
                )
            )
    return examples


def load_manifest(shared_dir: Path) -> list[Example]:
    """Read ``manifest.csv`` and ``nih_adult/labels.csv`` into labelled examples.

    Args:
        shared_dir: The shared data folder (``Settings.shared_data_dir``).

    Returns:
        Every image of the manifest in manifest order, then the NIH adult images.

    Raises:
        FileNotFoundError: The manifest or the NIH adult listing is missing.
    """
    return _read_rows(shared_dir, "manifest.csv") + _read_rows(shared_dir, NIH_LABELS)


def _in_validation(patient: str, seed: int) -> bool:
    # A hash of the patient id, not a shuffle, so the split does not depend on file order.
    digest = hashlib.sha256(f"{seed}:{patient}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < VALIDATION_SHARE


def split_examples(examples: list[Example], seed: int = 0) -> dict[str, list[Example]]:
    """Split into fit / validation / test sets with no patient on two sides.

    Kermany: validation is carved from train by patient, plus the publisher's 16-image
    val split. COVID-radiography has no patient ids; its publisher's val split (a random
    15% of the same pool as train) serves as validation. NIH adult: the publisher's
    patient-grouped val split. Test splits are kept apart for the final report.

    Args:
        examples: Output of :func:`load_manifest`.
        seed: Seed of the patient hash.

    Returns:
        ``{"fit": [...], "validation": [...], "test": [...]}``.
    """
    splits: dict[str, list[Example]] = {"fit": [], "validation": [], "test": []}
    for example in examples:
        if example.split == "test":
            splits["test"].append(example)
        elif example.split == "val" or (
            example.source == "kermany" and _in_validation(example.patient, seed)
        ):
            splits["validation"].append(example)
        else:
            splits["fit"].append(example)
    return splits
