"""Counts with their noun in the right number."""

from __future__ import annotations

from core.words import plural


def test_one_is_singular_and_every_other_count_plural() -> None:
    assert plural(1, "scan") == "1 scan"
    assert [plural(n, "scan") for n in (0, 2, 5)] == ["0 scans", "2 scans", "5 scans"]


def test_an_irregular_plural_is_used_when_given() -> None:
    assert plural(1, "analysis", "analyses") == "1 analysis"
    assert plural(3, "analysis", "analyses") == "3 analyses"
