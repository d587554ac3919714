"""dciodvfy (Debian ``dicom3tools``): David Clunie's DICOM IOD validator, run on a file.

Skips where the binary is missing on a developer's machine (``apt-get install dicom3tools``),
fails in CI, which must check every SR the app writes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def dciodvfy() -> str:
    """The path of ``dciodvfy``; skips outside CI where it is missing, fails in CI."""
    path = shutil.which("dciodvfy")
    if path:
        return path
    reason = "dciodvfy is missing (apt-get install -y dicom3tools)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason + "; CI must validate the DICOM SR files")
    pytest.skip(reason)


def dciodvfy_errors(path: Path, iod: str = "ComprehensiveSR") -> list[str]:
    """The lines of dciodvfy's report on ``path`` that are errors (its warnings left out).

    Args:
        path: The DICOM file.
        iod: The IOD dciodvfy must recognise it as (``SCImage`` for a Secondary Capture).
    """
    run = subprocess.run(
        [dciodvfy(), str(path)], capture_output=True, text=True, timeout=120, check=False
    )
    report = (run.stdout + run.stderr).splitlines()
    assert any(line.strip() == iod for line in report), report
    return [line for line in report if line.startswith("Error")]
