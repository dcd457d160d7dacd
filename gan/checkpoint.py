"""Checkpoints: saving the whole training state, and loading a trained generator from a run.

A checkpoint holds the whole training state (networks, optimisers, EMA, every RNG state, step,
data order) and is written atomically (:mod:`fwp.gan.files`), so a kill at any moment leaves
either the old or the new file, never a torn one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from fwp.painters import Generator

from .config import TrainConfig
from .files import atomic_save
from .generators import build_generator
from .plugins import load_recorded_plugins
from .rundir import resolve_checkpoint


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write a training state atomically."""
    return atomic_save(state, path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`, with a clear error when unusable."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:
        raise ValueError(f"checkpoint {str(path)!r} cannot be read ({err})") from err


def load_generator(
    run_dir_or_checkpoint: str | Path,
    ema: bool = True,
    device: str | torch.device = "cpu",
    best: bool = False,
) -> tuple[Generator, TrainConfig]:
    """Load a trained generator (EMA weights by default) and the configuration it was trained
    with, from a run directory (its last or best checkpoint) or a checkpoint file.

    Returns:
        (the generator in eval mode on ``device``, its :class:`TrainConfig`)
    """
    state = load_checkpoint(resolve_checkpoint(run_dir_or_checkpoint, best=best))
    config = TrainConfig.from_dict(state["config"])
    load_recorded_plugins(config.run.plugins, where=f"checkpoint {run_dir_or_checkpoint}")
    generator = build_generator(config)
    weights = state["ema"] if ema else state["objective"]["networks"]["generator"]
    generator.load_state_dict(weights)
    generator.to(device).eval()
    return generator, config
