"""The handles entry points pass to services: who acts, the database, the loaded model.

Pages and the command line import these names from here, so they depend on the services'
interface alone and never reach into ``storage`` or ``models`` themselves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from storage.actor import Actor
from storage.db import Database

if TYPE_CHECKING:  # the model layer loads torch; a page only names the type
    from models.inference import Classifier

__all__ = ["Actor", "Classifier", "Database"]
