"""Measure saturation and the model's own noise on validation films: ``python -m models.noise``.

How often do probabilities sit within 0.02 of 0 or 1 on adult films, and how much do the
calibrated log-odds move when the same film is re-encoded as JPEG, cropped by 3% on each
side or re-exposed (gamma 0.8 and 1.25)? The :data:`NOISE_QUANTILE` of the absolute
changes is the finding's noise band: a change between two films of the same projection
larger than it is beyond the model's noise. Writes ``models/noise.json``. Validation films
only; the test splits are never read here.
"""

from __future__ import annotations

import argparse
import io
import json
import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from core.findings import FINDINGS
from core.imaging import DecodedScan, decode_scan, to_uint8
from core.settings import load_settings
from models.data import load_manifest, split_examples
from models.inference import Classifier, load_classifier
from models.trajectory import NOISE_PATH, saturated_share

#: Quantile of the noise distribution beyond which a change counts as real.
NOISE_QUANTILE = 0.95
#: Sources whose validation films are measured: adults, the people who follow their films.
SOURCES = ("nih_adult", "covid_radiography")


def _jpeg(pixels: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(to_uint8(pixels)).save(buffer, format="JPEG", quality=quality)
    return decode_scan(buffer.getvalue()).pixels


def _crop(pixels: np.ndarray, share: float) -> np.ndarray:
    rows, cols = (max(1, int(round(side * share))) for side in pixels.shape)
    return pixels[rows:-rows, cols:-cols]


#: The same film, acquired or exported slightly differently.
PERTURBATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "jpeg_quality_75": lambda pixels: _jpeg(pixels, 75),
    "crop_3_percent": lambda pixels: _crop(pixels, 0.03),
    "gamma_0.8": lambda pixels: pixels**0.8,
    "gamma_1.25": lambda pixels: pixels**1.25,
}


def noise_summary(deltas: np.ndarray) -> dict[str, float]:
    """Median, :data:`NOISE_QUANTILE` and maximum of absolute log-odds changes."""
    deltas = np.abs(np.asarray(deltas))
    return {
        "median": float(np.median(deltas)),
        "band": float(np.quantile(deltas, NOISE_QUANTILE)),
        "max": float(deltas.max()),
    }


def measure(
    classifier: Classifier, scans: list[DecodedScan], populations: list[str], sources: list[str]
) -> dict:
    """Saturation and noise of one checkpoint on some validation films.

    Args:
        classifier: The loaded classifier.
        scans: Decoded validation films.
        populations: Each patient's population (``models.data.Example.population``).
        sources: Each film's source.

    Returns:
        ``saturation`` (share of saturated probabilities per source and finding), ``noise``
        per finding (``median``, ``band``, ``max`` of |change in log-odds| over all
        perturbations) and ``noise_by_perturbation``.
    """
    baseline = classifier.predict(scans, populations=populations)
    result: dict = {"saturation": {}, "noise_by_perturbation": {}}
    for source in SOURCES:
        rows = [p for p, s in zip(baseline, sources, strict=True) if s == source]
        result["saturation"][source] = {
            f: saturated_share(np.array([p.probabilities[f] for p in rows])) for f in FINDINGS
        }
    deltas: dict[str, list[float]] = {f: [] for f in FINDINGS}
    for name, perturb in PERTURBATIONS.items():
        changed = [
            DecodedScan(pixels=perturb(scan.pixels).astype(np.float32), metadata=scan.metadata)
            for scan in scans
        ]
        moved = classifier.predict(changed, populations=populations)
        result["noise_by_perturbation"][name] = {}
        for finding in FINDINGS:
            pairs = zip(moved, baseline, strict=True)
            change = np.array([m.log_odds[finding] - b.log_odds[finding] for m, b in pairs])
            deltas[finding].extend(change.tolist())
            result["noise_by_perturbation"][name][finding] = noise_summary(change)
    result["noise"] = {f: noise_summary(np.array(values)) for f, values in deltas.items()}
    return result


def main(argv: list[str] | None = None) -> int:
    """Measure saturation and noise on validation films and write ``models/noise.json``."""
    parser = argparse.ArgumentParser(
        description="Measure saturation and noise on validation films."
    )
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument(
        "--per-source", type=int, default=150, help="validation films drawn per source"
    )
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--out", type=Path, default=NOISE_PATH)
    args = parser.parse_args(argv)
    classifier = load_classifier(args.checkpoint)
    validation = split_examples(load_manifest(load_settings().shared_data_dir), seed=args.seed)[
        "validation"
    ]
    rng = random.Random(args.seed)
    chosen = []
    for source in SOURCES:
        films = [e for e in validation if e.source == source]
        chosen += rng.sample(films, min(args.per_source, len(films)))
    scans = [decode_scan(e.path.read_bytes(), str(e.path)) for e in chosen]
    result = measure(classifier, scans, [e.population for e in chosen], [e.source for e in chosen])
    result["model"] = {"version": classifier.info.version, "sha256": classifier.info.sha256}
    result["films"] = {source: sum(e.source == source for e in chosen) for source in SOURCES}
    result["perturbations"] = list(PERTURBATIONS)
    args.out.write_text(json.dumps(result, indent=2))
    bands = {f: round(v["band"], 3) for f, v in result["noise"].items()}
    print(
        f"saturation {json.dumps(result['saturation'])}; "
        f"noise bands (log-odds) {json.dumps(bands)}; wrote {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
