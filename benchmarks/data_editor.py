"""Driving Streamlit's data editor (a canvas grid, no DOM cells) from Playwright.

Shared by the browser tests (``tests/e2e/browser_steps.pick_view``) and
``benchmarks/bench_pages.py``, which time the same cell edit.
"""

from __future__ import annotations

import time
from typing import Any

#: Height of a data editor's header and of each of its rows, in pixels (Streamlit's default).
ROW_PX = 35
#: How long one try waits for the opened cell's list before opening it again.
_TRY_MS = 15_000


def open_cell_list(page: Any, row: int, column: int, option: str, timeout_ms: float) -> Any:
    """Open the select-box list of a cell of the page's first data editor.

    Selects the row's first cell, moves right to ``column``, presses Enter and waits for
    ``option`` in the list. A click that lands while a rerun redraws the grid is lost without
    a trace, so a list that has not appeared after a while is closed and the cell opened
    again, until ``timeout_ms`` is spent.

    Args:
        page: A Playwright page.
        row: The row, counted from 0 below the header.
        column: The column, counted from 0.
        option: The words of an option the list must show.
        timeout_ms: The most this may take in all.

    Returns:
        The option's locator, visible.

    Raises:
        playwright.sync_api.TimeoutError: The list never showed the option.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    grid = page.locator('[data-testid="stDataFrame"]').first
    choice = page.locator("#portal").get_by_role("option", name=option, exact=True)
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        grid.scroll_into_view_if_needed()
        box = grid.bounding_box()
        page.mouse.click(box["x"] + 30, box["y"] + ROW_PX * (row + 1) + ROW_PX / 2)
        for _ in range(column):
            page.keyboard.press("ArrowRight")
        page.keyboard.press("Enter")
        left_ms = (deadline - time.monotonic()) * 1000
        try:
            choice.wait_for(timeout=max(1.0, min(_TRY_MS, left_ms)))
            return choice
        except PlaywrightTimeout:
            if time.monotonic() >= deadline:
                raise
            page.keyboard.press("Escape")
