"""What a user asks of a sweep: a :class:`SweepRequest` from the command line or a sweep file.

A request holds only what was given; everything it leaves out keeps the value of the sweep it is
applied to (the stored sweep of an existing sweep directory, else the defaults). So re-running a
sweep's command with an option dropped asks for the same sweep, and a bare ``fwp ablate
SWEEP_DIR`` asks for exactly the stored one.

A sweep file is TOML::

    [sweep]
    preset = "quick"                 # the base preset (default "paper")
    rules = ["delta", "hebb*"]       # rule names or shell patterns
    seeds = 2                        # a count (seeds 0..N-1) or a list such as [0, 7]
    steps = 300                      # the shared budget: steps and/or minutes
    fid_every = 100                  # the shared FID setting (optional): fid_every, fid_num
    plugins = ["my_rules.py"]        # rule plugins, relative to this file (optional)
    config = "base.toml"             # a configuration file for every cell (optional)

    [sweep.set]                      # swept options: every list is one axis of the grid
    "painter.steps" = [16, 64]

    [base.optim]                     # [base.SECTION] tables: fixed options of every cell
    batch_size = 16
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..config import ConfigError, load_config_file
from .grid import SweepSpec, parse_seeds, table_options

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["SWEEP_FILE_KEYS", "SweepRequest", "absolute_plugin", "load_sweep_file"]

#: the keys of a sweep file's [sweep] table (besides the [sweep.set] table of axes)
SWEEP_FILE_KEYS = (
    "preset",
    "rules",
    "seeds",
    "steps",
    "minutes",
    "fid_every",
    "fid_num",
    "plugins",
    "config",
)


@dataclass
class SweepRequest:
    """The parts of a sweep that a command line or sweep file gives; ``None``/empty = not given.

    Attributes:
        preset: the base preset.
        config_file: a configuration file for every cell (read when the request is applied).
        rules: rule names or shell patterns (replace the sweep's rules).
        seeds: the seeds (replace the sweep's seeds).
        axes: swept options; each replaces the sweep's axis of the same option.
        options: fixed options ``{"section.name": value}``, set over the sweep's.
        plugins: rule plugins, added to the sweep's.
    """

    preset: str | None = None
    config_file: str | None = None
    rules: list[str] | None = None
    seeds: list[int] | None = None
    axes: list[tuple[str, list[Any]]] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    plugins: list[str] = field(default_factory=list)

    def is_empty(self) -> bool:
        """True when nothing about the sweep was given (a bare ``fwp ablate SWEEP_DIR``)."""
        return (
            self.preset is None
            and self.config_file is None
            and not self.rules
            and self.seeds is None
            and not self.axes
            and not self.options
            and not self.plugins
        )

    def then(self, later: SweepRequest) -> SweepRequest:
        """This request with ``later`` given on top of it (a command line over a sweep file)."""
        return replace(
            self,
            preset=later.preset if later.preset is not None else self.preset,
            config_file=later.config_file if later.config_file is not None else self.config_file,
            rules=later.rules or self.rules,
            seeds=later.seeds if later.seeds is not None else self.seeds,
            axes=_overlay_axes(self.axes, later.axes),
            options={**self.options, **later.options},
            plugins=list(dict.fromkeys([*self.plugins, *later.plugins])),
        )

    def apply(self, spec: SweepSpec) -> SweepSpec:
        """``spec`` with what this request gives; the configuration file is read here."""
        config_file, config_values = spec.config_file, spec.config_values
        if self.config_file is not None:
            config_file = str(Path(self.config_file).resolve())
            config_values = load_config_file(self.config_file)
            table_options(config_values, config_file)  # refuse a malformed file here
        return replace(
            spec,
            preset=self.preset if self.preset is not None else spec.preset,
            config_file=config_file,
            config_values=dict(config_values),
            rules=list(self.rules) if self.rules else list(spec.rules),
            seeds=list(self.seeds) if self.seeds is not None else list(spec.seeds),
            axes=_overlay_axes(spec.axes, self.axes),
            options={**spec.options, **self.options},
            plugins=list(dict.fromkeys([*spec.plugins, *map(absolute_plugin, self.plugins)])),
        )


def _overlay_axes(
    base: list[tuple[str, list[Any]]], later: list[tuple[str, list[Any]]]
) -> list[tuple[str, list[Any]]]:
    """``base`` with each axis of ``later`` replacing the axis of the same option (or added)."""
    replaced = {key for key, _ in later}
    return [(k, list(v)) for k, v in base if k not in replaced] + [(k, list(v)) for k, v in later]


def absolute_plugin(plugin: str) -> str:
    """A plugin file as an absolute path (cells' processes run elsewhere); a module stays."""
    return str(Path(plugin).resolve()) if plugin.endswith(".py") else plugin


def _relative_to(sweep_file: Path, item: str) -> str:
    """A path named in a sweep file is relative to the file; a dotted module stays as it is."""
    if item.endswith((".py", ".toml", ".json")) and not Path(item).is_absolute():
        return str((sweep_file.parent / item).resolve())
    return str(item)


def load_sweep_file(path: str | Path) -> SweepRequest:
    """Read a TOML sweep file (format in the module docstring) into a :class:`SweepRequest`."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"sweep file {str(path)!r} does not exist")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot parse sweep file {str(path)!r}: {err}") from err
    unknown = sorted(set(data) - {"sweep", "base"})
    if unknown:
        raise ConfigError(f"sweep file {path}: unknown table(s) {unknown}; use [sweep] and [base]")
    sweep = dict(data.get("sweep", {}))
    axes_table = sweep.pop("set", {})
    unknown = sorted(set(sweep) - set(SWEEP_FILE_KEYS))
    if unknown:
        raise ConfigError(
            f"sweep file {path}: unknown [sweep] key(s) {unknown}; known: {sorted(SWEEP_FILE_KEYS)}"
        )
    request = SweepRequest()
    if "preset" in sweep:
        request.preset = str(sweep["preset"])
    rules = sweep.get("rules", [])
    request.rules = [rules] if isinstance(rules, str) else [str(r) for r in rules]
    if "seeds" in sweep:
        request.seeds = parse_seeds(sweep["seeds"])
    for key in ("steps", "minutes", "fid_every", "fid_num"):
        if key in sweep:
            request.options[f"run.{key}"] = sweep[key]
    base = data.get("base", {})
    for section, entries in base.items():
        if not isinstance(entries, dict):
            raise ConfigError(f"sweep file {path}: [base.{section}] must be a table of options")
    request.options.update(table_options(base, f"sweep file {path}"))
    if not isinstance(axes_table, dict):
        raise ConfigError(f"sweep file {path}: [sweep.set] must be a table")
    for key, values in axes_table.items():
        request.axes.append((key, list(values) if isinstance(values, list) else [values]))
    request.plugins = [_relative_to(path, p) for p in sweep.get("plugins", [])]
    if "config" in sweep:
        request.config_file = _relative_to(path, sweep["config"])
    return request
