"""Checkpoints: the whole training state as plain data, written atomically, read without ever
running code from the file. :func:`load_checkpoint` is the one loader: ``fwp paint``, ``fwp fid``,
``fwp train --resume``, sweeps and any other reader go through it (or through
:func:`load_generator`, which uses it).

Format (version :data:`CHECKPOINT_VERSION`): a ``torch.save`` zip archive of one table that
``torch.load(path, weights_only=True)`` reads, holding only tensors, dicts, lists, tuples,
strings, numbers, booleans and None::

    format        "fwp-checkpoint" (the marker)        version      2
    config        the resolved TrainConfig as a table  step         int
    objective     {"networks": {name: state dict}, "optimizers": {name: state dict}}
    ema           the EMA generator's state dict       data         DataStream position (ints)
    rng           torch CPU/CUDA states (uint8 tensors), numpy's MT19937 key as 624 ints and its
                  position, python random's 625 ints (see :func:`fwp.gan.runtime.rng_state`)
    elapsed       training seconds (float)             best_fid     float or None
    nan_retries   int
    rng_ranks     only from a run of several ranks: every rank's ``rng`` table, in rank order
                  (``rng`` is rank 0's), so that every rank resumes its own random draws

Threats, and what the loader does about them. What it reads: the file's bytes, once: the zip
records ``NAME/data.pkl`` (tables, lists, strings, numbers) and ``NAME/data/N`` (raw tensor
bytes). What it never does: import a module or call a function that the file names, unpickle an
arbitrary object, or read a raw pickle or a legacy (pre-zip) torch file.

- Code in a pickle (an object whose ``__reduce__`` returns ``os.system``, say): before torch reads
  anything, every callable the pickle names is listed from its opcodes without executing them
  (:mod:`fwp.gan.torchfile`); anything beyond torch's tensor rebuilding and ``OrderedDict`` is
  refused with :class:`UnsafeCheckpointError`. Then ``torch.load(weights_only=True)`` reads it
  with torch's restricted unpickler: two independent gates.
- The file changing between inspection and loading: the bytes inspected are the bytes loaded.
- Raw pickles, legacy (pre-zip) torch files and zip archives with two records of one name
  (readers could disagree about which counts): refused before torch sees them.
- Bugs in torch's restricted unpickler (CVE-2025-32434 before torch 2.6, CVE-2026-24747 before
  2.10): the globals gate does not depend on it; with torch older than :data:`SAFE_TORCH` the
  loader warns.
- Checkpoints of fwp before format 2 (numpy's RNG state pickled as an array): refused; converting
  them unpickles, so :mod:`fwp.gan.checkpoint_convert` does it only with
  ``trust_checkpoint=True`` (``fwp checkpoint convert FILE --trust-checkpoint``), and even then
  only for files whose pickle names nothing beyond what those checkpoints need.
- Bad values: the configuration must be a complete, well-typed, valid :class:`TrainConfig`;
  its learning rule must be registered by code the user chose to run (built-in, an installed
  entry point, ``--plugin``): a checkpoint names a rule, it never brings one.
- Not defended: a file may be large (its tensors are allocated), and its weights may paint
  anything.
"""

from __future__ import annotations

import io
import re
import warnings
from pathlib import Path
from typing import Any

import torch
from torch.torch_version import TorchVersion

from .config import ConfigError, TrainConfig
from .files import atomic_save
from .generators import TrainedGenerator, build_generator
from .plugins import load_recorded_plugins
from .rundir import config_from_saved, resolve_checkpoint
from .runtime import check_rng_state
from .torchfile import TorchArchive, TorchFileError, read_archive

#: the marker that identifies an fwp checkpoint
CHECKPOINT_FORMAT = "fwp-checkpoint"
#: the format version this fwp writes and reads (1: pickled RNG states, before the marker)
CHECKPOINT_VERSION = 2
#: the oldest torch without a known code-execution bypass of ``weights_only=True``
SAFE_TORCH = "2.10"

