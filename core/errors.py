"""The one base class for errors whose message may be shown to a user.

Pages show ``str(err)`` only for subclasses of :class:`UserError`; any other exception (a stray
``ValueError`` from a library, say) is logged with its traceback and replaced by one generic
sentence, so no library text or internal detail ever reaches a patient.
"""

from __future__ import annotations


class UserError(Exception):
    """A failure the user can understand; ``str(err)`` is one plain sentence.

    Subclasses set ``default_message`` (and may pass a more specific sentence) and ``code``, a
    short stable identifier for logs and tests.
    """

    code = "user_error"
    default_message = "This could not be done."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)
