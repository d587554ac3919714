"""Small wording rules shared by every page, report and command line: plurals, literal text."""

from __future__ import annotations


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """A count with its noun in the right number: ``"1 scan"``, ``"0 scans"``, ``"5 scans"``.

    Args:
        count: How many.
        singular: The noun for one, e.g. ``"scan"``.
        plural_form: The noun for any other count when it is not ``singular + "s"``
            (e.g. ``"analyses"``).

    Returns:
        The count and the noun, separated by a space.
    """
    noun = singular if count == 1 else (plural_form or f"{singular}s")
    return f"{count} {noun}"


#: Characters that Markdown (as Streamlit renders it, with LaTeX) would read as formatting.
_MARKDOWN_SPECIAL = frozenset("\\`*_{}[]()<>#+-.!|~$:")


def markdown_literal(text: str) -> str:
    """``text`` escaped so that Markdown shows it as typed (a file name, a user's words).

    Args:
        text: Any text, e.g. an uploaded file's name such as ``"*scan*_1.png"``.

    Returns:
        The text with every Markdown formatting character backslash-escaped.
    """
    return "".join(f"\\{char}" if char in _MARKDOWN_SPECIAL else char for char in text)


def in_sentence(label: str) -> str:
    """A label as written inside a sentence: ``"Viral pneumonia"`` -> ``"viral pneumonia"``.

    Only capitalised words are lowered; acronyms keep their letters, so ``"COVID-19
    pneumonia"`` stays as it is (``str.lower`` would give "covid-19").

    Args:
        label: A title such as a finding's label.

    Returns:
        The label with each ordinary capitalised word in lower case.
    """
    return " ".join(
        word.lower() if word[1:] == word[1:].lower() else word for word in label.split(" ")
    )
