"""Benchmark: the classifier on the CPU, against torchvision's DenseNet-121 as a reference.

Measured in one run, with the app server's torch thread count
(``Settings.inference_threads``, ``INFERENCE_THREADS``, 1 by default) unless
``--threads`` says otherwise:

* model load time (``models.inference.load_classifier``);
* single-image end-to-end latency for the real CR DICOM sample and an NIH PNG
  sample: decode + default enhancement (for display) + classify the decoded
  pixels + Grad-CAM heatmap of the top finding: the median and the fastest of
  ``--repeats`` runs (15 by default, after one untimed run), and each step's median;
* throughput of ``Classifier.predict`` on a 64-image batch (preprocessing
  from the decoded 1024x1024 images included) and of the bare forward pass;
* the same latency and throughput for torchvision's ``densenet121`` at 224 px
  (random weights, 4 outputs, the grayscale input replicated to 3 channels so
  that the architecture is the standard one), wrapped the same way (same
  preprocessing function, sigmoid, Grad-CAM on the last dense block);
* FLOPs of one forward pass (``torch.utils.flop_counter.FlopCounterMode``,
  which counts convolutions and matrix products, a multiply-add being two
  FLOPs; batch norm, ReLU and pooling are not counted) and the ratio of the
  measured forward time to the FLOP-bound time at the CPU's measured float32
  matrix-multiply rate (2048x2048 ``torch.mm``, same thread count).

The CPU is shared with whatever else runs on the machine (a training job,
other tests), so the figures are medians and only the ratios between rows of
the same run are meaningful; the fastest run shows what the code costs when the
machine is quiet.

Run: ``.venv/bin/python benchmarks/bench_model.py [--checkpoint PATH] [--latency-only]
[--repeats N]``; the checkpoint defaults to ``Settings.checkpoint_path``
(``MODEL_CHECKPOINT``). Takes a few minutes on two cores, mostly DenseNet-121's
batches; ``--latency-only`` (load time and the classifier's latency) takes seconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models import densenet121

if __package__ in (None, ""):
    # Run as a script: make the project importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._timing import median_seconds, run_seconds
from core.enhance import EnhanceSettings, enhance
from core.findings import FINDINGS, heatmap_finding
from core.imaging import DecodedScan, decode_scan
from core.settings import load_settings
from models.checkpoint import load_checkpoint
from models.inference import Classifier, load_classifier
from models.preprocess import INPUT_SIZE, preprocess

BATCH = 64
REFERENCE_SIZE = 224
#: Runs of each latency measurement (one upload takes about a tenth of a second).
_LATENCY_REPEATS = 15
_THROUGHPUT_REPEATS = 2
#: Images in the warm-up call before timing a batch (a full DenseNet batch takes ~45 s).
_WARM_UP_BATCH = 4
_LOAD_REPEATS = 3
_MATMUL_SIDE = 2048
_NIH_PNG = "00000001_000.png"
_DICOM = "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"
_CPU = torch.device("cpu")


def _row(benchmark: str, value: float, unit: str) -> dict:
    return {"benchmark": f"model: {benchmark}", "value": value, "unit": unit}


class _DenseNetReference:
    """DenseNet-121 (random weights) behind the same predict/heatmap steps as the classifier."""

    def __init__(self) -> None:
        torch.manual_seed(0)
        self.model = densenet121(weights=None, num_classes=len(FINDINGS)).eval()

    def inputs(self, scans: list[DecodedScan]) -> torch.Tensor:
        batch = torch.stack([preprocess(scan.pixels, REFERENCE_SIZE) for scan in scans])
        return batch.expand(-1, 3, -1, -1)

    def _feature_map(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.model.features(x))

    def predict(self, scans: list[DecodedScan]) -> np.ndarray:
        with torch.inference_mode():
            logits = self.model.classifier(self._feature_map(self.inputs(scans)).mean(dim=(2, 3)))
            return torch.sigmoid(logits).numpy()

    def heatmap(self, scan: DecodedScan, finding: str) -> np.ndarray:
        with torch.enable_grad():
            feature_map = self._feature_map(self.inputs([scan])).detach().requires_grad_(True)
            logit = self.model.classifier(feature_map.mean(dim=(2, 3)))[0, FINDINGS.index(finding)]
            (gradient,) = torch.autograd.grad(logit, feature_map)
        cam = F.relu(
            (gradient.mean(dim=(2, 3), keepdim=True) * feature_map).sum(dim=1, keepdim=True)
        )
        cam = F.interpolate(
            cam.detach(), size=scan.pixels.shape, mode="bilinear", align_corners=False
        )
        peak = cam.max()
        return (cam / peak if peak > 0 else cam)[0, 0].numpy()


def _matmul_gflops() -> float:
    """Sustained float32 matrix-multiply rate of this CPU at the current thread count."""
    a = torch.randn(_MATMUL_SIDE, _MATMUL_SIDE)
    b = torch.randn(_MATMUL_SIDE, _MATMUL_SIDE)
    seconds = median_seconds(lambda: torch.mm(a, b), repeats=5)
    return 2 * _MATMUL_SIDE**3 / seconds / 1e9


def _forward_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        model(torch.zeros(input_shape))
    return counter.get_total_flops()


def _sample_scans(samples: Path) -> list[tuple[str, bytes]]:
    cases = []
    for label, name in (("CR DICOM sample", _DICOM), ("NIH PNG sample", _NIH_PNG)):
        path = samples / name
        if not path.is_file():
            raise FileNotFoundError(f"sample {path} is missing; set SHARED_DATA_DIR")
        cases.append((label, path.read_bytes()))
    return cases


def _batch_scans(samples: Path) -> list[DecodedScan]:
    """``BATCH`` decoded scans cycling over every sample PNG/JPEG (the sizes differ)."""
    decoded = [
        decode_scan(path.read_bytes())
        for path in sorted(samples.glob("*.png")) + sorted(samples.glob("*.jpg"))
    ]
    return [decoded[i % len(decoded)] for i in range(BATCH)]


def _latency_rows(
    name: str,
    predict: Callable[[list[DecodedScan]], object],
    heatmap: Callable[[DecodedScan, str], np.ndarray],
    top_finding: Callable[[DecodedScan], str],
    cases: list[tuple[str, bytes]],
    repeats: int,
) -> list[dict]:
    """End-to-end latency of one upload (median and fastest run), and its steps' medians."""
    settings = EnhanceSettings()
    rows = []
    for label, data in cases:
        scan = decode_scan(data)
        finding = top_finding(scan)
        steps = {
            "decode": lambda data=data: decode_scan(data),
            "default enhance": lambda scan=scan: enhance(scan.pixels, settings),
            "classify": lambda scan=scan: predict([scan]),
            "Grad-CAM": lambda scan=scan, finding=finding: heatmap(scan, finding),
        }

        def end_to_end(data: bytes = data, finding: str = finding) -> None:
            decoded = decode_scan(data)
            enhance(decoded.pixels, settings)
            predict([decoded])
            heatmap(decoded, finding)

        size = f"{scan.metadata.width}x{scan.metadata.height}"
        totals = run_seconds(end_to_end, repeats)
        rows.append(
            _row(
                f"{name} end-to-end latency, {label} {size}, median of {repeats}",
                round(statistics.median(totals) * 1000, 1),
                "ms",
            )
        )
        rows.append(
            _row(
                f"{name} end-to-end latency, {label} {size}, fastest of {repeats}",
                round(min(totals) * 1000, 1),
                "ms",
            )
        )
        for step, action in steps.items():
            seconds = median_seconds(action, repeats)
            rows.append(_row(f"{name}   step {step}, {label}", round(seconds * 1000, 1), "ms"))
    return rows


