"""Service fixtures: the storage tests' databases on SQLite and PostgreSQL, and the real model."""

from __future__ import annotations

import pytest

from core.settings import PROJECT_ROOT

# The storage tests' fixtures, so that every use case runs on both backends exactly as storage
# does: a fresh database per test, its first admin, and users of any role.
from tests.storage.conftest import (  # noqa: F401
    admin,
    backend_url,
    database,
    make_user,
    settings,
    settings_env,
)

SHIPPED_CHECKPOINT = PROJECT_ROOT / "models" / "checkpoint.pt"


@pytest.fixture(scope="session")
def classifier():
    """The shipped model, loaded once for the whole session."""
    from models.inference import load_classifier

    if not SHIPPED_CHECKPOINT.is_file():
        pytest.fail("the shipped checkpoint models/checkpoint.pt is missing")
    return load_classifier(SHIPPED_CHECKPOINT)