#: callables the pickle of a checkpoint may name: the dict type of state dicts, torch's tensor
#: rebuilding and its typed storages (torch.FloatStorage, ...)
SAFE_GLOBALS = frozenset({"collections.OrderedDict", "torch._utils._rebuild_tensor_v2"})
_STORAGE_GLOBAL = re.compile(r"torch\.[A-Z][A-Za-z0-9]*Storage")
#: what checkpoints of format 1 name besides: numpy's array, dtype and scalar reconstruction
#: (its RNG state, a FID value) and the codec numpy's pickles encode bytes with
LEGACY_GLOBALS = frozenset(
    {
        "numpy.core.multiarray._reconstruct",
        "numpy._core.multiarray._reconstruct",
        "numpy.core.multiarray.scalar",
        "numpy._core.multiarray.scalar",
        "numpy.ndarray",
        "numpy.dtype",
        "_codecs.encode",
    }
)

_CONVERT_HINT = "fwp checkpoint convert {path} --trust-checkpoint"


class CheckpointError(ValueError):
    """A file that cannot be used as an fwp checkpoint; the one-line message names the file and
    says what is wrong and what to do."""


class UnsafeCheckpointError(CheckpointError):
    """A file that could only be read by unpickling Python objects, which fwp never does when
    loading (:mod:`fwp.gan.checkpoint_convert` converts checkpoints of fwp before format 2)."""