def _throughput_rows(
    name: str,
    predict: Callable[[list[DecodedScan]], object],
    forward: Callable[[torch.Tensor], object],
    inputs: torch.Tensor,
    scans: list[DecodedScan],
    flops_per_image: int,
    gflops: float,
) -> list[dict]:
    """Batch throughput of predict() and of the bare forward pass, and the FLOP-bound ratio."""

    def forward_only(count: int = BATCH) -> None:
        with torch.inference_mode():
            forward(inputs[:count])

    predict_s = median_seconds(
        lambda: predict(scans), _THROUGHPUT_REPEATS, lambda: predict(scans[:_WARM_UP_BATCH])
    )
    forward_s = median_seconds(
        forward_only, _THROUGHPUT_REPEATS, lambda: forward_only(_WARM_UP_BATCH)
    )
    bound_s = flops_per_image * BATCH / (gflops * 1e9)
    return [
        _row(
            f"{name} predict() throughput, batch {BATCH}", round(BATCH / predict_s, 1), "images/s"
        ),
        _row(
            f"{name} forward-pass throughput, batch {BATCH}",
            round(BATCH / forward_s, 1),
            "images/s",
        ),
        _row(
            f"{name} forward time / FLOP-bound time, batch {BATCH}",
            round(forward_s / bound_s, 2),
            "x",
        ),
    ]


