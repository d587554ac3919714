"""Compare two scans of one patient finding by finding, from their readings.

Each scan is compared through its one reading (``core.scan_reading``), so Compare shows the
numbers every other page shows and nothing else: probabilities of different model versions
are not on the same scale, and a film without numbers says why. Films of different projections
(PA, AP, AP supine, side) differ systematically, so a pair of different projections is compared
only with a warning in words (the default pair is ``core.scan_reading.default_compare_pair``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from core.scan_reading import VIEW_UNCERTAIN_SENTENCE, ScanReading, ScanStatus
from core.timeline import format_percent, format_version
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
        greyed: The finding was learned from other patients than this one: its change says
            little here.
    """

    finding: str
    label: str
    before: float
    after: float
    delta: float
    verdict: str
    greyed: bool = False

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


class _Viewed(Protocol):
    @property
    def view(self) -> View: ...


def view_mismatch(first: _Viewed, second: _Viewed) -> str | None:
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


def compare_readings(
    first: ScanReading, second: ScanReading, *, margin: float = DEFAULT_CHANGE_MARGIN
) -> Comparison:
    """Compare the readings of two scans, ordering them by scan date.

    Only the numbers each reading shows are compared (``core.scan_reading``): a film without
    numbers (side view, model unsure, awaiting re-score) is not compared, and its reason is
    said instead; a film of an uncertain view is compared with a warning.

    Args:
        first: One scan's reading.
        second: The other's.
        margin: Absolute change treated as meaningful (strictly greater).

    Returns:
        A :class:`Comparison`.

    Raises:
        ValueError: ``margin`` is not in [0, 1).
    """
    if not 0 <= margin < 1:
        raise ValueError("The change margin must be at least 0 and below 1.")
    before, after = sorted((first, second), key=lambda r: (r.scan_date, r.scan_id))
    warnings = [w for w in (view_mismatch(before, after),) if w is not None]
    warnings += [
        f"The view of the scan of {r.label} is uncertain: {VIEW_UNCERTAIN_SENTENCE}"
        for r in (before, after)
        if r.status is ScanStatus.VIEW_UNCERTAIN
    ]
    warning = " ".join(warnings) or None
    when = f"the scan of {before.label} and the scan of {after.label}"
    without = [r for r in (before, after) if not r.has_numbers]
    if without:
        reasons = " ".join(f"The scan of {r.label}: {r.reason or r.headline}" for r in without)
        message = f"{when[0].upper()}{when[1:]} cannot be compared. {reasons}"
        return Comparison(before.scan_id, after.scan_id, margin, None, (), message, warning)
    if before.model_version != after.model_version:
        message = (
            f"{when[0].upper()}{when[1:]} were scored by different model versions "
            f"({format_version(before.model_version or '')} and "
            f"{format_version(after.model_version or '')}), so they are not compared; re-score "
            "the older scan with the current model first."
        )
        return Comparison(before.scan_id, after.scan_id, margin, None, (), message, warning)
    changes = []
    for item in after.findings:
        old = before.finding(item.finding)
        if old is None:
            continue
        delta = item.value - old.value
        changes.append(
            FindingChange(
                item.finding,
                item.label,
                old.value,
                item.value,
                delta,
                verdict(delta, margin),
                greyed=item.greyed or old.greyed,
            )
        )
    message = (
        f"Comparing {when}, both scored by model {format_version(after.model_version or '')}; "
        f"changes of {format_percent(margin)} or less count as no meaningful change."
    )
    return Comparison(
        before.scan_id,
        after.scan_id,
        margin,
        after.model_version,
        tuple(changes),
        message,
        warning,
    )
