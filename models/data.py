"""The training data: manifest rows, multi-label targets and patient-grouped splits.

Labels follow the file names of the two public sets (see ``../shared/data/README.md``):
Kermany NORMAL -> all findings 0; bacteria -> pneumonia and bacterial 1; virus ->
pneumonia and viral 1; COVID-radiography COVID -> covid19 1 with the other findings
unknown (masked out of the loss); its Normal -> all 0.
"""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.findings import FINDINGS

#: Share of Kermany train patients carved out for validation (early stopping,
#: temperature scaling, thresholds and the out-of-distribution threshold).
VALIDATION_SHARE = 0.15

_PERSON = re.compile(r"^(person\d+)_")
_NORMAL = re.compile(r"^((?:NORMAL2-)?IM-\d+)-")


@dataclass(frozen=True)
class Example:
    """One labelled radiograph.

    Attributes:
        path: Absolute file path.
        source: ``kermany`` or ``covid_radiography``.
        split: The publisher's split (``train``, ``val``, ``test``).
        patient: Patient group id (file-name based; one image per id where unknown).
        target: Float array (len(FINDINGS),) of 0/1 labels.
        mask: Float array (len(FINDINGS),): 1 where the label is known.
        subtype: ``normal``, ``bacterial``, ``viral`` or ``covid``.
    """

    path: Path
    source: str
    split: str
    patient: str
    target: np.ndarray
    mask: np.ndarray
    subtype: str


def _labels(dataset: str, label: str, subtype: str) -> tuple[list[float], list[float], str]:
    known = [1.0] * len(FINDINGS)
    if dataset == "kermany":
        if label == "NORMAL":
            return [0.0, 0.0, 0.0, 0.0], known, "normal"
        if subtype == "bacterial":
            return [1.0, 1.0, 0.0, 0.0], known, "bacterial"
        return [1.0, 0.0, 1.0, 0.0], known, "viral"
    if label == "COVID":
        # A COVID-19 pneumonia is a pneumonia, but these images carry no bacterial/viral
        # labels of the Kermany kind, so only covid19 is trained on.
        return [0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 1.0], "covid"
    return [0.0, 0.0, 0.0, 0.0], known, "normal"


def patient_id(dataset: str, path: str) -> str:
    """Group id of the patient an image belongs to.

    Args:
        dataset: ``kermany`` or ``covid_radiography``.
        path: Manifest path of the image.

    Returns:
        ``personN`` or ``IM-NNNN`` for Kermany; the file path where a set has no ids.
    """
    name = Path(path).name
    if dataset == "kermany":
        for pattern in (_PERSON, _NORMAL):
            match = pattern.match(name)
            if match:
                return f"kermany:{match.group(1)}"
    return f"{dataset}:{path}"


def load_manifest(shared_dir: Path) -> list[Example]:
    """Read ``manifest.csv`` into labelled examples.

    Args:
        shared_dir: The shared data folder (``Settings.shared_data_dir``).

    Returns:
        Every image of the manifest, in manifest order.

    Raises:
        FileNotFoundError: The manifest is missing.
    """
    examples = []
    with open(shared_dir / "manifest.csv", newline="") as handle:
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
                )
            )
    return examples


def _in_validation(patient: str, seed: int) -> bool:
    # A hash of the patient id, not a shuffle, so the split does not depend on file order.
    digest = hashlib.sha256(f"{seed}:{patient}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < VALIDATION_SHARE


def split_examples(examples: list[Example], seed: int = 0) -> dict[str, list[Example]]:
    """Split into fit / validation / test sets with no patient on two sides.

    Kermany: validation is carved from train by patient, plus the publisher's 16-image
    val split. COVID-radiography has no patient ids; its publisher's val split (a random
    15% of the same pool as train) serves as validation. Test splits are kept apart for
    the final report.

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
        elif example.split == "val":
            splits["validation"].append(example)
        elif example.source == "kermany" and _in_validation(example.patient, seed):
            splits["validation"].append(example)
        else:
            splits["fit"].append(example)
    return splits
