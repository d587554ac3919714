"""A patient's own profile: the birth year that picks the population their films are read
for, and the name printed on their reports (both sealed like their records)."""

from __future__ import annotations

from storage.profile import (
    MAX_DISPLAY_NAME,
    InvalidDisplayName,
    get_birth_year,
    get_display_name,
    set_birth_year,
    set_display_name,
)

__all__ = [
    "MAX_DISPLAY_NAME",
    "InvalidDisplayName",
    "get_birth_year",
    "get_display_name",
    "set_birth_year",
    "set_display_name",
]
