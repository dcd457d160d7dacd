"""The grid of a sweep: what is swept (:class:`SweepSpec`), its cells (:class:`Cell`) and the
parsing of seeds and swept options.

A *cell* is one training run: a rule, a seed and a value of every swept option. A
*configuration* is a cell without its seed (``hebb-painter.steps=16``); results are averaged over
the seeds of a configuration. Cells are ordered rules first, then swept options (first axis
slowest), then seeds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import product
from pathlib import Path
from typing import Any

from ..config import (
    ConfigError,
    TrainConfig,
    build_config,
    flatten_config,
    parse_assignment,
    parse_toml_value,
)
from ..naming import digest

__all__ = [
    "GRID_OPTIONS",
    "SHARED_OPTIONS",
    "Cell",
    "SweepSpec",
    "expand",
    "format_value",
    "parse_axis",
    "parse_seeds",
    "resolve_rules",
    "rule_entry",
    "split_rule_entry",
    "split_values",
    "table_options",
]

#: options that every cell shares: the training budget and the FID setting
SHARED_OPTIONS = ("run.steps", "run.minutes", "run.fid_every", "run.fid_num")
#: options swept by their own flags rather than by ``--set``
GRID_OPTIONS = {"painter.rule": "--rule/--rules", "run.seed": "--seeds"}

_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]+")
_MAX_NAME = 100


@dataclass
class SweepSpec:
    """A whole sweep: the grid on top of a base configuration built as ``fwp train`` builds one
    (preset, then configuration file, then options).

    Attributes:
        rules: rule names or shell patterns (``delta*``); empty: the base configuration's rule.
        seeds: seeds of every configuration; empty: the base configuration's seed.
        axes: swept options in order, ``(section.name, values)``; one value = a fixed option.
        preset: the base preset.
        config_file: where ``config_values`` were read from (for the record; never read again).
        config_values: the configuration file's tables ({section: {name: value}}).
        options: fixed options of every cell, ``{"section.name": value}`` (budget included).
        plugins: rule plugins (modules or ``.py`` files) that the cells' processes import.
    """

    rules: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    axes: list[tuple[str, list[Any]]] = field(default_factory=list)
    preset: str = "paper"
    config_file: str | None = None
    config_values: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    plugins: list[str] = field(default_factory=list)

    def build(self, overrides: Mapping[str, Any] | None = None) -> TrainConfig:
        """A validated configuration: preset, configuration file, options, then ``overrides``."""
        origin = self.config_file or "the configuration file"
        options = {**table_options(self.config_values, origin), **self.options, **(overrides or {})}
        config = build_config(self.preset, None, options)
        if "preset" in self.config_values:  # a file may relabel the preset, as in fwp train
            config.preset = str(self.config_values["preset"])
        return config

    def base_config(self) -> TrainConfig:
        """The validated base configuration (before rules, seeds and axes)."""
        return self.build()

    def frozen(self) -> SweepSpec:
        """The same sweep with everything explicit: rule names instead of patterns, the seeds,
        options as the configuration holds them (``"16"`` -> ``[16, 16]``), and the budget and
        FID setting resolved from the preset and file (so that a later change of a preset
        cannot change a stored sweep)."""
        base = self.base_config()
        resolved = flatten_config(base)
        fixed = self.build({key: values[0] for key, values in self.axes if len(values) == 1})
        budget = {key: getattr(fixed.run, key.split(".")[1]) for key in SHARED_OPTIONS}
        return replace(
            self,
            rules=resolve_rules(self.rules) if self.rules else [base.painter.rule],
            seeds=list(self.seeds) or [base.run.seed],
            axes=[(key, list(values)) for key, values in self.axes],
            config_values=dict(self.config_values),
            options={**{key: resolved[key] for key in self.options}, **budget},
            plugins=list(self.plugins),
        )


@dataclass
class Cell:
    """One training run of the sweep: a rule, a seed and the swept options' values."""

    name: str
    configuration: str
    rule: str
    seed: int
    settings: dict[str, Any]
    config: TrainConfig
    run_dir: Path

    @property
    def options_label(self) -> str:
        """The swept options of this cell, ``section.name=value`` separated by spaces."""
        return settings_label(self.settings)


def settings_label(settings: Mapping[str, Any]) -> str:
    """Swept option values as ``section.name=value`` separated by spaces."""
    return " ".join(f"{key}={format_value(value)}" for key, value in settings.items())


