"""Converting checkpoints of fwp before format 2 (whose numpy RNG state is pickled) to the current
format: the one place fwp may unpickle a file, and only when the caller trusts it
(``fwp checkpoint convert PATH --trust-checkpoint``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .checkpoint import (
    CHECKPOINT_FORMAT,
    LEGACY_GLOBALS,
    CheckpointError,
    UnsafeCheckpointError,
    _check_loaded,
    _describe,
    _inspect,
    _torch_load,
    _unsafe_globals,
    load_checkpoint,
    save_checkpoint,
)
from .config import TrainConfig
from .rundir import RunDir
from .runtime import plain_rng_state


@dataclass(frozen=True)
class ConvertedCheckpoint:
    """One file handled by :func:`convert_checkpoint`.

    Attributes:
        source, destination: the file read and the file written (the same when in place).
        step: the training step the checkpoint holds.
        converted: False when the source was already in the current format (then nothing is
            written in place, and a destination gets a copy).
    """

    source: Path
    destination: Path
    step: int
    converted: bool


def convert_checkpoint(
    source: str | Path,
    destination: str | Path | None = None,
    *,
    trust_checkpoint: bool = False,
) -> list[ConvertedCheckpoint]:
    """Rewrite checkpoints of fwp before format 2 in the current format.

    Args:
        source: a checkpoint file, or a run directory (its last and best checkpoints).
        destination: where to write a converted file (default: over the source, atomically);
            only with a file.
        trust_checkpoint: allow unpickling the source, which runs any code it holds. Needed for
            checkpoints of format 1 (their numpy RNG state is pickled); never needed for files
            that already load safely. Even with it, a file whose pickle names anything beyond
            what format-1 checkpoints need (:data:`LEGACY_GLOBALS`) is refused.

    Returns:
        one :class:`ConvertedCheckpoint` per file (already current files are not rewritten in
        place).

    Raises:
        UnsafeCheckpointError: unpickling is needed and ``trust_checkpoint`` is False, or the
            file names callables that no fwp checkpoint needs.
        CheckpointError: the file is not an fwp checkpoint (see :func:`load_checkpoint`).
    """
    source = Path(source)
    if source.is_dir():
        if destination is not None:
            raise CheckpointError("give a destination only when converting a single file")
        run = RunDir(source)
        files = [p for p in (run.last_checkpoint, run.best_checkpoint) if p.is_file()]
        if not files:
            run.checkpoint()  # raises the run directory's own explanation
        return [_convert_file(p, p, trust_checkpoint) for p in files]
    target = Path(destination) if destination is not None else source
    return [_convert_file(source, target, trust_checkpoint)]


def _convert_file(source: Path, destination: Path, trust: bool) -> ConvertedCheckpoint:
    if not source.is_file():
        raise FileNotFoundError(f"checkpoint {str(source)!r} does not exist")
    name = repr(str(source))
    archive = _inspect(source)
    unsafe = _unsafe_globals(archive)
    if not unsafe:
        state = _torch_load(archive, "cpu", weights_only=True)
        if isinstance(state, dict) and state.get("format") == CHECKPOINT_FORMAT:
            _check_loaded(state, source)  # already current: checked whole, copied if asked
            if destination != source:
                save_checkpoint(state, destination)
            return ConvertedCheckpoint(source, destination, state["step"], converted=False)
    elif not unsafe <= LEGACY_GLOBALS:
        raise UnsafeCheckpointError(
            f"{name} would call {', '.join(sorted(unsafe))} when unpickled, which no fwp "
            f"checkpoint does: refusing to convert it, even with --trust-checkpoint"
        )
    elif not trust:
        raise UnsafeCheckpointError(
            f"converting {name} unpickles it, which runs any code it holds; if the file is "
            f"yours or from a source you trust, pass --trust-checkpoint (trust_checkpoint=True)"
        )
    else:
        state = _torch_load(archive, "cpu", weights_only=False)
    if not (isinstance(state, dict) and {"config", "objective", "ema", "rng"} <= set(state)):
        raise CheckpointError(
            f"{name} is not an fwp checkpoint: it holds {_describe(state)}; only checkpoints "
            f"written by `fwp train` can be converted"
        )
    upgraded = _upgrade_format_1(state, name)
    save_checkpoint(upgraded, destination)
    checked = load_checkpoint(destination)
    return ConvertedCheckpoint(source, destination, checked["step"], True)


def _upgrade_format_1(state: dict[str, Any], name: str) -> dict[str, Any]:
    """A format-1 state in the current format: plain RNG states and scalars, and its
    configuration completed with the defaults of options it predates (as format 1 was read)."""
    try:
        config = TrainConfig.from_dict(state["config"]).to_dict()
        rng = plain_rng_state(state["rng"])
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{name} cannot be converted: {err}") from None
    best_fid = state.get("best_fid")
    return {
        **{k: v for k, v in state.items() if k not in ("format", "version")},
        "config": config,
        "rng": rng,
        "step": int(state.get("step", 0)),
        "elapsed": float(state.get("elapsed", 0.0)),
        "best_fid": None if best_fid is None else float(best_fid),
        "nan_retries": int(state.get("nan_retries", 0)),
    }
