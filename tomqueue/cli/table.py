"""Plain-text tables for the operator commands, cut to fit the terminal.

On a terminal, the widest of the columns marked flexible are cut (with "…") until the
table fits; piped output (no terminal, no ``COLUMNS``) is never cut: scripts should read
``--json`` anyway, but ``grep`` should see whole lines.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

GAP = "  "
MIN_FLEX = 8


def terminal_width() -> int | None:
    """The width to fit: ``COLUMNS``, else the terminal's; None when not on a terminal."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if sys.stdout.isatty():
        return shutil.get_terminal_size((100, 24)).columns
    return None


def cut(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters, "…" marking a cut."""
    if len(text) <= width:
        return text
    return text[: max(width - 1, 0)] + "…" if width > 0 else ""


def moment(value: datetime | None) -> str:
    """An instant in UTC to the second, as tables show it (``--json`` keeps it whole)."""
    return "-" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def first_line(text: str | None) -> str:
    return text.splitlines()[0] if text and text.strip() else ""


def render(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    flexible: Sequence[int] = (),
    right: Sequence[int] = (),
    width: int | None = None,
) -> list[str]:
    """The table's lines: a header, then one line per row. Columns in ``right`` are
    right-aligned (numbers); ``flexible`` ones may be cut to fit ``width``."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    if width is not None:
        overflow = sum(widths) + len(GAP) * (len(widths) - 1) - width
        # cut the widest flexible column down to the next widest, and so on: long columns
        # end up equally long rather than one of them cut to nothing
        while overflow > 0:
            candidates = [i for i in flexible if widths[i] > max(MIN_FLEX, len(headers[i]))]
            if not candidates:
                break
            widest = max(candidates, key=lambda i: widths[i])
            floor = max(MIN_FLEX, len(headers[widest]))
            level = max([floor, *(widths[i] for i in candidates if i != widest)])
            step = min(overflow, max(widths[widest] - level, 1))  # a tie: one at a time
            widths[widest] -= step
            overflow -= step

    def line(cells: Sequence[str]) -> str:
        parts = []
        for i, cell in enumerate(cells):
            text = cut(cell, widths[i])
            parts.append(text.rjust(widths[i]) if i in right else text.ljust(widths[i]))
        return GAP.join(parts).rstrip()

    return [line(headers), *(line(row) for row in rows)]
