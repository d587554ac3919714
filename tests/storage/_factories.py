"""Small builders of realistic records for the storage tests."""

from __future__ import annotations

from datetime import date

import numpy as np

from storage.actor import Actor
from storage.db import Database
from storage.pixels import quantise
from storage.results import ResultIn
from storage.scans import save_scan


def sample_result(pneumonia: float = 0.8, version: str = "1.0.0") -> ResultIn:
    """A plausible classifier output."""
    return ResultIn(
        probabilities={
            "pneumonia": pneumonia,
            "bacterial_pneumonia": 0.3,
            "viral_pneumonia": 0.2,
            "covid19": 0.05,
        },
        model_name="densenet121-cxr",
        model_version=version,
        checkpoint_sha256="ab" * 32,
        abstained=False,
        abstain_reason=None,
        ood_score=0.12,
        thresholds={
            "pneumonia": 0.5,
            "bacterial_pneumonia": 0.5,
            "viral_pneumonia": 0.5,
            "covid19": 0.5,
        },
    )


def sample_pixels(seed: int = 0, size: int = 32) -> np.ndarray:
    """A small float32 image in [0, 1], on the 16-bit steps the store keeps (reads back exactly)."""
    return quantise(np.random.default_rng(seed).random((size, size), dtype=np.float32))


def save_sample_scan(
    db: Database,
    actor: Actor,
    *,
    scan_date: date = date(2024, 3, 14),
    filename: str = "chest_front.png",
    with_result: bool = True,
    seed: int = 0,
) -> int:
    """Store a small scan for ``actor`` and return its id."""
    return save_scan(
        db,
        actor,
        pixels=sample_pixels(seed),
        metadata={
            "source_format": "png",
            "modality": None,
            "patient_age": 52,
            "patient_sex": "F",
            "width": 32,
            "height": 32,
        },
        enhancement={"clahe": True, "clip_limit": 0.01},
        scan_date=scan_date,
        filename=filename,
        result=sample_result() if with_result else None,
    )