def table_options(tables: Mapping[str, Any], origin: str) -> dict[str, Any]:
    """``{section: {name: value}}`` tables (a configuration file, ``[base.*]`` of a sweep file)
    as ``{"section.name": value}``; a ``preset`` entry is not an option and is left out."""
    options: dict[str, Any] = {}
    for section, entries in tables.items():
        if section == "preset":
            continue
        if not isinstance(entries, dict):
            raise ConfigError(f"{origin}: [{section}] must be a table of options; got {entries!r}")
        options.update({f"{section}.{name}": value for name, value in entries.items()})
    return options


def parse_seeds(value: str | int | Sequence[int]) -> list[int]:
    """``3`` -> seeds 0, 1, 2; ``"0,7"`` or ``[0, 7]`` -> exactly those seeds."""
    if isinstance(value, bool):
        raise ConfigError(f"seeds must be a count or a list of seeds; got {value!r}")
    if isinstance(value, int):
        if value < 1:
            raise ConfigError(f"seeds must be a positive count; got {value}")
        return list(range(value))
    if isinstance(value, str):
        text = value.strip()
        if "," not in text:
            if not text.isdigit():
                raise ConfigError(
                    f"--seeds expects a count (3) or a comma-separated list (0,7); got {value!r}"
                )
            return parse_seeds(int(text))
        parts: list[Any] = [p.strip() for p in text.split(",") if p.strip()]
    else:
        parts = list(value)
    try:
        seeds = [int(p) for p in parts]
    except (TypeError, ValueError):
        raise ConfigError(f"seeds must be integers; got {value!r}") from None
    if not seeds or any(s < 0 for s in seeds):
        raise ConfigError(f"seeds must be non-negative integers; got {value!r}")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds repeat a value: {value!r}")
    return seeds


def split_values(raw: str) -> list[str]:
    """Split at the commas outside brackets, braces and quotes: ``16,64`` -> ``["16", "64"]``.

    ``"translation,cutout"`` (quoted) and ``{a=1,b=2}`` stay whole.
    """
    parts: list[str] = []
    current: list[str] = []
    depth, quote = 0, ""
    for ch in raw:
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts]


