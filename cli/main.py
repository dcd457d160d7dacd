"""The ``fwp`` command: a thin click layer over fwp.rules, fwp.painters and fwp.gan."""

from __future__ import annotations

import click

from fwp.rules import list_rules, load_plugin

from .ablate_cmd import ablate
from .checkpoint_cmd import checkpoint
from .common import format_table, user_errors
from .data_cmd import data
from .fid_cmd import fid
from .paint_cmd import paint
from .train_cmd import train


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--plugin",
    "plugins",
    multiple=True,
    metavar="MODULE_OR_FILE.py",
    help="Import a module or Python file before the command (e.g. to register a rule). Repeatable.",
)
def cli(plugins: tuple[str, ...]) -> None:
    """fwp: images as weight matrices, painted by synaptic learning rules.

    Train a learning-rule painter as a GAN (`fwp train`), render its paintings (`fwp paint`),
    measure FID/KID (`fwp fid`), and compare rules (`fwp rules`).
    """
    for plugin in plugins:
        with user_errors():
            load_plugin(plugin)


@cli.command("rules")
@click.argument("pattern", default="*")
def rules(pattern: str) -> None:
    """List registered learning rules (optionally matching a shell PATTERN, e.g. 'delta*')."""
    rows = [
        [
            spec.name,
            spec.family,
            spec.description,
            "yes" if spec.has_fast_path else "no",
            spec.origin,
        ]
        for spec in list_rules(pattern)
    ]
    if not rows:
        raise click.ClickException(f"no registered rule matches {pattern!r}")
    click.echo(format_table(["name", "family", "description", "fast path", "origin"], rows))


cli.add_command(train)
cli.add_command(paint)
cli.add_command(data)
cli.add_command(fid)
cli.add_command(ablate)
cli.add_command(checkpoint)
