"""``sweep.json``: the whole sweep, stored in its directory so that re-running it asks for exactly
the same sweep. It holds::

    version      2
    preset       the base preset
    config_file  where the configuration file was read from (for the record), or null
    config       that file's tables, as read when the sweep was made (never read again)
    rules        rule names (patterns are resolved when the sweep is stored)
    seeds        the seeds
    axes         swept (and single-valued) options: [{"option": "painter.steps", "values": [..]}]
    budget       {"run.steps": .., "run.minutes": ..}: every cell's training budget
    fid          {"run.fid_every": .., "run.fid_num": ..}: every cell's FID setting
    options      the other fixed options of every cell, {"section.name": value}
    plugins      rule plugins every cell's process imports (modules, absolute .py paths)
    cells        the cells' folder names, in grid order
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..files import atomic_write_json
from .grid import SweepSpec
from .records import (
    SweepFileError,
    is_int,
    is_list_of,
    is_optional,
    is_str,
    is_table,
    read_optional,
    take,
)

__all__ = ["SWEEP_FILE", "SWEEP_FORMAT", "StoredSweep", "read_sweep", "write_sweep"]

SWEEP_FILE = "sweep.json"
#: the version of the sweep.json layout written by this fwp
SWEEP_FORMAT = 2

_BUDGET = ("run.steps", "run.minutes")
_FID = ("run.fid_every", "run.fid_num")
_HINT = "fix the file, or delete it and run the sweep's whole command again (done cells are kept)"


@dataclass
class StoredSweep:
    """What ``sweep.json`` holds: the sweep and its cells' folder names in grid order."""

    spec: SweepSpec
    cells: list[str]


def _is_axis(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("option"), str)
        and isinstance(value.get("values"), list)
    )


def sweep_to_json(spec: SweepSpec, cells: list[str]) -> dict[str, Any]:
    """The ``sweep.json`` object of a (frozen) sweep."""
    shared = (*_BUDGET, *_FID)
    return {
        "version": SWEEP_FORMAT,
        "preset": spec.preset,
        "config_file": spec.config_file,
        "config": spec.config_values,
        "rules": spec.rules,
        "seeds": spec.seeds,
        "axes": [{"option": key, "values": values} for key, values in spec.axes],
        "budget": {key: spec.options[key] for key in _BUDGET if key in spec.options},
        "fid": {key: spec.options[key] for key in _FID if key in spec.options},
        "options": {k: v for k, v in spec.options.items() if k not in shared},
        "plugins": spec.plugins,
        "cells": cells,
    }


def sweep_from_json(values: dict[str, Any], path: Path) -> StoredSweep:
    """Read a ``sweep.json`` object, refusing missing keys and wrong types by name."""

    def get(key: str, check: Any, expected: str) -> Any:
        return take(values, key, check, expected, path, _HINT)

    version = values.get("version")
    if version != SWEEP_FORMAT:
        if version == 1 or "version" not in values:
            raise SweepFileError(
                f"{path}: lists the cells but not the sweep's settings (written by an older fwp); "
                f"delete it and run the sweep's whole command again (done cells are kept)"
            )
        raise SweepFileError(
            f"{path}: layout version {version!r}; this fwp reads version {SWEEP_FORMAT} "
            f"(written by another fwp version?)"
        )
    budget = get("budget", is_table, 'an object such as {"run.steps": 1000}')
    fid = get("fid", is_table, 'an object such as {"run.fid_every": 0}')
    options = get("options", is_table, 'an object of {"section.name": value}')
    for table, keys, name in ((budget, _BUDGET, "budget"), (fid, _FID, "fid")):
        unknown = sorted(set(table) - set(keys))
        if unknown:
            raise SweepFileError(
                f"{path}: {name!r} holds {unknown}; it may hold only {', '.join(keys)}; {_HINT}"
            )
    spec = SweepSpec(
        rules=get("rules", is_list_of(is_str), "a list of rule names"),
        seeds=get("seeds", is_list_of(is_int), "a list of integer seeds"),
        axes=[
            (axis["option"], list(axis["values"]))
            for axis in get(
                "axes", is_list_of(_is_axis), 'a list of {"option": NAME, "values": [...]}'
            )
        ],
        preset=get("preset", is_str, "a preset name"),
        config_file=get("config_file", is_optional(is_str), "a path or null"),
        config_values=get("config", is_table, "an object of configuration tables"),
        options={**options, **budget, **fid},
        plugins=get("plugins", is_list_of(is_str), "a list of modules or .py files"),
    )
    return StoredSweep(spec, get("cells", is_list_of(is_str), "a list of cell folder names"))


def read_sweep(sweep_dir: str | Path) -> StoredSweep | None:
    """The sweep stored in ``sweep_dir``; ``None`` when it has no ``sweep.json``.

    Raises:
        SweepFileError: ``sweep.json`` is not valid JSON, lacks a key or has a wrong type.
    """
    return read_optional(Path(sweep_dir) / SWEEP_FILE, _HINT, sweep_from_json)


def write_sweep(sweep_dir: str | Path, spec: SweepSpec, cells: list[str]) -> Path:
    """Store ``spec`` (frozen: see :meth:`SweepSpec.frozen`) and its cells in ``sweep.json``."""
    return atomic_write_json(sweep_to_json(spec, cells), Path(sweep_dir) / SWEEP_FILE)
