"""Crash-safe checkpoints and loading a trained generator from a run directory.

A checkpoint holds the whole training state (networks, optimisers, EMA, grad scaler, every RNG
state, step, data order) and is written atomically: to a temporary file in the same folder, flushed
to disk, then renamed over the old one, so a kill at any moment leaves either the old or the new
file, never a torn one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import torch

from fwp.painters import Generator, UNetRefiner

CHECKPOINT_DIR = "checkpoints"
LAST = "last.pt"
BEST = "best.pt"
CONFIG_FILE = "config.json"


def _temporary_beside(path: Path) -> tuple[int, str]:
    """A temporary file in ``path``'s folder with the permissions a plain ``open`` would give."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)
    return fd, name


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Write ``path`` atomically: ``write`` fills a binary temporary file beside it, which is
    flushed, fsynced and renamed over ``path``. Readers see the old file or the whole new one;
    on any failure the temporary file is removed and ``path`` is untouched."""
    path = Path(path)
    fd, tmp_name = _temporary_beside(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def atomic_save(payload: Any, path: str | Path) -> Path:
    """``torch.save`` to ``path`` via a temporary file, fsync and rename (see
    :func:`atomic_write`), then an fsync of the folder so that the rename itself is durable."""
    path = atomic_write(path, lambda handle: torch.save(payload, handle))
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
    return path


def atomic_write_text(text: str, path: str | Path) -> Path:
    """Write a UTF-8 text file atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`atomic_save`, with a clear error when it is unusable."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:
        raise ValueError(f"checkpoint {str(path)!r} cannot be read ({err})") from err


def resolve_checkpoint(run_dir_or_checkpoint: str | Path, best: bool = False) -> Path:
    """A checkpoint file from a run directory (its last, or best, checkpoint) or a file path."""
    path = Path(run_dir_or_checkpoint)
    if path.is_file():
        return path
    if not path.is_dir():
        raise FileNotFoundError(f"{str(path)!r} is neither a run directory nor a checkpoint file")
    candidate = path / CHECKPOINT_DIR / (BEST if best else LAST)
    if not candidate.is_file():
        raise FileNotFoundError(
            f"run directory {str(path)!r} has no checkpoint {candidate.name} yet; train longer "
            f"(checkpoints are written every run.checkpoint_every steps) or pass a checkpoint file"
        )
    return candidate


def build_generator(config: dict[str, Any]) -> Generator:
    """A :class:`Generator` with the architecture of a resolved training configuration."""
    from .config import TrainConfig

    train_config = TrainConfig.from_dict(config)
    refiner = None
    if train_config.refiner.enabled:
        refiner = UNetRefiner(
            channels=train_config.data.channels,
            base_channels=train_config.refiner.base_channels,
            depth=train_config.refiner.depth,
        )
    return Generator(train_config.painter_config(), refiner)


def load_painter(
    run_dir_or_checkpoint: str | Path,
    ema: bool = True,
    device: str | torch.device = "cpu",
    best: bool = False,
) -> tuple[Generator, dict[str, Any]]:
    """Load a trained generator (EMA weights by default) and its resolved configuration.

    Returns:
        (generator in eval mode on ``device``, the configuration as a nested dict)
    """
    state = load_checkpoint(resolve_checkpoint(run_dir_or_checkpoint, best=best))
    config = state["config"]
    generator = build_generator(config)
    weights = state["ema"] if ema else state["objective"]["networks"]["generator"]
    generator.load_state_dict(weights)
    generator.to(device).eval()
    return generator, config