# -- writing --------------------------------------------------------------------------------------
def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write a training state (:meth:`Trainer.state_dict`'s table) atomically, stamped with the
    format marker and version. The state is checked first, so that a checkpoint that
    :func:`load_checkpoint` would refuse is never written.

    Raises:
        CheckpointError: the state lacks an entry or holds something other than plain data (a
            numpy scalar, an arbitrary object), named by its path (``best_fid``, ``rng.numpy``).
    """
    stamped = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION}
    stamped.update((k, v) for k, v in state.items() if k not in stamped)
    try:
        _check_plain(stamped, "")
        _check_training_state(stamped, "the training state")
    except CheckpointError as err:
        raise CheckpointError(f"refusing to write checkpoint {str(path)!r}: {err}") from None
    return atomic_save(stamped, path)


# -- reading --------------------------------------------------------------------------------------
def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`, never running code from the file.

    Returns:
        the training state (see the module docstring), its tensors on ``map_location``.

    Raises:
        FileNotFoundError: no such file.
        UnsafeCheckpointError: the file could only be read by unpickling objects (a checkpoint
            of fwp before format 2, with how to convert it, or a file made to run code).
        CheckpointError: anything else that is wrong: not a checkpoint (empty, truncated, text,
            random bytes), a checkpoint of another tool, a newer format, an unregistered
            learning rule, a missing or malformed entry, an invalid configuration.
    """
    state, _ = _load(Path(path), map_location)
    return state


def load_generator(
    run_dir_or_checkpoint: str | Path,
    ema: bool = True,
    device: str | torch.device = "cpu",
    best: bool = False,
) -> tuple[TrainedGenerator, TrainConfig]:
    """Load a trained generator (EMA weights by default) and the configuration it was trained
    with, from a run directory (its last or best checkpoint) or a checkpoint file, through
    :func:`load_checkpoint`.

    Returns:
        (the generator in eval mode on ``device``, its :class:`TrainConfig`)

    Raises:
        FileNotFoundError: neither a run directory (with a checkpoint) nor a file.
        CheckpointError: see :func:`load_checkpoint`.
    """
    path = resolve_checkpoint(run_dir_or_checkpoint, best=best)
    state, config = _load(path, "cpu")
    generator = build_generator(config)
    weights = state["ema"] if ema else state["objective"]["networks"]["generator"]
    try:
        generator.load_state_dict(weights)
    except RuntimeError as err:
        raise CheckpointError(
            f"{str(path)!r}: its generator weights do not fit its configuration "
            f"({_first_line(err)})"
        ) from None
    generator.to(device).eval()
    return generator, config


def _load(path: Path, map_location: str | torch.device) -> tuple[dict[str, Any], TrainConfig]:
    """The one loading path: inspect, load with torch's restricted unpickler, check."""
    if not path.is_file():
        if path.is_dir():
            raise CheckpointError(
                f"{str(path)!r} is a folder, not a checkpoint file (give RUN/checkpoints/last.pt)"
            )
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    _warn_if_unsafe_torch()
    name = repr(str(path))
    archive = _inspect(path)
    unsafe = _unsafe_globals(archive)
    if unsafe:
        if unsafe <= LEGACY_GLOBALS:
            raise UnsafeCheckpointError(
                f"{name} holds pickled numpy objects, as checkpoints of fwp before format "
                f"{CHECKPOINT_VERSION} do, and fwp never unpickles when loading; if the file is "
                f"yours or from a source you trust, convert it once: "
                f"{_CONVERT_HINT.format(path=path)} (converting unpickles it, which runs any "
                f"code it holds)"
            )
        raise UnsafeCheckpointError(
            f"{name} is not a safe checkpoint: loading it would call "
            f"{', '.join(sorted(unsafe))}, which no fwp checkpoint does; refusing to read it "
            f"(fwp never unpickles objects from files)"
        )
    state = _torch_load(archive, map_location, weights_only=True)
    return state, _check_loaded(state, path)


def _check_loaded(state: Any, path: Path) -> TrainConfig:
    """Everything about a loaded file: marker, version, entries, configuration, rule."""
    name = repr(str(path))
    _check_marker(state, path)
    config = _check_training_state(state, name)
    load_recorded_plugins(config.run.plugins, where=f"checkpoint {path}")
    _check_rule(config, name)
    try:
        config.validate()
    except ConfigError as err:
        raise CheckpointError(f"{name}: its configuration is invalid ({err})") from None
    return config


def _inspect(path: Path) -> TorchArchive:
    try:
        return read_archive(path)
    except TorchFileError as err:
        raise CheckpointError(
            f"{str(path)!r} {err}; fwp reads the checkpoints that `fwp train` writes "
            f"(RUN/checkpoints/last.pt)"
        ) from None


def _unsafe_globals(archive: TorchArchive) -> frozenset[str]:
    """The callables named by the archive's pickle that a checkpoint does not need."""
    return frozenset(
        g for g in archive.globals if g not in SAFE_GLOBALS and not _STORAGE_GLOBAL.fullmatch(g)
    )


def _torch_load(
    archive: TorchArchive, map_location: str | torch.device, *, weights_only: bool
) -> Any:
    try:
        return torch.load(
            io.BytesIO(archive.content), map_location=map_location, weights_only=weights_only
        )
    except Exception as err:
        raise CheckpointError(
            f"{str(archive.path)!r} cannot be read as a checkpoint ({_first_line(err)})"
        ) from None


def _check_marker(state: Any, path: Path) -> None:
    """Refuse what is not an fwp checkpoint of a format this fwp reads."""
    name = repr(str(path))
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        if isinstance(state, dict) and "format" in state:
            raise CheckpointError(
                f"{name} is not an fwp checkpoint: its format marker is {state['format']!r}, "
                f"not {CHECKPOINT_FORMAT!r}"
            )
        if isinstance(state, dict) and {"config", "objective", "ema"} <= set(state):
            raise CheckpointError(
                f"{name} is an fwp checkpoint of format 1, before the format marker; convert "
                f"it once: fwp checkpoint convert {path}"
            )
        raise CheckpointError(
            f"{name} is not an fwp checkpoint: it holds {_describe(state)} (a checkpoint of "
            f"another tool?); fwp reads the checkpoints that `fwp train` writes"
        )
    version = state.get("version")
    if type(version) is not int:
        raise CheckpointError(f"{name} is damaged: its format version is {version!r}")
    if version > CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{name} was written by a newer fwp (checkpoint format {version}; this fwp reads "
            f"format {CHECKPOINT_VERSION}): upgrade fwp (pip install -U fwp)"
        )
    if version < CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{name} has checkpoint format {version}, older than {CHECKPOINT_VERSION}; convert "
            f"it once: fwp checkpoint convert {path}"
        )


#: entries of a training state and the Python types each may hold
_ENTRIES: dict[str, tuple[type, ...]] = {
    "config": (dict,),
    "step": (int,),
    "elapsed": (float, int),
    "objective": (dict,),
    "ema": (dict,),
    "rng": (dict,),
    "data": (dict,),
    "best_fid": (float, type(None)),
    "nan_retries": (int,),
}


