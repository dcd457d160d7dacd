"""Helpers shared by the click commands: library errors as clean CLI errors, the size type."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import click

from fwp.gan.naming import parse_size
from fwp.gan.plugins import load_plugins
from fwp.gan.tables import format_table

__all__ = ["SIZE", "SizeType", "format_table", "given_plugins", "plugin_option", "user_errors"]


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


def _load_plugins(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> None:
    with user_errors():
        load_plugins(value)
    ctx.find_root().meta.setdefault("fwp_plugins", []).extend(value)


def given_plugins(ctx: click.Context) -> list[str]:
    """Every ``--plugin`` of this command line, before and after the subcommand, in order."""
    root = ctx.find_root()
    return [*(root.params.get("plugins") or ()), *root.meta.get("fwp_plugins", [])]


#: ``--plugin`` after a subcommand (``fwp train --plugin my_rule.py ...``); it loads at once,
#: before the other options are checked, like ``fwp --plugin`` before the subcommand
plugin_option = click.option(
    "--plugin",
    multiple=True,
    metavar="MODULE_OR_FILE.py",
    expose_value=False,
    is_eager=True,
    callback=_load_plugins,
    help="Import a module or Python file first (e.g. to register a rule); runs its code. "
    "Repeatable; also accepted before the command.",
)
