"""Markdown output shared by the benchmark scripts, so docs can take their tables as-is."""

from __future__ import annotations

from collections.abc import Mapping


def print_figure_sections(sections: Mapping[str, Mapping[str, object]]) -> None:
    """One ``### title`` and a two-column figure/value table per section."""
    for title, figures in sections.items():
        print(f"\n### {title}\n\n| figure | value |\n|---|---|")
        for key, value in figures.items():
            print(f"| {key} | {value} |")
