"""Every error whose text may reach a user is a UserError with one plain sentence and a code.

Storage and model errors are listed here too, so that one table shows every error a user can
read and a new one cannot be added with a library's base alone.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core.annotations import AnnotationError
from core.eda import DatasetUnavailable, load_nih_metadata
from core.errors import UserError
from core.imaging import CorruptScan, ScanError, ScanTooLarge, UnsupportedFormat
from core.performance import MetricsError
from core.settings import SettingsError
from core.training_eda import load_manifest
from models.inference import ModelUnavailable
from storage.accounts import AccountError, AuthError
from storage.crypto import DecryptionError, MasterKeyError
from storage.passwords import PasswordPolicyError
from storage.policy import AccessDenied
from storage.scans import RecordNotFound

#: Each user-facing error with the built-in type existing callers catch it as.
USER_ERRORS: list[tuple[type[UserError], type[Exception]]] = [
    (ScanError, ValueError),
    (CorruptScan, ValueError),
    (ScanTooLarge, ValueError),
    (UnsupportedFormat, ValueError),
    (SettingsError, ValueError),
    (MetricsError, ValueError),
    (DatasetUnavailable, FileNotFoundError),
    (AnnotationError, ValueError),
    (AuthError, Exception),
    (AccountError, ValueError),
    (PasswordPolicyError, ValueError),
    (RecordNotFound, LookupError),
    (AccessDenied, PermissionError),
    (MasterKeyError, ValueError),
    (ModelUnavailable, RuntimeError),
]


def _is_one_sentence(text: str) -> bool:
    return (
        bool(text)
        and text[0].isupper()
        and text.endswith(".")
        and ". " not in text
        and "\n" not in text
    )


def test_the_base_uses_its_default_sentence_unless_given_one() -> None:
    assert str(UserError()) == UserError.default_message
    assert str(UserError("Try again later.")) == "Try again later."


@pytest.mark.parametrize(
    ("error", "builtin"), USER_ERRORS, ids=lambda e: getattr(e, "__name__", "")
)
def test_user_errors_keep_their_builtin_base_and_speak_one_sentence(
    error: type[UserError], builtin: type[Exception]
) -> None:
    assert issubclass(error, UserError) and issubclass(error, builtin)
    assert error.code != UserError.code, "each error names its own code"
    assert error.default_message != UserError.default_message
    raised = error()
    assert isinstance(raised, UserError) and isinstance(raised, builtin)
    assert str(raised) == error.default_message
    assert _is_one_sentence(str(raised)), str(raised)


def test_dataset_messages_do_not_reveal_server_paths(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    for load in (
        lambda: load_nih_metadata(missing / "meta.csv.gz"),
        lambda: load_manifest(missing),
    ):
        with pytest.raises(DatasetUnavailable) as caught:
            load()
        assert str(tmp_path) not in str(caught.value)
        assert _is_one_sentence(str(caught.value))


def test_codes_are_unique_so_logs_tell_the_errors_apart() -> None:
    codes = [error.code for error, _ in USER_ERRORS]
    assert len(codes) == len(set(codes))


def test_an_integrity_failure_is_not_shown_to_users_as_is() -> None:
    # Its text speaks of keys and tampering: a page must log it and show the generic sentence.
    assert not issubclass(DecryptionError, UserError)
