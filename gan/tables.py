"""Text tables: aligned plain text for the terminal and Markdown for reports."""

from __future__ import annotations

from collections.abc import Sequence


def format_table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], numbers_right: bool = False
) -> str:
    """A plain-text table with aligned columns and a rule under the header; with
    ``numbers_right`` every column but the first is right-aligned (for tables of numbers)."""
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows, strict=False)]

    def line(cells: Sequence[object]) -> str:
        texts = [
            str(c).rjust(w) if numbers_right and i else str(c).ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(texts).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


def markdown_escape(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A Markdown table as lines (cells are escaped)."""
    lines = ["| " + " | ".join(markdown_escape(h) for h in headers) + " |"]
    lines.append("|" + "|".join("---" for _ in headers) + "|")
    lines += ["| " + " | ".join(markdown_escape(c) or "–" for c in row) + " |" for row in rows]
    return lines
