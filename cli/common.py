"""Helpers shared by the click commands: turning library errors into clean CLI errors."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import click


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Report ValueError/FileNotFoundError (bad input) as a one-line click error, no traceback."""
    try:
        yield
    except (ValueError, FileNotFoundError) as err:
        raise click.ClickException(str(err)) from err


def format_table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain-text table with aligned columns."""
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows, strict=False)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)