def _check_training_state(state: dict[str, Any], name: str) -> TrainConfig:
    """Check every entry of a training state; returns its configuration, typed."""

    def damaged(what: str) -> CheckpointError:
        return CheckpointError(f"{name} is damaged: {what}")

    for key, kinds in _ENTRIES.items():
        if key not in state:
            raise damaged(f"it lacks the entry {key!r}")
        if type(state[key]) not in kinds and not (dict in kinds and isinstance(state[key], dict)):
            allowed = " or ".join(kind.__name__ for kind in kinds)
            raise damaged(f"its entry {key!r} must be {allowed}; got {type(state[key]).__name__}")
    if state["step"] < 0 or state["nan_retries"] < 0:
        raise damaged("its step and nan_retries must not be negative")
    objective = state["objective"]
    for part in ("networks", "optimizers"):
        tables = objective.get(part)
        if not isinstance(tables, dict) or not all(isinstance(t, dict) for t in tables.values()):
            raise damaged(f"objective.{part} must be a table of state dicts")
    if "generator" not in objective["networks"]:
        raise damaged("objective.networks lacks the generator")
    if not all(isinstance(t, torch.Tensor) for t in state["ema"].values()):
        raise damaged("ema must be a state dict of tensors")
    try:
        check_rng_state(state["rng"])
    except ValueError as err:
        raise damaged(str(err)) from None
    if "rng_ranks" in state:
        ranks = state["rng_ranks"]
        if not isinstance(ranks, list) or not ranks:
            raise damaged("rng_ranks must be a non-empty list of RNG states, one per rank")
        for rank, rank_state in enumerate(ranks):
            try:
                check_rng_state(rank_state)
            except ValueError as err:
                raise damaged(f"rng_ranks[{rank}]: {err}") from None
    for key in ("epoch", "position", "seed"):
        if type(state["data"].get(key)) is not int:
            raise damaged(f"data.{key} must be an integer")
    try:
        return config_from_saved(state["config"], f"{name} (its configuration)")
    except ConfigError as err:
        raise CheckpointError(str(err)) from None


def _check_rule(config: TrainConfig, name: str) -> None:
    """The learning rule of ``config`` must be registered (a checkpoint never brings code)."""
    from fwp.rules import get_spec

    rule = config.painter.rule
    try:
        get_spec(rule)
    except ValueError:
        raise CheckpointError(
            f"{name} was trained with the learning rule {rule!r}, which is not registered; "
            f"load the code that defines it: fwp --plugin FILE_OR_MODULE COMMAND ... (or "
            f"install the package that registers it; `fwp rules` lists the registered rules)"
        ) from None


def _check_plain(value: Any, where: str) -> None:
    """Refuse anything but tensors, str/int keyed dicts, lists, tuples and plain scalars (what
    ``torch.load(weights_only=True)`` reads back without naming any other callable)."""
    kind = type(value)
    if kind is torch.Tensor or kind in (int, float, bool, str, type(None)):
        return
    if isinstance(value, dict) and kind.__module__ in ("builtins", "collections"):
        for key, item in value.items():
            if type(key) not in (str, int):
                raise CheckpointError(f"{where or 'the state'}: key {key!r} is not a str or int")
            _check_plain(item, f"{where}.{key}" if where else str(key))
        return
    if kind in (list, tuple):
        for index, item in enumerate(value):
            _check_plain(item, f"{where}[{index}]")
        return
    raise CheckpointError(
        f"{where or 'the state'} holds a {kind.__module__}.{kind.__qualname__}, which is not "
        f"plain data (tensors, numbers, strings, lists, tables)"
    )


def _describe(value: Any) -> str:
    """A few words on what a loaded file holds, for the not-an-fwp-checkpoint message."""
    if isinstance(value, dict):
        if value and all(isinstance(v, torch.Tensor) for v in value.values()):
            first = next(iter(value))
            return f"a plain state dict of {len(value)} tensors (such as {first!r})"
        keys = sorted(str(k) for k in value)
        shown = ", ".join(keys[:6]) + (", ..." if len(keys) > 6 else "")
        return f"a table of {shown}" if keys else "an empty table"
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    return f"a {type(value).__name__}"


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _warn_if_unsafe_torch() -> None:
    if TorchVersion(torch.__version__) < SAFE_TORCH:
        warnings.warn(
            f"torch {torch.__version__}'s weights-only loading has known code-execution bypasses "
            f"(CVE-2025-32434, CVE-2026-24747); fwp's own check of a checkpoint's pickle still "
            f"applies, but upgrade torch to {SAFE_TORCH} or newer before loading checkpoints "
            f"from others",
            RuntimeWarning,
            stacklevel=3,
        )