def parse_axis(text: str) -> tuple[str, list[Any]]:
    """``section.name=v1,v2,...`` -> (``section.name``, values read as TOML when they parse)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set expects section.name=value[,value...]; got {text!r}")
    pieces = split_values(raw)
    if any(piece == "" for piece in pieces):
        raise ConfigError(f"--set {text!r} has an empty value")
    return key.strip(), [parse_assignment(f"{key}={piece}")[1] for piece in pieces]


def _check_axes(axes: Sequence[tuple[str, Sequence[Any]]]) -> None:
    seen = set()
    for key, values in axes:
        if key in GRID_OPTIONS:
            raise ConfigError(f"sweep {key} with {GRID_OPTIONS[key]}, not with --set")
        if key in SHARED_OPTIONS and len(values) > 1:
            raise ConfigError(
                f"all cells share one training budget and FID setting: {key} cannot be swept "
                f"(give it one value)"
            )
        if key in seen:
            raise ConfigError(f"option {key} is swept twice; give all its values in one --set")
        seen.add(key)
        if not values:
            raise ConfigError(f"swept option {key} has no values")
        texts = [json.dumps(v, sort_keys=True) for v in values]
        if len(set(texts)) != len(texts):
            raise ConfigError(f"swept option {key} repeats a value: {list(values)!r}")


def split_rule_entry(entry: str) -> tuple[str, dict[str, Any]]:
    """A sweep's rule entry, ``NAME`` or ``NAME{TABLE}``, as (name, rule options).

    ``NAME{TABLE}`` is a rule with options for its cells only, a TOML inline table as for
    ``painter.rule_options`` (``oja{bounded_rate = true}``), so that one sweep can give one rule
    a documented option that another rule does not have.

    Raises:
        ConfigError: the table is no TOML inline table.
    """
    name, brace, table = entry.partition("{")
    if not brace:
        return entry.strip(), {}
    options = parse_toml_value("{" + table)
    if not isinstance(options, dict):
        raise ConfigError(
            f"rule entry {entry!r}: the options after the name must be a TOML inline table such "
            f"as oja{{bounded_rate = true}}"
        )
    return name.strip(), options


def _toml_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value)  # strings (and lists of them): TOML's basic strings


def rule_entry(name: str, options: Mapping[str, Any]) -> str:
    """The canonical entry of a rule with options: ``NAME{a = 1, b = "x"}`` (``NAME`` alone
    without options); :func:`split_rule_entry` reads it back."""
    if not options:
        return name
    return name + "{" + ", ".join(f"{k} = {_toml_text(v)}" for k, v in options.items()) + "}"


def resolve_rules(patterns: Sequence[str]) -> list[str]:
    """Registered rule names for names and shell patterns, in order, without repeats; an entry
    with options (``NAME{TABLE}``, see :func:`split_rule_entry`) names one rule, whose options are
    checked here and kept in canonical form."""
    from fwp.rules import get_rule, get_spec, list_rules

    names: list[str] = []
    for pattern in patterns:
        name, options = split_rule_entry(pattern)
        if any(ch in name for ch in "*?["):
            if options:
                raise ConfigError(
                    f"rule entry {pattern!r}: options go with one rule name, not a pattern"
                )
            matched = [spec.name for spec in list_rules(name)]
            if not matched:
                raise ConfigError(
                    f"no registered rule matches {pattern!r}; `fwp rules` lists them "
                    f"(a plugin rule needs `fwp --plugin FILE ablate ...`)"
                )
        else:
            try:
                name = get_spec(name).name
                if options:
                    get_rule(name, **options)
            except (ValueError, TypeError) as err:
                raise ConfigError(
                    f"rule entry {pattern!r}: {err}" if options else str(err)
                ) from None
            matched = [rule_entry(name, options)]
        names += [entry for entry in matched if entry not in names]
    return names


def format_value(value: Any) -> str:
    """A short, stable text for an option value (used in cell names and tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, int | str):
        return str(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _name_part(text: str) -> str:
    """``text`` with every run of characters unsafe in a folder name replaced by ``_``."""
    return _UNSAFE.sub("_", text).strip("_") or "_"


def _identity_digest(rule: str, settings: Mapping[str, Any]) -> str:
    return digest(json.dumps([rule, dict(settings)], sort_keys=True), 6)


def _configuration_name(rule: str, settings: Mapping[str, Any]) -> str:
    name, options = split_rule_entry(rule)
    pairs = {**options, **settings}
    parts = [_name_part(name)] + [_name_part(f"{k}={format_value(v)}") for k, v in pairs.items()]
    name = "-".join(parts)
    if len(name) > _MAX_NAME:
        name = f"{name[: _MAX_NAME - 7]}-{_identity_digest(rule, settings)}"
    return name


def expand(spec: SweepSpec, sweep_dir: str | Path) -> list[Cell]:
    """The cells of a sweep, in order: rules, then swept options (first axis slowest), then seeds.

    Every cell's configuration is built and validated here, before any training starts.

    Raises:
        ConfigError: an unknown rule, a pattern matching nothing, a bad option or value (the
            message names the cell), or an option that cannot be swept.
    """
    for key in spec.options:
        if key in GRID_OPTIONS:
            raise ConfigError(f"sweep {key} with {GRID_OPTIONS[key]}")
    _check_axes(spec.axes)
    if any("{" in rule for rule in spec.rules) and any(
        key == "painter.rule_options" for key, values in spec.axes if len(values) > 1
    ):
        raise ConfigError(
            "painter.rule_options is swept with --set and also given to a rule as NAME{TABLE}; "
            "give the options in one place"
        )
    base = spec.base_config()
    rules = resolve_rules(spec.rules) if spec.rules else [base.painter.rule]
    seeds = list(spec.seeds) or [base.run.seed]
    fixed = {key: values[0] for key, values in spec.axes if len(values) == 1}
    swept = [(key, values) for key, values in spec.axes if len(values) > 1]
    sweep_dir = Path(sweep_dir)
    cells: list[Cell] = []
    names: dict[str, tuple[str, dict[str, Any]]] = {}
    for rule in rules:
        rule_name, rule_options = split_rule_entry(rule)
        per_rule = {"painter.rule_options": rule_options} if rule_options else {}
        for combo in product(*(values for _, values in swept)):
            settings = {key: value for (key, _), value in zip(swept, combo, strict=True)}
            configuration = _configuration_name(rule, settings)
            identity = (rule, settings)
            if names.setdefault(configuration, identity) != identity:
                configuration = f"{configuration}-{_identity_digest(rule, settings)}"
                names[configuration] = identity
            for seed in seeds:
                name = f"{configuration}-seed{seed}"
                overrides = {
                    **fixed,
                    **settings,
                    **per_rule,
                    "painter.rule": rule_name,
                    "run.seed": seed,
                }
                try:
                    config = spec.build(overrides)
                except ConfigError as err:
                    raise ConfigError(f"cell {name}: {err}") from None
                cells.append(
                    Cell(name, configuration, rule, seed, settings, config, sweep_dir / name)
                )
    return cells
