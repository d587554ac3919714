"""The acting user, a plain value every storage function takes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    """The logged-in user on whose behalf storage functions act."""

    user_id: int
    username: str
    role: str
