"""Runs from their directories: the library's entry point for training.

A run is a directory (:class:`~fwp.gan.rundir.RunDir`) holding its resolved configuration; the
functions here create one, continue one under the resume policy, and train one. ``fwp train``,
sweeps (in their child processes), cluster launchers and notebooks all go through them::

    python -m fwp.gan.run RUN_DIR [--quiet] [--plugin FILE_OR_MODULE] [--error-file FILE]

trains the run in RUN_DIR from its config.json (resuming from its last checkpoint if it has one).
Under torchrun or a Slurm job step of several tasks every process runs it, and they train the
run together (:mod:`fwp.gan.distributed`).
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import Tensor

from . import distributed
from .checkpoint import load_checkpoint
from .config import ConfigError, TrainConfig, flatten_config, set_option
from .data import dataset_identity
from .files import atomic_write_json
from .plugins import plugins_of_rule
from .rundir import RunDir
from .runtime import pick_device
from .stages import check_init_source
from .trainer import TrainResult, train

#: options that may change when a run is resumed: its budget, where and how fast it runs, what it
#: measures and logs; none of them changes the model that is trained or the data it sees
RESUMABLE = frozenset(
    {
        "run.steps",
        "run.minutes",
        "run.device",
        "run.fid_every",
        "run.fid_num",
        "run.compile",
        "run.log_every",
        "run.sample_every",
        "run.checkpoint_every",
        "run.num_samples",
        "run.strip_latents",
        "run.max_nan_retries",
        "run.tensorboard",
        "run.plugins",  # where the rule code comes from, not what is trained
    }
)


def check_data(config: TrainConfig) -> None:
    """The configuration's values, and that its data source can be read (nothing decoded)."""
    config.validate()
    dataset_identity(config.data.source, config.data.size, config.data.channels)


def check_runnable(config: TrainConfig) -> None:
    """Everything that can be checked before training here: :func:`check_data`, and that the
    configured device exists on this machine."""
    check_data(config)
    pick_device(config.run.device)


def new_run(config: TrainConfig, run_dir: str | Path) -> RunDir:
    """Create a run directory holding ``config`` (with the plugin that registered its rule,
    if any, recorded in ``run.plugins``); refuses a folder that already holds a run, and a
    refinement stage whose init run (``generator.init_from``) cannot start it."""
    run = RunDir(run_dir)
    if run.checkpoint_dir.is_dir():
        raise ConfigError(
            f"run directory {str(run.path)!r} already holds a run; continue it with "
            f"--resume {run.path} or choose another --run-dir"
        )
    config.run.plugins = list(
        dict.fromkeys([*config.run.plugins, *plugins_of_rule(config.painter.rule)])
    )
    check_data(config)  # the device is checked where the run trains (a sweep's cell process)
    check_init_source(config)
    run.write_config(config)
    return run


def resume_config(run_dir: str | Path, changes: Mapping[str, Any] | None = None) -> TrainConfig:
    """The saved configuration of a run with ``changes`` ({"section.name": value}) applied;
    only the options in :data:`RESUMABLE` may change (others would make a different run)."""
    run = RunDir(run_dir)
    config = run.read_config()
    changes = dict(changes or {})
    saved = flatten_config(config)
    refused = sorted(k for k, v in changes.items() if k not in RESUMABLE and saved.get(k) != v)
    if refused:
        raise ConfigError(
            f"cannot change {', '.join(refused)} when resuming {run.path}; only "
            f"{', '.join(sorted(RESUMABLE))} may change (start a new run for other settings)"
        )
    for dotted, value in changes.items():
        set_option(config, dotted, value)
    config.validate()
    return config


def run_finished(run_dir: str | Path, config: TrainConfig | None = None) -> bool:
    """True when the run's last checkpoint has used its whole budget (``config``'s, by default
    the saved one): resuming it would only reload and stop."""
    run = RunDir(run_dir)
    if not run.has_checkpoint():
        return False
    config = config or run.read_config()
    state = load_checkpoint(run.last_checkpoint)
    minutes = config.run.minutes
    return state["step"] >= config.run.steps or (minutes > 0 and state["elapsed"] >= minutes * 60)


def train_run(
    run_dir: str | Path,
    config: TrainConfig | None = None,
    *,
    progress: bool = True,
    images: Tensor | None = None,
) -> TrainResult:
    """Train the run in ``run_dir`` (resuming it from its last checkpoint if it has one).

    Launched as several ranks (torchrun, srun), every rank calls it and they train the run
    together: the process group is set up here unless the caller already did
    (:func:`fwp.gan.distributed.session`), and torn down at the end.

    Args:
        config: the configuration to train with; by default the run's saved config.json. When
            given it is written to the run first (use :func:`resume_config` to change a run).
        images: optional uint8 images (N, C, H, W) instead of the configured data source.
    """
    run = RunDir(run_dir)
    if config is None:
        config = run.read_config()
    with distributed.session(config.run.device):
        return train(config, run.path, progress=progress, images=images)


def error_record(err: BaseException) -> dict[str, str]:
    """A failure as data: the exception's type, its message and the formatted traceback."""
    return {
        "type": type(err).__name__,
        "message": str(err),
        "traceback": "".join(traceback.format_exception(type(err), err, err.__traceback__)),
    }


def _is_main_process() -> bool:
    """Rank 0 of a distributed launch, or the only process (for what one process writes)."""
    try:
        return distributed.detect().is_main
    except distributed.DistributedError:
        return True


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m fwp.gan.run RUN_DIR``: train a run directory; exit status 1 on failure, with
    the error written as JSON to ``--error-file`` (type, message, traceback) when given."""
    parser = argparse.ArgumentParser(prog="python -m fwp.gan.run", description=__doc__)
    parser.add_argument("run_dir", help="a run directory holding config.json")
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    parser.add_argument(
        "--plugin", action="append", default=[], help="module or .py file to import first"
    )
    parser.add_argument("--error-file", default=None, help="where to write a failure as JSON")
    args = parser.parse_args(argv)
    try:
        from fwp.rules import load_plugin

        for plugin in args.plugin:
            load_plugin(plugin)
        result = train_run(args.run_dir, progress=not args.quiet)
    except (Exception, KeyboardInterrupt) as err:
        if args.error_file and _is_main_process():
            atomic_write_json(error_record(err), args.error_file)
        if isinstance(err, KeyboardInterrupt):
            return 130
        print(f"fwp: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    if _is_main_process():
        print(json.dumps({"run_dir": str(result.run_dir), "step": result.step}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
