"""The ``fwp`` command: a thin click layer over fwp.rules, fwp.painters and fwp.gan."""

from __future__ import annotations

import click

from fwp.gan.plugins import load_plugins
from fwp.rules import PLUGIN_HINT, get_spec, list_rules

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

    Train a painter (`fwp train`), render its paintings (`fwp paint`), measure FID/KID
    (`fwp fid`), compare rules in a grid of runs (`fwp ablate`), list the registered rules
    (`fwp rules`) and the built-in datasets (`fwp data list`).

    --plugin goes before the command (`fwp --plugin my_rule.py train ...`) or after it.
    """
    with user_errors():
        load_plugins(plugins)


def _is_pattern(text: str) -> bool:
    return any(ch in text for ch in "*?[")


def _describe_rule(name: str) -> str:
    """The detail view of one rule: what it is, where it comes from, its options."""
    spec = get_spec(name)
    configured = ", ".join(f"{key}={value!r}" for key, value in spec.config.items())
    facts = [
        ["family", f"{spec.family} ({spec.cls.__module__}.{spec.cls.__qualname__})"],
        ["description", spec.description or "(none)"],
        ["fast path", "yes (parallel paint)" if spec.has_fast_path else "no (scans step)"],
        ["origin", spec.origin],
        ["configuration", configured or "(the family's defaults)"],
    ]
    width = max(len(label) for label, _ in facts)
    lines = [spec.name] + [f"  {label.ljust(width)}  {value}" for label, value in facts]
    options = spec.options
    if not options:
        return "\n".join([*lines, "", "options: none"])
    rows = [[o.name, o.default_text(), o.meaning or "(undocumented)"] for o in options]
    return "\n".join(
        [
            *lines,
            "",
            f"options (set with: fwp train --rule {spec.name} "
            "--set painter.rule_options='{OPTION=VALUE}'):",
            format_table(["option", "default", "meaning"], rows),
        ]
    )


@cli.command("rules")
@click.argument("pattern", default="*")
def rules(pattern: str) -> None:
    """List registered learning rules, or describe one.

    PATTERN is a shell pattern (e.g. 'delta*') that lists the matching rules; an exact rule name
    (e.g. 'hebb_decay') shows that rule's family, description, fast path, origin and options.
    """
    if not _is_pattern(pattern):
        with user_errors():
            click.echo(_describe_rule(pattern))
        return
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
        raise click.ClickException(f"no registered rule matches {pattern!r}. {PLUGIN_HINT}")
    click.echo(format_table(["name", "family", "description", "fast path", "origin"], rows))


cli.add_command(train)
cli.add_command(paint)
cli.add_command(data)
cli.add_command(fid)
cli.add_command(ablate)
cli.add_command(checkpoint)
