"""The run directory: the one owner of its layout. Every reader and writer of a run (the trainer,
``fwp paint``, ``fwp fid``, sweeps, benchmarks) goes through :class:`RunDir`::

    RUN_DIR/
      config.json            the resolved configuration (all that is needed to rebuild the run)
      checkpoints/last.pt    the whole training state, written atomically
      checkpoints/best.pt    the state with the lowest FID (when FID is measured during training)
      samples/               sample grids and painting strips at fixed latents, per step
      metrics.csv            losses, img/s, learning rates, FID/KID
      tb/                    TensorBoard scalars
      paintings/             what ``fwp paint`` writes
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .config import SECTIONS, ConfigError, TrainConfig, set_option
from .files import atomic_write_json
from .plugins import load_recorded_plugins

CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"
LAST = "last.pt"
BEST = "best.pt"
SAMPLES_DIR = "samples"
METRICS_FILE = "metrics.csv"
TENSORBOARD_DIR = "tb"
PAINTINGS_DIR = "paintings"
#: the file that marks a sweep directory (its layout belongs to :mod:`fwp.gan.sweep`)
SWEEP_FILE = "sweep.json"


@dataclass(frozen=True)
class RunDir:
    """The files of one training run under ``path``."""

    path: Path

    def __init__(self, path: str | Path) -> None:
        object.__setattr__(self, "path", Path(path))

    # -- where things are ---------------------------------------------------------------------
    @property
    def config_file(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / CHECKPOINT_DIR

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoint_dir / LAST

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoint_dir / BEST

    @property
    def samples_dir(self) -> Path:
        return self.path / SAMPLES_DIR

    @property
    def metrics_file(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def tensorboard_dir(self) -> Path:
        return self.path / TENSORBOARD_DIR

    def sample_grid(self, step: int, kind: str = "samples") -> Path:
        """The sample grid saved at ``step`` (``kind``: "samples" for the EMA generator)."""
        return self.samples_dir / f"{kind}_{step:07d}.png"

    def painting_strip(self, step: int) -> Path:
        return self.samples_dir / f"strip_{step:07d}.png"

    def latest_sample(self, prefix: str = "samples") -> Path | None:
        """The newest file ``samples/PREFIX_*.png``, if any."""
        files = sorted(self.samples_dir.glob(f"{prefix}_*.png"))
        return files[-1] if files else None

    def paintings_dir(self, seed: int, raw: bool = False) -> Path:
        """Where ``fwp paint`` writes the paintings of ``seed`` (EMA and raw weights apart)."""
        return self.path / PAINTINGS_DIR / (f"raw-seed-{seed}" if raw else f"seed-{seed}")

    # -- what is there ------------------------------------------------------------------------
    def is_run(self) -> bool:
        """True when the folder holds a run (its resolved configuration)."""
        return self.config_file.is_file()

    def has_checkpoint(self) -> bool:
        return self.last_checkpoint.is_file()

    def read_config(self) -> TrainConfig:
        """The resolved configuration saved in the run.

        Raises:
            ConfigError: naming ``config.json`` and what is wrong: not a run, unreadable or bad
                JSON, a missing or unknown section or option, a value of the wrong type.
        """
        if not self.is_run():
            raise ConfigError(self._not_a_run())
        try:
            values = json.loads(self.config_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as err:
            raise ConfigError(f"{self.config_file} is not readable JSON ({err})") from None
        config = config_from_saved(values, str(self.config_file))
        load_recorded_plugins(config.run.plugins, where=f"run {self.path}")
        return config

    def write_config(self, config: TrainConfig) -> Path:
        self.path.mkdir(parents=True, exist_ok=True)
        return atomic_write_json(config.to_dict(), self.config_file)

    def checkpoint(self, best: bool = False) -> Path:
        """The last (or best) checkpoint, with an error that says why it is not there."""
        target = self.best_checkpoint if best else self.last_checkpoint
        if target.is_file():
            return target
        if not self.is_run():
            raise FileNotFoundError(self._not_a_run())
        if best:
            raise FileNotFoundError(
                f"run {str(self.path)!r} has no {BEST} yet: the best checkpoint is kept only when "
                f"FID is measured during training (fwp train --fid-every N); use the last "
                f"checkpoint instead (drop --best)"
            )
        raise FileNotFoundError(
            f"run {str(self.path)!r} has no checkpoint {LAST} yet; train longer (checkpoints are "
            f"written every run.checkpoint_every steps)"
        )

    def _not_a_run(self) -> str:
        """Why this folder is not a run, and what to give instead."""
        if (self.path / SWEEP_FILE).is_file():
            cells = sorted(p.name for p in self.path.iterdir() if RunDir(p).is_run())
            example = f" such as {self.path / cells[0]}" if cells else ""
            return (
                f"{str(self.path)!r} is a sweep directory, not a run; give one of its cells"
                f"{example} (fwp ablate report {self.path} summarises them all)"
            )
        return (
            f"{str(self.path)!r} is not a run directory (it has no {CONFIG_FILE}); give a run "
            f"directory made by `fwp train` or a checkpoint file"
        )

    @staticmethod
    def of_checkpoint(path: str | Path) -> RunDir:
        """The run directory a checkpoint file belongs to (``RUN/checkpoints/x.pt`` -> ``RUN``)."""
        path = Path(path)
        return RunDir(path.parent.parent if path.parent.name == CHECKPOINT_DIR else path.parent)


def resolve_checkpoint(run_dir_or_checkpoint: str | Path, best: bool = False) -> Path:
    """A checkpoint file from a run directory (its last, or best, checkpoint) or a file path."""
    path = Path(run_dir_or_checkpoint)
    if path.is_file():
        return path
    if not path.is_dir():
        raise FileNotFoundError(f"{str(path)!r} is neither a run directory nor a checkpoint file")
    return RunDir(path).checkpoint(best=best)


#: the Python types a saved option may hold, by the type of the option's default
_SAVED_TYPES: dict[type, tuple[type, ...]] = {
    bool: (bool,),
    int: (int,),
    float: (float, int),
    str: (str,),
    list: (list,),
    dict: (dict,),
}


def config_from_saved(values: Any, source: str) -> TrainConfig:
    """The configuration a run saved (its ``config.json``, or a checkpoint's ``config`` entry):
    no unknown section or option, each option of its type, with no conversion (``"3"`` is not an
    integer here, unlike on the command line). A section or option the file lacks takes its
    default: it was added to fwp after the run was saved, and new options default to the
    behaviour fwp had before them.

    Args:
        values: the parsed JSON (or checkpoint entry).
        source: how errors name it (the file, or "FILE (its configuration)").

    Raises:
        ConfigError: ``source: what is wrong``, naming the section or the option.
    """
    if not isinstance(values, dict):
        raise ConfigError(
            f"{source} must hold a table of configuration sections; got {type(values).__name__}"
        )
    unknown = sorted(str(key) for key in values if key not in SECTIONS and key != "preset")
    if unknown:
        raise ConfigError(
            f"{source}: unknown section {unknown[0]!r}; sections are {', '.join(SECTIONS)}"
        )
    if not isinstance(values.get("preset", ""), str):
        raise ConfigError(f"{source}: preset must be a string")
    config = TrainConfig()
    for section in SECTIONS:
        if section not in values:
            continue
        entries = values[section]
        if not isinstance(entries, dict):
            raise ConfigError(f"{source}: section {section!r} must be a table of options")
        defaults = getattr(config, section)
        names = {f.name for f in fields(defaults)}
        unknown = sorted(str(name) for name in entries if name not in names)
        if unknown:
            raise ConfigError(
                f"{source}: unknown option {section}.{unknown[0]}; options of {section!r}: "
                f"{', '.join(sorted(names))}"
            )
        for name in sorted(names):
            where = f"{section}.{name}"
            default = getattr(defaults, name)
            if name not in entries:
                continue
            value = entries[name]
            allowed = _SAVED_TYPES.get(type(default))
            if allowed is not None and type(value) not in allowed:
                kind = type(default).__name__
                raise ConfigError(f"{source}: {where} must be of type {kind}; got {value!r}")
            try:
                set_option(config, where, value)
            except ConfigError as err:
                raise ConfigError(f"{source}: {err}") from None
    config.preset = values.get("preset", config.preset)
    return config
