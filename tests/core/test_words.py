"""Counts with their noun in the right number; text shown literally in Markdown."""

from __future__ import annotations

import re

from core.words import in_sentence, markdown_literal, plural


def test_one_is_singular_and_every_other_count_plural() -> None:
    assert plural(1, "scan") == "1 scan"
    assert [plural(n, "scan") for n in (0, 2, 5)] == ["0 scans", "2 scans", "5 scans"]


def test_an_irregular_plural_is_used_when_given() -> None:
    assert plural(1, "analysis", "analyses") == "1 analysis"
    assert plural(3, "analysis", "analyses") == "3 analyses"


def test_markdown_literal_escapes_every_formatting_character_and_nothing_else() -> None:
    name = "*scan*_2026-01-05 [copy](x).png :material/home: $x$ ~a~ `b` #1 <i>"
    escaped = markdown_literal(name)
    assert escaped.startswith(r"\*scan\*\_2026\-01\-05 \[copy\]\(x\)\.png \:material/home\:")
    assert re.sub(r"\\(.)", r"\1", escaped) == name, "only backslashes were added"
    assert not re.search(r"(?<!\\)[*_`\[\]()$~#<>:]", escaped), "no bare formatting character"
    assert markdown_literal("plain name 12") == "plain name 12"


def test_labels_inside_a_sentence_keep_their_acronyms() -> None:
    assert in_sentence("Viral pneumonia") == "viral pneumonia"
    assert in_sentence("COVID-19 pneumonia") == "COVID-19 pneumonia"
    assert in_sentence("Pneumonia") == "pneumonia"
