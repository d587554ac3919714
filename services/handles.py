"""The handles entry points pass to services: who acts, the database, the loaded model.

Pages and the command line import these names from here, so they depend on the services'
interface alone and never reach into ``storage`` or ``models`` themselves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.settings import Settings
from storage.actor import Actor
from storage.bootstrap import open_database as _open_database
from storage.db import Database

if TYPE_CHECKING:  # the model layer loads torch; a page only names the type
    from models.inference import Classifier

__all__ = ["Actor", "Classifier", "Database", "load_classifier", "open_database"]


def open_database(settings: Settings) -> Database:
    """Open the app's database (``storage.bootstrap.open_database``): migrations, keys, the
    first admin, the audit head; one handle per process."""
    return _open_database(settings)


def load_classifier(*, threads: int | None = None) -> Classifier:
    """Load the current model from its checkpoint (``models.inference.load_classifier``).

    Imported on first use: the model layer loads torch, which entry points without a model
    never need.

    Raises:
        models.inference.ModelUnavailable: No usable checkpoint.
    """
    from models.inference import load_classifier as _load

    return _load(threads=threads)
