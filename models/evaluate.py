"""Evaluate the shipped checkpoint once on the official test splits: ``python -m models.evaluate``.

Writes ``models/metrics.json`` (per test set and finding: AUC with bootstrap CI,
accuracy/sensitivity/specificity and confusion matrix at the validation-chosen
threshold, ECE, ROC points, reliability bins; three-way Kermany accuracy; the covid19
false-flag rate on the NIH adult films; the validity table per finding and population;
abstention rates; training history) and ``models/reference_predictions.json``
(probabilities of four named test images that the regression test reproduces) and the
analyst pages' figures as plotly JSON under ``models/plots/``. It also reports, per
population, how often each finding is flagged on no-finding test films and its sensitivity
at the model's own levels (``flag_rates``), and reads the external sets once
(``external_report``; evaluation only, nothing is fitted or chosen on them): the serial adult
films of ``external/serial_adults`` (frontal films only) and the adult and child NIH films of
``external/nih_holdout``.

Each test film is scored with the calibration of its patient's population (Kermany:
children; COVID-radiography: adults; NIH: by the recorded age), as the app does when it
knows the age; ``unknown_age_test`` scores every film as the app does without an age.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pydicom.data import get_testdata_file

from core.findings import FINDINGS, is_flagged
from core.imaging import decode_scan
from core.settings import load_settings
from models.calibration import no_finding_rows
from models.data import Example, load_manifest, split_examples
from models.inference import Classifier, Prediction, load_classifier
from models.metrics import (
    bootstrap_auc_ci,
    flags,
    reliability,
    roc_auc,
    roc_points,
    threshold_metrics,
    wilson_interval,
)
from models.populations import ADULT, CHILD, PLURALS, population_for_age
from models.validity import VALIDITY_RULE, judge, to_table, unknown_age

MODELS_DIR = Path(__file__).resolve().parent
#: Test images whose probabilities the regression test pins (one per Kermany class, COVID, NIH).
REFERENCE_IMAGES = (
    "kermany/test/NORMAL/IM-0001-0001.jpeg",
    "kermany/test/PNEUMONIA/person100_bacteria_475.jpeg",
    "covid_radiography/test/COVID/COVID-1001.jpeg",
    "nih_adult/test/Pneumonia/00000415_001.jpeg",
)
TARGETS = {
    "kermany_pneumonia_auc": 0.975,
    "kermany_pneumonia_accuracy": 0.93,
    "kermany_three_way_accuracy": 0.85,
    "covid19_auc": 0.98,
    "ece_max": 0.05,
    "nih_adult_pneumonia_auc": 0.72,
    "nih_adult_covid19_flag_rate_max": 0.05,
    "false_abstain_rate_max": 0.01,
}
#: Report sections: test-set key -> source (None: every test film).
TEST_SETS: dict[str, str | None] = {
    "kermany_test": "kermany",
    "covid_test": "covid_radiography",
    "nih_adult_test": "nih_adult",
    "pooled_test": None,
}
#: Sources on which a finding's validity for a population is measured: within one source
#: where it has both classes, so the AUC cannot come from telling sources apart. covid19 in
#: adults adds the NIH films, certain negatives that include adult pneumonias.
_SOURCE_NAMES = {"kermany": "Kermany", "covid_radiography": "COVID-radiography", "nih_adult": "NIH"}
VALIDITY_SOURCES: dict[str, tuple[str, ...]] = {CHILD: ("kermany",), ADULT: ("nih_adult",)}
VALIDITY_SOURCES_BY_FINDING: dict[tuple[str, str], tuple[str, ...]] = {
    (ADULT, "covid19"): ("covid_radiography", "nih_adult")
}
#: Groups of test films whose flag rates are reported: name -> (population, source or None).
FLAG_RATE_GROUPS: dict[str, tuple[str, str | None]] = {
    CHILD: (CHILD, None),
    f"{CHILD}/kermany": (CHILD, "kermany"),
    ADULT: (ADULT, None),
    f"{ADULT}/covid_radiography": (ADULT, "covid_radiography"),
    f"{ADULT}/nih_adult": (ADULT, "nih_adult"),
}
#: The external sets (``<shared data>/external``, evaluation only; see its README).
EXTERNAL_DIR = "external"
#: Views of ``serial_adults/series.csv`` that are side views: never scored, as in the app.
LATERAL_VIEWS = frozenset({"L"})


def finding_report(
    labels: np.ndarray, probabilities: np.ndarray, threshold: float | np.ndarray, seed: int
) -> dict:
    """Every metric of one finding on one set of examples.

    Args:
        labels: 0/1 labels.
        probabilities: Calibrated probabilities.
        threshold: The validation-chosen threshold, or one per example (its population's).
        seed: Bootstrap seed.

    Returns:
        ``n``, ``positives``, ``auc``, ``auc_ci``, threshold metrics, ``ece``, ``roc``,
        ``reliability``.
    """
    calibration = reliability(labels, probabilities)
    return {
        "n": int(len(labels)),
        "positives": int(np.sum(labels)),
        "auc": roc_auc(labels, probabilities),
        "auc_ci": list(bootstrap_auc_ci(labels, probabilities, seed=seed)),
        **threshold_metrics(labels, probabilities, threshold),
        "ece": calibration.pop("ece"),
        "roc": roc_points(labels, probabilities),
        "reliability": calibration,
    }


def three_way(subtypes: list[str], probabilities: np.ndarray, thresholds: dict[str, float]) -> dict:
    """Normal / bacterial / viral accuracy: normal below the pneumonia threshold, else the
    larger of the bacterial and viral probabilities."""
    labels = ["normal", "bacterial", "viral"]
    pneumonia = is_flagged(probabilities[:, FINDINGS.index("pneumonia")], thresholds["pneumonia"])
    bacterial = probabilities[:, FINDINGS.index("bacterial_pneumonia")]
    viral = probabilities[:, FINDINGS.index("viral_pneumonia")]
    predicted = np.where(~pneumonia, "normal", np.where(bacterial >= viral, "bacterial", "viral"))
    matrix = [
        [int(np.sum((np.array(subtypes) == t) & (predicted == p))) for p in labels] for t in labels
    ]
    return {
        "labels": labels,
        "confusion": matrix,
        "accuracy": float(np.mean(np.array(subtypes) == predicted)),
        "n": len(subtypes),
    }


def _decode_all(examples: list[Example]):
    return [decode_scan(example.path.read_bytes(), str(example.path)) for example in examples]


def _probe_scans(shared_dir: Path) -> dict:
    # Inputs that are not frontal chest radiographs the model can read; the guard must refuse each.
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)
    photo[..., 0] = np.linspace(0, 255, 256, dtype=np.uint8)
    probes = {}
    for name, image in {
        "colour_photograph": photo,
        "blank": np.full((256, 256), 128, np.uint8),
    }.items():
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        probes[name] = decode_scan(buffer.getvalue())
    for name in ("CT_small.dcm", "MR_small.dcm"):
        path = get_testdata_file(name)
        if not isinstance(path, str):
            raise FileNotFoundError(f"pydicom's test file {name} is not installed")
        probes[name] = decode_scan(Path(path).read_bytes())
    # A negative: MONOCHROME2 pixels whose header says MONOCHROME1, so decoding inverts them.
    negative = shared_dir / "samples" / "Fake_MONOHR1.dcm"
    probes["inverted_radiograph"] = decode_scan(negative.read_bytes(), negative.name)
    return probes


def _matrix(predictions: list[Prediction], key: str) -> np.ndarray:
    return np.array([[getattr(p, key)[f] for f in FINDINGS] for p in predictions])


def _set_report(
    rows: np.ndarray,
    labelled: tuple[np.ndarray, np.ndarray],
    scored: tuple[np.ndarray, np.ndarray],
    seed: int,
) -> dict:
    """``finding_report`` of each finding with both classes among ``rows``.

    Args:
        rows: Boolean (N,): the films of the test set.
        labelled: ``(targets, mask)``, each (N, F).
        scored: ``(probabilities, thresholds)``, each (N, F).
        seed: Bootstrap seed.

    Returns:
        ``{finding: report}``; a finding with one class only is left out (no AUC to report).
    """
    (targets, mask), (probabilities, thresholds) = labelled, scored
    report = {}
    for index, finding in enumerate(FINDINGS):
        known = rows & (mask[:, index] == 1)
        labels = targets[known, index]
        if len(labels) and labels.min() != labels.max():
            report[finding] = finding_report(
                labels, probabilities[known, index], thresholds[known, index], seed
            )
    return report


def validity(
    test: list[Example],
    labelled: tuple[np.ndarray, np.ndarray],
    scored: tuple[np.ndarray, np.ndarray],
    unknown_report: dict,
    seed: int,
) -> dict:
    """The validity table: each finding judged for children, adults and unknown age.

    Args:
        test: The test examples.
        labelled: ``(targets, mask)``, each (N, F).
        scored: Population-calibrated ``(probabilities, thresholds)``, each (N, F).
        unknown_report: The ``unknown_age_test`` section, whose numbers the unknown-age rows show.
        seed: Bootstrap seed.

    Returns:
        ``{"rule", "table", "test_sets"}`` (``models.validity.to_table``).
    """
    populations = np.array([e.population for e in test])
    sources = np.array([e.source for e in test])
    verdicts, test_sets = [], {}
    for finding in FINDINGS:
        by_population = {}
        for population in (CHILD, ADULT):
            chosen = VALIDITY_SOURCES_BY_FINDING.get(
                (population, finding), VALIDITY_SOURCES[population]
            )
            rows = (populations == population) & np.isin(sources, chosen)
            name = (
                " and ".join(_SOURCE_NAMES[source] for source in chosen)
                + f" test films of {PLURALS[population]}"
            )
            test_sets[f"{finding}/{population}"] = name
            report = _set_report(rows, labelled, scored, seed).get(finding)
            by_population[population] = judge(finding, population, report, name)
            verdicts.append(by_population[population])
        verdicts.append(
            unknown_age(by_population[CHILD], by_population[ADULT], unknown_report.get(finding))
        )
    return {"rule": VALIDITY_RULE, "table": to_table(verdicts), "test_sets": test_sets}


def covid_false_flags(
    covid_negative: np.ndarray,
    probabilities: np.ndarray,
    thresholds: np.ndarray,
    pneumonia: np.ndarray,
) -> dict:
    """How often covid19 is flagged on films that certainly are not COVID-19.

    Args:
        covid_negative: Boolean (N,): the films to count (the NIH test films, from 2017).
        probabilities: covid19 probabilities (N,).
        thresholds: covid19 threshold per film (N,).
        pneumonia: Boolean (N,): the film is labelled pneumonia.

    Returns:
        ``n``, ``flagged``, ``rate`` with its 95% Wilson ``ci``, and the rate among the
        pneumonia and the no-finding films.
    """
    flagged = flags(probabilities, thresholds) & covid_negative
    n, count = int(covid_negative.sum()), int(flagged.sum())
    return {
        "n": n,
        "flagged": count,
        "rate": count / n,
        "ci": list(wilson_interval(count, n)),
        "rate_pneumonia": float(flagged[covid_negative & pneumonia].mean()),
        "rate_no_finding": float(flagged[covid_negative & ~pneumonia].mean()),
    }


def _count(flagged: np.ndarray) -> dict | None:
    # Share of flagged films with its 95% Wilson interval; None for no films.
    n, count = len(flagged), int(np.sum(flagged))
    if not n:
        return None
    return {"n": n, "flagged": count, "rate": count / n, "ci": list(wilson_interval(count, n))}


def flag_rates(
    rows: np.ndarray, labelled: tuple[np.ndarray, np.ndarray], scored: tuple[np.ndarray, np.ndarray]
) -> dict:
    """How often each finding is flagged among ``rows``: on no-finding films and on positives.

    Args:
        rows: Boolean (N,): the films to count.
        labelled: ``(targets, mask)``, each (N, F).
        scored: ``(probabilities, thresholds)``, each (N, F), thresholds per film.

    Returns:
        ``no_finding_films``; ``any_finding`` (no-finding films flagged for at least one
        finding) and per finding ``no_finding`` (flag rate on no-finding films) and
        ``sensitivity`` (flag rate on the finding's positives), each ``{n, flagged, rate, ci}``
        or None without films; ``thresholds``: the distinct thresholds applied.
    """
    (targets, mask), (probabilities, thresholds) = labelled, scored
    no_finding = rows & no_finding_rows(targets, mask)
    findings, any_flag = {}, np.zeros(len(rows), bool)
    for index, finding in enumerate(FINDINGS):
        flagged = flags(probabilities[:, index], thresholds[:, index])
        any_flag |= flagged
        positives = rows & (mask[:, index] == 1) & (targets[:, index] == 1)
        findings[finding] = {
            "thresholds": sorted({float(t) for t in thresholds[rows, index]}),
            "no_finding": _count(flagged[no_finding]),
            "sensitivity": _count(flagged[positives]),
        }
    return {
        "no_finding_films": int(no_finding.sum()),
        "any_finding": _count(any_flag[no_finding]),
        "findings": findings,
    }


def _film_reading(prediction: Prediction) -> dict:
    return {
        "population": prediction.population,
        "abstained": prediction.abstained,
        "abstain_reason": prediction.abstain_reason,
        "probabilities": prediction.probabilities,
        "thresholds": prediction.thresholds,
        "flagged": {
            f: bool(is_flagged(prediction.probabilities[f], prediction.thresholds[f]))
            for f in FINDINGS
        },
    }


def serial_adults_report(classifier: Classifier, folder: Path) -> dict:
    """Score the frontal films of the external serial adults, per film, patient and diagnosis.

    Every patient is an adult (the set's README; one patient's age is not recorded), so each
    film is scored with the adult calibration. Side (lateral) films are left out, as the app
    never scores them.

    Args:
        classifier: The loaded classifier.
        folder: ``<shared data>/external/serial_adults`` (``series.csv`` and the PNG files).

    Returns:
        ``films`` (one entry per frontal film), ``patients`` (per patient: diagnosis, frontal
        and lateral film counts, per finding the lowest and highest probability and how many
        films are flagged) and ``diagnoses`` (the same per diagnosis), plus counts.
    """
    with open(folder / "series.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    frontal = [row for row in rows if row["view"] not in LATERAL_VIEWS]
    scans = [decode_scan((folder / row["file"]).read_bytes(), row["file"]) for row in frontal]
    predictions = classifier.predict(scans, populations=[ADULT] * len(scans))
    films = [
        {
            "patient": row["patient"],
            "diagnosis": row["finding"],
            "view": row["view"],
            "offset_days": int(row["offset_days"]),
            "file": row["file"],
        }
        | _film_reading(prediction)
        for row, prediction in zip(frontal, predictions, strict=True)
    ]

    def summary(chosen: list[dict]) -> dict:
        scored = [film for film in chosen if not film["abstained"]]
        return {
            "frontal_films": len(chosen),
            "abstained": len(chosen) - len(scored),
            "findings": {
                f: {
                    "min": min((film["probabilities"][f] for film in scored), default=None),
                    "max": max((film["probabilities"][f] for film in scored), default=None),
                    "flagged": sum(film["flagged"][f] for film in scored),
                }
                for f in FINDINGS
            },
        }

    patients = {}
    for patient in dict.fromkeys(row["patient"] for row in rows):
        own = [row for row in rows if row["patient"] == patient]
        patients[patient] = {
            "diagnosis": own[0]["finding"],
            "age": float(own[0]["age"]) if own[0]["age"] else None,
            "lateral_films_excluded": sum(row["view"] in LATERAL_VIEWS for row in own),
        } | summary([film for film in films if film["patient"] == patient])
    diagnoses = {
        diagnosis: {
            "patients": sum(p["diagnosis"] == diagnosis for p in patients.values()),
        }
        | summary([film for film in films if film["diagnosis"] == diagnosis])
        for diagnosis in dict.fromkeys(row["finding"] for row in rows)
    }
    return {
        "population": ADULT,
        "patients_count": len(patients),
        "frontal_films": len(films),
        "lateral_films_excluded": len(rows) - len(frontal),
        "films": films,
        "patients": patients,
        "diagnoses": diagnoses,
    }


def nih_holdout_report(classifier: Classifier, folder: Path, seed: int = 0) -> dict:
    """Pneumonia and covid19 flags on the external NIH films, each at its patient's age level.

    Args:
        classifier: The loaded classifier.
        folder: ``<shared data>/external/nih_holdout`` (``labels.csv`` and the images).
        seed: Bootstrap seed.

    Returns:
        Per population (``child``, ``adult``, and ``all``): film counts, ``abstained``, the
        pneumonia AUC with its 95% bootstrap interval, and :func:`flag_rates` (no-finding
        films flagged per finding, pneumonia sensitivity); every film is a certain covid19
        negative (NIH, 2017), so ``covid19_flagged`` counts all films.
    """
    with open(folder / "labels.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    scans = [decode_scan((folder / row["file"]).read_bytes(), row["file"]) for row in rows]
    populations = np.array([population_for_age(int(row["age"])) for row in rows])
    predictions = classifier.predict(scans, populations=list(populations))
    pneumonia = np.array([row["folder"] == "Pneumonia" for row in rows])
    targets = np.zeros((len(rows), len(FINDINGS)))
    targets[:, FINDINGS.index("pneumonia")] = pneumonia
    # NIH gives no bacterial/viral subtype; covid19 is known negative (2017).
    mask = np.ones_like(targets)
    mask[pneumonia, FINDINGS.index("bacterial_pneumonia")] = 0
    mask[pneumonia, FINDINGS.index("viral_pneumonia")] = 0
    scored = (_matrix(predictions, "probabilities"), _matrix(predictions, "thresholds"))
    abstained = np.array([p.abstained for p in predictions])
    covid19 = flags(
        scored[0][:, FINDINGS.index("covid19")], scored[1][:, FINDINGS.index("covid19")]
    )
    report = {}
    for name in (CHILD, ADULT, "all"):
        rows_in = populations == name if name != "all" else np.ones(len(rows), bool)
        labels = pneumonia[rows_in]
        probabilities = scored[0][rows_in, FINDINGS.index("pneumonia")]
        both = 0 < labels.sum() < len(labels)
        report[name] = {
            "films": int(rows_in.sum()),
            "pneumonia_films": int(labels.sum()),
            "no_finding_films": int((~labels).sum()),
            "abstained": int(abstained[rows_in].sum()),
            "pneumonia_auc": roc_auc(labels, probabilities) if both else None,
            "pneumonia_auc_ci": list(bootstrap_auc_ci(labels, probabilities, seed=seed))
            if both
            else None,
            "flags": flag_rates(rows_in, (targets, mask), scored),
            "covid19_flagged": _count(covid19[rows_in]),
        }
    return report


def external_report(classifier: Classifier, shared_dir: Path) -> dict | None:
    """The external sets, read once per release for evaluation only; None where absent."""
    folder = shared_dir / EXTERNAL_DIR
    if not (folder / "serial_adults" / "series.csv").is_file():
        return None
    return {
        "serial_adults": serial_adults_report(classifier, folder / "serial_adults"),
        "nih_holdout": nih_holdout_report(classifier, folder / "nih_holdout"),
    }


def evaluate(classifier: Classifier, shared_dir: Path, seed: int = 0) -> tuple[dict, dict]:
    """Compute the full report on the official test splits.

    Args:
        classifier: The loaded classifier.
        shared_dir: ``Settings.shared_data_dir``.
        seed: Bootstrap seed.

    Returns:
        ``(metrics, reference_predictions)``.
    """
    test = split_examples(load_manifest(shared_dir))["test"]
    scans = _decode_all(test)
    predictions = classifier.predict(scans, populations=[e.population for e in test])
    unknown = classifier.predict(scans)
    scored = (_matrix(predictions, "probabilities"), _matrix(predictions, "thresholds"))
    scored_unknown = (_matrix(unknown, "probabilities"), _matrix(unknown, "thresholds"))
    abstained = np.array([p.abstained for p in predictions])
    labelled = (np.stack([e.target for e in test]), np.stack([e.mask for e in test]))
    sources = np.array([e.source for e in test])
    populations = np.array([e.population for e in test])
    everything = np.ones(len(test), bool)

    evaluation = {
        name: _set_report(
            everything if source is None else sources == source, labelled, scored, seed
        )
        for name, source in TEST_SETS.items()
    }
    evaluation["unknown_age_test"] = _set_report(everything, labelled, scored_unknown, seed)
    kermany, nih = sources == "kermany", sources == "nih_adult"
    covid19, pneumonia = FINDINGS.index("covid19"), labelled[0][:, FINDINGS.index("pneumonia")] == 1
    child_thresholds = classifier.info.population_thresholds[CHILD]
    result: dict[str, Any] = {
        "model": {
            "name": classifier.info.name,
            "version": classifier.info.version,
            "sha256": classifier.info.sha256,
        },
        "thresholds": classifier.info.thresholds,
        "population_thresholds": classifier.info.population_thresholds,
        "targets": TARGETS,
        "evaluation": evaluation,
        "covid19_false_flags": {
            "nih_adult_test": covid_false_flags(
                nih, scored[0][:, covid19], scored[1][:, covid19], pneumonia
            ),
            "nih_adult_test_unknown_age": covid_false_flags(
                nih, scored_unknown[0][:, covid19], scored_unknown[1][:, covid19], pneumonia
            ),
        },
        "validity": validity(test, labelled, scored, evaluation["unknown_age_test"], seed),
        "flag_rates": {
            name: flag_rates(
                (populations == population) & (everything if source is None else sources == source),
                labelled,
                scored,
            )
            for name, (population, source) in FLAG_RATE_GROUPS.items()
        }
        | {"unknown_age": flag_rates(everything, labelled, scored_unknown)},
        "three_way": three_way(
            [e.subtype for e, k in zip(test, kermany, strict=True) if k],
            scored[0][kermany],
            child_thresholds,
        ),
        "abstention": {
            "false_abstain_rate": {
                # "all_test", as reports before 1.2.0 named it, not "pooled_test".
                ("all_test" if source is None else name): float(
                    abstained[everything if source is None else sources == source].mean()
                )
                for name, source in TEST_SETS.items()
            },
            "ood_threshold": float(classifier.ood_threshold),
            "probes": {},
        },
    }
    probes = _probe_scans(shared_dir)
    probe_predictions = classifier.predict(list(probes.values()))
    for name, prediction in zip(probes, probe_predictions, strict=True):
        result["abstention"]["probes"][name] = {
            "abstained": prediction.abstained,
            "reason": prediction.abstain_reason,
            "ood_score": prediction.ood_score,
            "ood_alone_abstains": prediction.ood_score > classifier.ood_threshold,
        }
    by_path = {
        str(e.path.relative_to(shared_dir)): pair
        for e, pair in zip(test, zip(predictions, unknown, strict=True), strict=True)
    }
    reference = {
        name: {
            "population": by_path[name][0].population,
            "probabilities": by_path[name][0].probabilities,
            "unknown_age": by_path[name][1].probabilities,
        }
        for name in REFERENCE_IMAGES
    }
    return result, reference


def write_plots(metrics: dict, directory: Path) -> list[Path]:
    """Write the analyst pages' figures as plotly JSON (``plotly.io.read_json`` opens them).

    Args:
        metrics: The report written to ``metrics.json``.
        directory: Output folder, created if needed.

    Returns:
        The files written.
    """
    from core import performance

    figures = {
        "training": performance.training_figure(metrics),
        "three_way": performance.three_way_figure(metrics),
    }
    for source in metrics["evaluation"]:
        figures[f"roc_{source}"] = performance.roc_figure(metrics, source)
        figures[f"reliability_{source}"] = performance.reliability_figure(metrics, source)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, figure in figures.items():
        if figure is not None:
            written.append(directory / f"{name}.json")
            figure.write_json(written[-1])
    return written


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        description="Evaluate the checkpoint on the official test splits."
    )
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=MODELS_DIR / "metrics.json")
    args = parser.parse_args(argv)
    classifier = load_classifier(args.checkpoint)
    shared_dir = load_settings().shared_data_dir
    metrics, reference = evaluate(classifier, shared_dir)
    external = external_report(classifier, shared_dir)
    if external is not None:
        metrics["external"] = external
    training = args.out.with_name("training_metrics.json")
    if training.is_file():
        metrics["training"] = json.loads(training.read_text())
    args.out.write_text(json.dumps(metrics, indent=2))
    args.out.with_name("reference_predictions.json").write_text(json.dumps(reference, indent=2))
    write_plots(metrics, args.out.parent / "plots")
    kermany = metrics["evaluation"]["kermany_test"]["pneumonia"]
    nih = metrics["evaluation"]["nih_adult_test"]["pneumonia"]
    print(
        f"kermany pneumonia AUC {kermany['auc']:.4f} accuracy {kermany['accuracy']:.4f}; "
        f"3-way {metrics['three_way']['accuracy']:.4f}; nih_adult pneumonia AUC {nih['auc']:.4f}; "
        f"covid19 flagged on {metrics['covid19_false_flags']['nih_adult_test']['rate']:.1%} "
        "of NIH films; "
        f"wrote {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
