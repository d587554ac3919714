"""Data-shift monitor: do the app's uploaded scans still look like the training data?

Pure statistics on de-identified samples: two-sample Kolmogorov-Smirnov tests for
continuous quantities (per-image intensity mean and spread) and chi-square tests
for rates and category mixes (flagged findings, age bands, sex). The uploaded side
follows the small-group rule of :mod:`core.cohort`: ages come in bands only, and
a quantity with a group of fewer than ten people is left out whole. p-values are
Bonferroni-corrected over the tests shown together, because an analyst reading
a table of p-values otherwise sees a false alarm in one table out of a few.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats

from core.cohort import MIN_USERS
from core.findings import FINDING_LABELS, FINDINGS

#: Family-wise false-alarm rate of one shift table.
ALPHA = 0.01

#: Fewer observations than this on either side give no test, only a note.
MIN_SAMPLE = 20

KS_TEST = "two-sample Kolmogorov-Smirnov"
CHI2_TEST = "chi-square test of homogeneity"


@dataclass(frozen=True)
class ShiftSample:
    """De-identified observations of one population of scans (no ids, no order).

    Attributes:
        intensity_mean: Mean grayscale intensity (0-1) of each scan.
        intensity_std: Standard deviation of each scan's intensities.
        finding_positive: Scans flagged (or labelled) with each finding.
        finding_total: Scans on which each finding was assessed.
        age_bands: Scans per age band where known (e.g. ``{"40-59": 12}``); never exact ages.
        sexes: Scans per recorded sex (e.g. ``{"F": 12, "M": 30}``).
        withheld: Quantities left out so that nobody can be singled out: finding names,
            ``"age"`` or ``"sex"``; their counts above are empty.
    """

    intensity_mean: np.ndarray = field(default_factory=lambda: np.empty(0))
    intensity_std: np.ndarray = field(default_factory=lambda: np.empty(0))
    finding_positive: Mapping[str, int] = field(default_factory=dict)
    finding_total: Mapping[str, int] = field(default_factory=dict)
    age_bands: Mapping[str, int] = field(default_factory=dict)
    sexes: Mapping[str, int] = field(default_factory=dict)
    withheld: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ShiftResult:
    """Outcome of one comparison.

    Attributes:
        quantity: What was compared, in words.
        test: The statistical test's name (empty when no test could be run).
        statistic: The test statistic (KS D, or chi-square), or ``None``.
        p_value: Uncorrected p-value, or ``None``.
        reference: Short description of the training side (e.g. ``"mean 0.49"``).
        current: Short description of the uploaded side.
        note: Why no test was run, else empty.
    """

    quantity: str
    test: str
    statistic: float | None
    p_value: float | None
    reference: str
    current: str
    note: str = ""


def _describe_values(values: np.ndarray) -> str:
    return f"median {np.median(values):.3f} (n={len(values)})" if len(values) else "n=0"


def _describe_rate(positive: int, total: int) -> str:
    return f"{positive / total:.1%} of {total}" if total else "n=0"


def _describe_mix(categories: list[str], counts: np.ndarray) -> str:
    total = counts.sum()
    parts = [f"{c} {n / total:.0%}" for c, n in zip(categories, counts, strict=True) if n]
    return ", ".join(parts) or "n=0"


def ks_shift(
    quantity: str,
    reference: ArrayLike,
    current: ArrayLike,
    min_sample: int = MIN_SAMPLE,
) -> ShiftResult:
    """Compare two samples of a continuous quantity with a two-sample KS test.

    Args:
        quantity: Name shown to the analyst.
        reference: Training-side values.
        current: Uploaded-side values.
        min_sample: Smallest sample size on either side for a test.

    Returns:
        The result; without a test when either side is too small.
    """
    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
    ref_text, cur_text = _describe_values(ref), _describe_values(cur)
    if min(len(ref), len(cur)) < min_sample:
        note = f"Needs at least {min_sample} values on each side."
        return ShiftResult(quantity, "", None, None, ref_text, cur_text, note)
    result = stats.ks_2samp(ref, cur)
    return ShiftResult(
        quantity, KS_TEST, float(result.statistic), float(result.pvalue), ref_text, cur_text
    )


def rate_shift(
    quantity: str,
    reference: tuple[int, int],
    current: tuple[int, int],
    min_sample: int = MIN_SAMPLE,
) -> ShiftResult:
    """Compare two proportions (positives out of totals) with a chi-square test.

    Args:
        quantity: Name shown to the analyst.
        reference: (positives, total) on the training side.
        current: (positives, total) on the uploaded side.
        min_sample: Smallest total on either side for a test.

    Returns:
        The result; without a test when a total is too small or both rates are 0 or 1.
    """
    (ref_pos, ref_total), (cur_pos, cur_total) = reference, current
    ref_text, cur_text = _describe_rate(ref_pos, ref_total), _describe_rate(cur_pos, cur_total)
    if min(ref_total, cur_total) < min_sample:
        note = f"Needs at least {min_sample} scans on each side."
        return ShiftResult(quantity, "", None, None, ref_text, cur_text, note)
    table = np.array([[ref_pos, ref_total - ref_pos], [cur_pos, cur_total - cur_pos]])
    if (table.sum(axis=0) == 0).any():
        note = "Both sides have the same all-or-nothing rate."
        return ShiftResult(quantity, "", None, None, ref_text, cur_text, note)
    chi2, p_value, _, _ = stats.chi2_contingency(table)
    return ShiftResult(quantity, CHI2_TEST, float(chi2), float(p_value), ref_text, cur_text)


def category_shift(
    quantity: str,
    reference: Mapping[str, int],
    current: Mapping[str, int],
    min_sample: int = MIN_SAMPLE,
) -> ShiftResult:
    """Compare two category mixes (e.g. sex) with a chi-square test of homogeneity.

    Args:
        quantity: Name shown to the analyst.
        reference: Counts per category on the training side.
        current: Counts per category on the uploaded side.
        min_sample: Smallest total on either side for a test.

    Returns:
        The result; without a test when a side is too small or has one category only.
    """
    categories = sorted(set(reference) | set(current))
    ref = np.array([reference.get(c, 0) for c in categories])
    cur = np.array([current.get(c, 0) for c in categories])
    ref_text, cur_text = _describe_mix(categories, ref), _describe_mix(categories, cur)
    if min(ref.sum(), cur.sum()) < min_sample:
        note = f"Needs at least {min_sample} scans on each side."
        return ShiftResult(quantity, "", None, None, ref_text, cur_text, note)
    table = np.vstack([ref, cur])[:, (ref + cur) > 0]
    if table.shape[1] < 2:
        note = "Only one category is present."
        return ShiftResult(quantity, "", None, None, ref_text, cur_text, note)
    chi2, p_value, _, _ = stats.chi2_contingency(table)
    return ShiftResult(quantity, CHI2_TEST, float(chi2), float(p_value), ref_text, cur_text)


def compare(reference: ShiftSample, current: ShiftSample) -> list[ShiftResult]:
    """Run every comparison between the training side and the uploaded side.

    Args:
        reference: Training-data sample.
        current: Uploaded-scan sample.

    Returns:
        One result per quantity: intensity mean and spread, each finding's rate, age band
        and sex; quantities the uploaded side withheld or a side lacks get a note instead.
    """
    results = [
        ks_shift("Image mean intensity", reference.intensity_mean, current.intensity_mean),
        ks_shift("Image intensity spread (std)", reference.intensity_std, current.intensity_std),
    ]
    for finding in FINDINGS:
        quantity = f"{FINDING_LABELS[finding]} rate"
        if finding in current.withheld:
            results.append(_left_out(quantity))
            continue
        results.append(
            rate_shift(
                quantity,
                (
                    reference.finding_positive.get(finding, 0),
                    reference.finding_total.get(finding, 0),
                ),
                (current.finding_positive.get(finding, 0), current.finding_total.get(finding, 0)),
            )
        )
    results.append(
        _mix_shift("Age", reference.age_bands, current.age_bands, "age" in current.withheld)
    )
    results.append(_mix_shift("Sex", reference.sexes, current.sexes, "sex" in current.withheld))
    return results


def _mix_shift(
    quantity: str, reference: Mapping[str, int], current: Mapping[str, int], withheld: bool
) -> ShiftResult:
    if withheld:
        return _left_out(quantity)
    if sum(reference.values()) and sum(current.values()):
        return category_shift(quantity, reference, current)
    return _not_recorded(quantity, training_has_it=sum(reference.values()) > 0)


def _left_out(quantity: str) -> ShiftResult:
    note = f"Left out: a group of the uploaded scans has fewer than {MIN_USERS} people."
    return ShiftResult(quantity, "", None, None, "", "", note)


def _not_recorded(quantity: str, training_has_it: bool) -> ShiftResult:
    side = "uploaded scans" if training_has_it else "training data"
    return ShiftResult(quantity, "", None, None, "", "", f"Not recorded for the {side}.")


def shift_table(results: Sequence[ShiftResult], alpha: float = ALPHA) -> pd.DataFrame:
    """Tabulate results with a Bonferroni-corrected verdict.

    Args:
        results: Comparisons shown together.
        alpha: Family-wise false-alarm rate.

    Returns:
        Columns ``quantity, training, uploaded, test, statistic, p_value,
        verdict``; ``verdict`` is ``shift``, ``no shift detected`` or the note
        explaining why no test ran.
    """
    tested = [r for r in results if r.p_value is not None]
    level = alpha / max(len(tested), 1)
    rows = []
    for r in results:
        if r.p_value is None:
            verdict = r.note
        else:
            verdict = "shift" if r.p_value < level else "no shift detected"
        rows.append(
            {
                "quantity": r.quantity,
                "training": r.reference,
                "uploaded": r.current,
                "test": r.test,
                "statistic": r.statistic,
                "p_value": r.p_value,
                "verdict": verdict,
            }
        )
    return pd.DataFrame(
        rows,
        columns=["quantity", "training", "uploaded", "test", "statistic", "p_value", "verdict"],
    )


def training_reference(
    manifest: pd.DataFrame, per_image: pd.DataFrame, split: str = "train"
) -> ShiftSample:
    """The training side of the comparison.

    Args:
        manifest: Output of :func:`core.training_eda.load_manifest`.
        per_image: Intensity statistics of a seeded sample
            (:func:`core.training_eda.intensity_statistics`).
        split: Which split's labels define the reference rates.

    Returns:
        A sample with intensities and label rates; age and sex are not recorded
        in the training sets, so they stay empty. Public data, so nothing is withheld.
    """
    rows = manifest[manifest["split"] == split]
    kermany = rows[rows["dataset"] == "kermany"]
    covid = rows[rows["dataset"] == "covid_radiography"]
    kermany_pneumonia = kermany["label"].str.upper() == "PNEUMONIA"
    covid_normal = int((covid["label"].str.upper() == "NORMAL").sum())
    covid_positive = int((covid["label"].str.upper() == "COVID").sum())
    # COVID-19 images carry no bacterial/viral/pneumonia labels, so they count only for covid19.
    assessed = len(kermany) + covid_normal
    positive = {
        "pneumonia": int(kermany_pneumonia.sum()),
        "bacterial_pneumonia": int((kermany_pneumonia & (kermany["subtype"] == "bacterial")).sum()),
        "viral_pneumonia": int((kermany_pneumonia & (kermany["subtype"] == "viral")).sum()),
        "covid19": covid_positive,
    }
    total = dict.fromkeys(FINDINGS, assessed) | {"covid19": len(rows)}
    return ShiftSample(
        intensity_mean=per_image["mean"].to_numpy(),
        intensity_std=per_image["std"].to_numpy(),
        finding_positive=positive,
        finding_total=total,
    )
