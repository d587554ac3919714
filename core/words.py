"""Small wording rules shared by every page, report and command line: counts with plurals."""

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
