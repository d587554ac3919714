"""Compare two scans of one patient finding by finding, only within one model version.

Probabilities from different model versions are not on the same scale, so a
comparison picks a pair of results from a version both scans were scored with
(preferring the current model) and otherwise says plainly that the scans
cannot be compared until the older one is re-scored. Films of different projections (PA,
AP, AP supine, side) differ systematically, so the default pair is the latest two films of one
projection and a pair of different projections is compared only with a warning in words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.findings import FINDING_LABELS, FINDINGS
from core.labels import format_day
from core.timeline import (
    ResultLike,
    ScanLike,
    format_percent,
    format_version,
    is_comparable_view,
    sort_scans,
)
from core.views import NOT_SCORED_SENTENCE, VIEW_LABELS, View

#: Default smallest absolute change in probability (10 points) read as a real change.
DEFAULT_CHANGE_MARGIN = 0.10

HIGHER = "higher"
LOWER = "lower"
NO_CHANGE = "no meaningful change"


@dataclass(frozen=True)
class FindingChange:
    """How one finding moved between two results of the same model version.

    Attributes:
        finding: Finding name from ``core.findings.FINDINGS``.
        label: Its plain-language name.
        before: Probability on the earlier scan.
        after: Probability on the later scan.
        delta: ``after - before``.
        verdict: ``"higher"``, ``"lower"`` or ``"no meaningful change"``.
    """

    finding: str
    label: str
    before: float
    after: float
    delta: float
    verdict: str

    @property
    def sentence(self) -> str:
        """One plain sentence, e.g. ``"Pneumonia: higher (12% to 41%)."``."""
        return (
            f"{self.label}: {self.verdict} "
            f"({format_percent(self.before)} to {format_percent(self.after)})."
        )


@dataclass(frozen=True)
class Comparison:
    """Result of comparing an earlier and a later scan.

    Attributes:
        before_scan_id: The earlier scan (by scan date).
        after_scan_id: The later scan.
        margin: Absolute change below or equal to which the verdict is "no meaningful change".
        model_version: Version both compared results come from; ``None`` when
            no comparison was possible.
        changes: One entry per finding both results report, in finding order;
            empty when not comparable.
        message: One sentence for the user: what was compared, or why nothing was.
        view_warning: One sentence when the two films are not of the same known frontal
            projection (their numbers are then not like with like), else ``None``.
    """

    before_scan_id: int
    after_scan_id: int
    margin: float
    model_version: str | None
    changes: tuple[FindingChange, ...]
    message: str
    view_warning: str | None = None

    @property
    def comparable(self) -> bool:
        """Whether a same-version pair of results was found."""
        return self.model_version is not None

    def change_for(self, finding: str) -> FindingChange | None:
        """The change of one finding, or ``None`` when it was not compared."""
        return next((c for c in self.changes if c.finding == finding), None)


def verdict(delta: float, margin: float = DEFAULT_CHANGE_MARGIN) -> str:
    """Put a change in probability into plain words.

    Args:
        delta: Later minus earlier probability.
        margin: Changes whose size is at most this are "no meaningful change".

    Returns:
        ``"higher"``, ``"lower"`` or ``"no meaningful change"``.
    """
    # Rounded so that 0.35 - 0.25 counts as exactly the 0.10 margin.
    delta = round(delta, 9)
    if delta > margin:
        return HIGHER
    if delta < -margin:
        return LOWER
    return NO_CHANGE


def compare_results(
    before: ResultLike, after: ResultLike, margin: float = DEFAULT_CHANGE_MARGIN
) -> tuple[FindingChange, ...]:
    """Per-finding changes between two results, which must share a model version.

    Args:
        before: Result of the earlier scan.
        after: Result of the later scan.
        margin: See :func:`verdict`.

    Returns:
        One :class:`FindingChange` per finding present in both, in finding order.

    Raises:
        ValueError: The results come from different model versions, or the
            margin is not in [0, 1).
    """
    if not 0 <= margin < 1:
        raise ValueError("The change margin must be at least 0 and below 1.")
    if before.model_version != after.model_version:
        raise ValueError("Results from different model versions cannot be compared.")
    changes = []
    for finding in FINDINGS:
        if finding in before.probabilities and finding in after.probabilities:
            old, new = float(before.probabilities[finding]), float(after.probabilities[finding])
            label = FINDING_LABELS[finding]
            changes.append(
                FindingChange(finding, label, old, new, new - old, verdict(new - old, margin))
            )
    return tuple(changes)


def view_mismatch(first: ScanLike, second: ScanLike) -> str | None:
    """One sentence when two films are not of the same known frontal projection, else ``None``.

    Args:
        first: One scan.
        second: The other scan.

    Returns:
        The warning naming both views, or ``None`` for two films of one frontal projection.
    """
    views = (View(first.view), View(second.view))
    named = f"{VIEW_LABELS[views[0]]} and {VIEW_LABELS[views[1]]}"
    if View.LATERAL in views:
        return f"These films are of different kinds ({named}). {NOT_SCORED_SENTENCE}"
    if View.UNKNOWN in views:
        return (
            f"The view of at least one of these films is not known ({named}), so their "
            "numbers may not be comparable; set the view of each scan to compare like with like."
        )
    if views[0] is not views[1]:
        return (
            f"These films are of different projections ({named}): projections differ "
            "systematically (heart size, shoulder blades, lying down), so a change in the "
            "numbers may come from the projection rather than from the lungs."
        )
    return None


def default_pair(scans: Sequence[ScanLike]) -> tuple[int, int] | None:
    """The pair Compare opens with: the latest two films of one frontal projection.

    The projection is the one of the most recent film that has an earlier film of the same
    projection; a film of an earlier day is preferred as its partner over one of the same day.

    Args:
        scans: The patient's scans, any order.

    Returns:
        ``(earlier_id, later_id)``, or ``None`` when no frontal projection has two films.
    """
    ordered = sort_scans(scans)
    for later in reversed(ordered):
        if not is_comparable_view(later.view):
            continue
        same = [s for s in ordered if s.view is later.view and s.id != later.id]
        earlier = [s for s in same if (s.scan_date, s.id) < (later.scan_date, later.id)]
        if not earlier:
            continue
        other_day = [s for s in earlier if s.scan_date < later.scan_date]
        return (other_day or earlier)[-1].id, later.id
    return None


def _common_pair(
    before: Sequence[ResultLike], after: Sequence[ResultLike], current_version: str | None
) -> tuple[ResultLike, ResultLike] | None:
    usable_before = [r for r in before if not r.abstained]
    usable_after = [r for r in after if not r.abstained]
    versions_after = {r.model_version for r in usable_after}
    common = [r.model_version for r in usable_before if r.model_version in versions_after]
    if not common:
        return None
    # The current model first; otherwise the version most recently used on the earlier scan.
    version = current_version if current_version in common else common[-1]
    pick_before = [r for r in usable_before if r.model_version == version][-1]
    pick_after = [r for r in usable_after if r.model_version == version][-1]
    return pick_before, pick_after


def compare_scans(
    first: ScanLike,
    second: ScanLike,
    *,
    margin: float = DEFAULT_CHANGE_MARGIN,
    current_version: str | None = None,
) -> Comparison:
    """Compare two scans, ordering them by scan date.

    Args:
        first: One scan (``ScanSummary``).
        second: The other scan.
        margin: Absolute change treated as meaningful (strictly greater).
        current_version: Version of the model in use now, preferred when both
            scans have a result from it.

    Returns:
        A :class:`Comparison`; when no model version scored both scans
        (results where the model abstained do not count), it has no changes
        and its message says why and what to do.

    Raises:
        ValueError: ``margin`` is not in [0, 1).
    """
    if not 0 <= margin < 1:
        raise ValueError("The change margin must be at least 0 and below 1.")
    before, after = sorted((first, second), key=lambda s: (s.scan_date, s.id))
    warning = view_mismatch(before, after)
    when = (
        f"the scan of {format_day(before.scan_date)} and the scan of {format_day(after.scan_date)}"
    )
    if not before.results or not after.results:
        message = f"Both scans need a model result before {when} can be compared."
        return Comparison(before.id, after.id, margin, None, (), message, warning)
    pair = _common_pair(before.results, after.results, current_version)
    if pair is None:
        versions = sorted({r.model_version for r in (*before.results, *after.results)})
        return Comparison(
            before.id,
            after.id,
            margin,
            None,
            (),
            f"No single model version gave a usable result for both {when} "
            f"(versions found: {', '.join(format_version(v) for v in versions)}), "
            "so they are not compared; re-score the older scan with the current model first.",
            warning,
        )
    old, new = pair
    changes = compare_results(old, new, margin)
    message = (
        f"Comparing {when}, both scored by model {format_version(old.model_version)}; "
        f"changes of {format_percent(margin)} or less count as no meaningful change."
    )
    return Comparison(before.id, after.id, margin, old.model_version, changes, message, warning)
