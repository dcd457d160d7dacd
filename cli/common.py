"""Helpers shared by the click commands: library errors as clean CLI errors, the size type."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import click

from fwp.gan.naming import parse_size
from fwp.gan.tables import format_table

__all__ = ["SIZE", "SizeType", "format_table", "user_errors"]


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Report ValueError/FileNotFoundError (bad input) as a one-line click error, no traceback."""
    try:
        yield
    except (ValueError, FileNotFoundError) as err:
        raise click.ClickException(str(err)) from err


class SizeType(click.ParamType):
    """An image size: ``64`` (square) or ``HxW`` such as ``48x64``; converts to ``(H, W)``."""

    name = "N|HxW"

    def convert(self, value, param, ctx) -> tuple[int, int]:
        if isinstance(value, tuple):
            return value
        try:
            return parse_size(str(value).strip())
        except ValueError as err:
            self.fail(str(err), param, ctx)


SIZE = SizeType()