def run(
    checkpoint: Path | None = None,
    *,
    latency_only: bool = False,
    repeats: int = _LATENCY_REPEATS,
    threads: int | None = None,
) -> list[dict]:
    """Measure load time, latency, throughput and FLOPs of the classifier and the reference.

    Args:
        checkpoint: Checkpoint to benchmark; defaults to ``Settings.checkpoint_path``.
        latency_only: Measure only the classifier's load time and single-upload latency
            (seconds instead of minutes).
        repeats: Runs of each latency measurement.
        threads: Torch CPU threads; defaults to ``Settings.inference_threads``.

    Returns:
        Rows ``{"benchmark", "value", "unit"}`` for ``benchmarks/run_all.py``.

    Raises:
        ModelUnavailable: The checkpoint is missing or damaged.
        FileNotFoundError: The shared sample images are absent.
    """
    settings = load_settings()
    threads = settings.inference_threads if threads is None else threads
    torch.set_num_threads(threads)
    path = settings.checkpoint_path if checkpoint is None else Path(checkpoint)
    samples = settings.shared_data_dir / "samples"
    cases = _sample_scans(samples)

    rows = [
        _row("CPU threads (torch.set_num_threads; CPU shared with other work)", threads, "threads")
    ]
    load_s = median_seconds(lambda: load_classifier(path), _LOAD_REPEATS)
    rows.append(_row("load_classifier() time", round(load_s * 1000, 1), "ms"))
    # Pinned to the CPU even where load_classifier would pick a GPU.
    loaded = load_checkpoint(path)
    classifier = Classifier(loaded, _CPU)
    ours = f"{classifier.info.name}@{INPUT_SIZE}"

    def ours_top(scan: DecodedScan) -> str:
        probabilities = classifier.predict([scan])[0].probabilities
        return heatmap_finding(probabilities, classifier.info.thresholds)

    rows += _latency_rows(ours, classifier.predict, classifier.heatmap, ours_top, cases, repeats)
    if latency_only:
        return rows
    network = loaded.model  # the network the classifier runs, for FLOPs and the bare forward pass
    reference = _DenseNetReference()

    gflops = _matmul_gflops()
    rows.append(
        _row(
            f"CPU float32 matmul rate ({_MATMUL_SIDE}x{_MATMUL_SIDE} torch.mm)",
            round(gflops, 1),
            "GFLOP/s",
        )
    )
    ours_flops = _forward_flops(network, (1, 1, INPUT_SIZE, INPUT_SIZE))
    reference_flops = _forward_flops(reference.model, (1, 3, REFERENCE_SIZE, REFERENCE_SIZE))
    densenet = f"densenet121@{REFERENCE_SIZE}"
    rows.append(_row(f"{ours} FLOPs per image", round(ours_flops / 1e9, 3), "GFLOP"))
    rows.append(
        _row(
            f"{densenet} FLOPs per image (3-channel input)",
            round(reference_flops / 1e9, 3),
            "GFLOP",
        )
    )

    def reference_top(scan: DecodedScan) -> str:
        return FINDINGS[int(np.argmax(reference.predict([scan])[0]))]

    rows += _latency_rows(
        densenet, reference.predict, reference.heatmap, reference_top, cases, repeats
    )

    scans = _batch_scans(samples)
    ours_inputs = torch.stack([preprocess(scan.pixels, INPUT_SIZE) for scan in scans])
    rows += _throughput_rows(
        ours,
        lambda s: classifier.predict(s, batch_size=BATCH),
        network,
        ours_inputs,
        scans,
        ours_flops,
        gflops,
    )
    rows += _throughput_rows(
        densenet,
        reference.predict,
        reference.model,
        reference.inputs(scans),
        scans,
        reference_flops,
        gflops,
    )
    return rows


def _print_table(rows: list[dict]) -> None:
    from run_all import format_table

    print(format_table([row | {"module": Path(__file__).stem} for row in rows]))
    load = os.getloadavg()
    print(
        f"\nNote: {torch.get_num_threads()} torch threads on {os.cpu_count()} cores, load "
        f"average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; the CPU is shared with whatever "
        "else runs, so absolute figures vary between runs."
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--checkpoint", type=Path, help="checkpoint file (default: Settings.checkpoint_path)"
    )
    parser.add_argument(
        "--latency-only",
        action="store_true",
        help="only the classifier's load time and single-upload latency (seconds, not minutes)",
    )
    parser.add_argument(
        "--repeats", type=int, default=_LATENCY_REPEATS, help="runs of each latency measurement"
    )
    parser.add_argument(
        "--threads", type=int, help="torch CPU threads (default: Settings.inference_threads)"
    )
    arguments = parser.parse_args()
    _print_table(
        run(
            arguments.checkpoint,
            latency_only=arguments.latency_only,
            repeats=arguments.repeats,
            threads=arguments.threads,
        )
    )
