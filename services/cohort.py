"""The analysts' view of stored results: de-identified counts per group (`storage.cohort`), and
the data-shift monitor: do the scans people store still resemble the training data?"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from core import shift, training_eda
from storage.actor import Actor
from storage.cohort import cohort_summary, shift_sample
from storage.db import Database

__all__ = ["cohort_summary", "shift_report", "training_shift_reference"]


def training_shift_reference(root: Path) -> shift.ShiftSample:
    """The training side of the comparison, from a seeded sample of the public training data.

    Slow (it reads images); pages cache it.

    Args:
        root: The shared data folder (``Settings.shared_data_dir``).

    Returns:
        Observations of the training split.

    Raises:
        core.eda.DatasetUnavailable: The training data folder is absent.
    """
    manifest = training_eda.load_manifest(root)
    per_image, _ = training_eda.intensity_statistics(root, training_eda.sample_per_class(manifest))
    return shift.training_reference(manifest, per_image)


def shift_report(db: Database, actor: Actor, reference: shift.ShiftSample) -> pd.DataFrame | None:
    """Compare the stored scans with the training data, one test per quantity.

    Args:
        db: Database handle.
        actor: An analyst.
        reference: Output of :func:`training_shift_reference`.

    Returns:
        One row per quantity with its test, p-value and verdict (see
        :func:`core.shift.shift_table`), or ``None`` when too few people stored scans to
        compare without singling anyone out.

    Raises:
        storage.policy.AccessDenied: The actor is not an active analyst.
    """
    current = shift_sample(db, actor)
    if current is None:
        return None
    return shift.shift_table(shift.compare(reference, current))
