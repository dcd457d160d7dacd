"""The configuration options of ``fwp train`` (and ``fwp ablate``): one click option per
configuration field, with its meaning, its choices and the selected preset's default, shown in
groups with the options researchers change most first."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

from fwp.gan.config import PRESETS, SECTIONS, option_table, preset_defaults

#: short names for the options researchers change most; every option also has --section-name.
ALIASES: dict[str, str] = {
    "data.source": "--data",
    "data.size": "--size",
    "data.channels": "--channels",
    "painter.rule": "--rule",
    "objective.name": "--objective",
    "run.steps": "--steps",
    "run.minutes": "--minutes",
    "run.seed": "--seed",
    "run.device": "--device",
    "run.fid_every": "--fid-every",
    "run.fid_num": "--fid-num",
    "run.reference": "--reference",
    "run.compile": "--compile",
    "optim.batch_size": "--batch-size",
    "optim.amp": "--amp",
    "refiner.enabled": "--refiner",
    "generator.kind": "--generator",
    "generator.init_from": "--init-from",
}

#: the options shown first, in this order (the rest follow by section)
MAIN_OPTIONS = (
    "preset",
    "opt__data__source",
    "opt__data__size",
    "opt__data__channels",
    "opt__generator__kind",
    "opt__painter__rule",
    "opt__objective__name",
    "opt__run__steps",
    "opt__run__minutes",
    "opt__optim__batch_size",
    "opt__run__seed",
    "opt__run__fid_every",
    "opt__run__fid_num",
    "run_dir",
    "resume_dir",
)

#: section titles of the grouped help
SECTION_TITLES = {
    "data": "Data",
    "generator": "Generator",
    "painter": "Painter",
    "refiner": "Refiner",
    "discriminator": "Discriminator",
    "objective": "Objective",
    "coop": "Cooperative (--objective coop)",
    "introspective": "Introspective (--objective introspective)",
    "optim": "Optimisation",
    "run": "Run",
}

PREFIX = "opt__"


def param_name(dotted: str) -> str:
    """The click parameter name of a configuration option (``run.steps`` -> ``opt__run__steps``)."""
    return PREFIX + dotted.replace(".", "__")


def given_options(params: dict[str, Any]) -> dict[str, Any]:
    """``{"section.name": value}`` of the configuration options given on the command line."""
    return {
        key[len(PREFIX) :].replace("__", "."): value
        for key, value in params.items()
        if key.startswith(PREFIX) and value is not None
    }


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return json.dumps(value) if isinstance(value, list | dict) else str(value)


def _metavar(kind: str, choices: tuple[str, ...] | None, dotted: str) -> str:
    if choices:
        return "[" + "|".join(choices) + "]"
    if dotted == "data.size":
        return "N|HxW"
    if kind.startswith("dict"):
        return "TABLE"
    if kind.startswith("list"):
        return "N[,N...]"
    return {"int": "INT", "float": "NUM", "str": "TEXT"}.get(kind, kind.upper())


def config_options(command: Callable) -> Callable:
    """Add one click option per configuration field (the help shows the preset's defaults)."""
    for info in reversed(option_table()):
        if not info.cli:
            continue
        section, name = info.dotted.split(".")
        names = [f"--{section}-{name.replace('_', '-')}"]
        if info.dotted in ALIASES:
            names.insert(0, ALIASES[info.dotted])
        if info.kind == "bool":
            flags = [f"{n}/--no-{n[2:]}" for n in names]
            option = click.option(*flags, param_name(info.dotted), default=None, help=info.help)
        else:
            option = click.option(
                *names,
                param_name(info.dotted),
                type={"int": int, "float": float}.get(info.kind, str),
                default=None,
                help=info.help,
                metavar=_metavar(info.kind, info.choices, info.dotted),
            )
        command = option(command)
    return command


def _selected_preset(args: list[str]) -> str:
    """The ``--preset`` among raw arguments (for help), else ``paper``."""
    for index, arg in enumerate(args):
        if arg == "--preset" and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith("--preset="):
            return arg.split("=", 1)[1]
    return "paper"


class GroupedHelpCommand(click.Command):
    """A command whose help lists the main options first, then the configuration options by
    section, each with the default of the preset selected on the same command line."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["fwp_preset"] = _selected_preset(args)
        return super().parse_args(ctx, args)

    def _default_label(self, ctx: click.Context, dotted: str) -> str:
        preset = ctx.meta.get("fwp_preset", "paper")
        if preset not in PRESETS:
            preset = "paper"
        value = preset_defaults(preset)[dotted]
        paper = preset_defaults("paper")[dotted]
        if preset == "paper" or value == paper:
            return f"[default: {_shown(value)}]"
        return f"[{preset} preset: {_shown(value)}; paper: {_shown(paper)}]"

    def _record(self, ctx: click.Context, param: click.Parameter) -> tuple[str, str] | None:
        record = param.get_help_record(ctx)
        if record is None:
            return None
        names, text = record
        if param.name and param.name.startswith(PREFIX):
            dotted = param.name[len(PREFIX) :].replace("__", ".")
            text = f"{text} {self._default_label(ctx, dotted)}".strip()
        return names, text

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        params = {p.name: p for p in self.get_params(ctx)}
        shown: set[str] = set()

        def write(title: str, names: list[str]) -> None:
            rows = [r for n in names if (r := self._record(ctx, params[n])) is not None]
            shown.update(names)
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)

        write("Main options", [n for n in MAIN_OPTIONS if n in params])
        for section in SECTIONS:
            prefix = f"{PREFIX}{section}__"
            names = [n for n in params if n and n.startswith(prefix) and n not in shown]
            write(f"{SECTION_TITLES.get(section, section)} options", names)
        write("Other options", [n for n in params if n and n not in shown])
