"""Process several uploaded files one by one, so that one bad file never stops the others."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from core.imaging import ScanError

T = TypeVar("T")

#: ``on_progress(done, total, name)``: called after each file, ``done`` counting from 1.
ProgressCallback = Callable[[int, int, str], None]


@dataclass(frozen=True)
class BatchItem(Generic[T]):
    """Outcome of one file of a batch.

    Attributes:
        name: The file name as uploaded.
        ok: Whether ``handle`` succeeded.
        value: What ``handle`` returned (``None`` on failure).
        error: The one-sentence reason for a failure (``None`` on success).
    """

    name: str
    ok: bool
    value: T | None = None
    error: str | None = None


def process_batch(
    files: Sequence[tuple[str, bytes]],
    handle: Callable[[str, bytes], T],
    on_progress: ProgressCallback | None = None,
    *,
    expected: tuple[type[Exception], ...] = (ScanError,),
) -> list[BatchItem[T]]:
    """Run ``handle`` on every file in order, recording each failure and carrying on.

    Args:
        files: ``(name, content)`` pairs in upload order.
        handle: Work done per file (decode, classify, store); returns the value kept.
        on_progress: Optional ``on_progress(done, total, name)`` after each file.
        expected: Exceptions that mean "this file is unusable"; their message is
            shown to the user. Anything else is a fault of the app, not of the
            file, and propagates.

    Returns:
        One :class:`BatchItem` per file, in the same order.
    """
    items: list[BatchItem[T]] = []
    total = len(files)
    for done, (name, data) in enumerate(files, start=1):
        try:
            items.append(BatchItem(name, True, handle(name, data)))
        except expected as err:
            items.append(BatchItem(name, False, error=str(err)))
        if on_progress is not None:
            on_progress(done, total, name)
    return items


def batch_summary(items: Sequence[BatchItem[T]]) -> str:
    """One sentence summarising a batch, e.g. ``"2 of 3 files were saved; 1 could not be used."``.

    Args:
        items: Output of :func:`process_batch`.

    Returns:
        The sentence.
    """
    saved = sum(item.ok for item in items)
    failed = len(items) - saved
    noun = "file was" if len(items) == 1 else "files were"
    sentence = f"{saved} of {len(items)} {noun} saved"
    return sentence + (f"; {failed} could not be used." if failed else ".")
