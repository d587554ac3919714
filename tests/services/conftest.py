"""Service fixtures: the storage tests' databases on SQLite and PostgreSQL, and the real model."""

from __future__ import annotations

import io
import logging
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass

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


@dataclass(frozen=True)
class CliRun:
    """What one run of the command line gave: as :class:`subprocess.CompletedProcess` has it."""

    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., CliRun]:
    """Run ``python -m storage.cli ARGS`` in this process: ``cli(env, *args, stdin="")``.

    As a real start would see it: the environment is ``os.environ`` plus ``env`` for this run
    only (settings are read from it), the working directory is the project, stdin holds
    ``stdin``, and stdout, stderr (with the warnings ``main``'s logging prints), the exit
    status of ``main`` or of ``SystemExit`` (argparse), and an uncaught exception's traceback
    (status 1, as the interpreter gives) come back. It saves a Python start and the model
    layer's imports per run; ``test_cli.py`` starts both documented module names for real.
    """
    from services.cli import main

    def run(env: Mapping[str, str], *args: str, stdin: str = "") -> CliRun:
        capsys.readouterr()
        root = logging.getLogger()
        kept_handlers, kept_level = root.handlers[:], root.level
        # main() configures logging to stderr as in a fresh process; pytest's handlers would
        # otherwise take its warnings.
        root.handlers = []
        try:
            with monkeypatch.context() as patch:
                for key, value in env.items():
                    patch.setenv(key, value)
                patch.chdir(PROJECT_ROOT)
                patch.setattr(sys, "stdin", io.StringIO(stdin))
                try:
                    code = main(list(args))
                except SystemExit as exc:
                    code = _exit_status(exc)
                except Exception:
                    traceback.print_exc()
                    code = 1
        finally:
            for handler in root.handlers:
                handler.close()
            root.handlers, root.level = kept_handlers, kept_level
        out, err = capsys.readouterr()
        return CliRun(code, out, err)

    return run


def _exit_status(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1
