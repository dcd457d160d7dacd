"""The second training stage of FPA/U-Net: a refiner trained after a trained painter.

"Images as Weight Matrices" (Irie & Schmidhuber, ICLR 2023) trains its FPA/U-Net in two stages:
a painter first, then a U-Net after it, the painter's weights loaded from the first run (the
official ``--load_pre_trained`` with ``--frozen_base``). ``generator.init_from`` names the first
run (a run directory or a checkpoint file); this module reads it through the one safe loader,
:func:`fwp.gan.checkpoint.load_checkpoint`, refuses a run whose painter differs from the new
run's (:class:`InitSourceError`, naming the options), and copies its painter (and, with
``generator.init_discriminator``, its discriminator) into a new run before its first step.

Which painter weights (``generator.init_weights``): ``ema`` (default) starts the trained and the
EMA painter from the init run's EMA painter, the one that run sampled and scored; ``raw`` starts
both from its trained weights (in effect the official code, whose EMA reset at step 2 copies the
trained weights); ``raw+ema`` the trained painter from the trained weights and the EMA painter from
the EMA, as if that run went on.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from .checkpoint import load_checkpoint
from .config import ConfigError, TrainConfig, flatten_config
from .rundir import RunDir, config_from_saved, resolve_checkpoint

__all__ = [
    "InitSource",
    "InitSourceError",
    "check_init_source",
    "read_init_source",
    "start_stage",
]


class InitSourceError(ConfigError):
    """``generator.init_from`` names a run that cannot start this stage; the message names the
    option (or the differing options) and what to do."""


@dataclass
class InitSource:
    """What a refinement stage takes from its init run.

    Attributes:
        path: the checkpoint file read.
        config: the init run's configuration.
        painter_raw, painter_ema: state dicts of its painter (keys of
            :class:`~fwp.painters.Painter`), trained and EMA weights.
        discriminator: the state dict of its discriminator, if it has one.
    """

    path: Path
    config: TrainConfig
    painter_raw: dict[str, Tensor]
    painter_ema: dict[str, Tensor]
    discriminator: dict[str, Tensor] | None


def _source_config(config: TrainConfig) -> tuple[Path, TrainConfig]:
    """The init run's checkpoint file and configuration (read from config.json when the source
    is a run directory, else from the checkpoint)."""
    source = Path(config.generator.init_from)
    where = f"generator.init_from ({str(source)!r})"
    try:
        path = resolve_checkpoint(source)
        if source.is_dir():
            return path, RunDir(source).read_config()
        saved = load_checkpoint(path)["config"]
        return path, config_from_saved(saved, str(path))
    except (FileNotFoundError, ValueError) as err:
        raise InitSourceError(f"{where}: {err}") from None


def _painter_differences(source: TrainConfig, config: TrainConfig) -> list[str]:
    """``name: there -> here`` for every option that makes the two painters differ."""
    theirs, ours = source.painter_config(), config.painter_config()
    result = []
    for f in dataclasses.fields(ours):
        if f.name == "fast_path":  # how the painting is computed, not what it is
            continue
        there, here = getattr(theirs, f.name), getattr(ours, f.name)
        if there != here:
            name = {"height": "data.size", "width": "data.size", "channels": "data.channels"}
            shown = name.get(f.name, f"painter.{f.name}")
            if shown == "data.size":
                there, here = source.data.size, config.data.size
            result.append(f"{shown} {there!r} there, {here!r} here")
    return list(dict.fromkeys(result))


def _discriminator_differences(source: TrainConfig, config: TrainConfig) -> list[str]:
    theirs, ours = flatten_config(source), flatten_config(config)
    keys = [k for k in ours if k.startswith("discriminator.")] + ["objective.name"]
    return [f"{k} {theirs[k]!r} there, {ours[k]!r} here" for k in keys if theirs[k] != ours[k]]


def check_init_source(config: TrainConfig) -> None:
    """Refuse an init run that cannot start the refinement stage of ``config`` (nothing to do
    without ``generator.init_from``).

    Raises:
        InitSourceError: the run is missing or unreadable, is not a painter without refiner, or
            its painter (or, with ``generator.init_discriminator``, its discriminator) differs.
    """
    if config.generator.init_from:
        _check(config, *_source_config(config))


def _check(config: TrainConfig, path: Path, source: TrainConfig) -> None:
    where = f"generator.init_from ({str(config.generator.init_from)!r})"
    if source.generator.kind != "painter" or source.refiner.enabled:
        trained = "the conv generator" if source.generator.kind == "conv" else "a refiner"
        raise InitSourceError(
            f"{where} trains {trained}; the refinement stage starts from a run of a painter alone"
        )
    differences = _painter_differences(source, config)
    if differences:
        raise InitSourceError(
            f"{where}: its painter differs from this run's ({'; '.join(differences)}); give "
            f"this run the same painter options (the same --preset and painter options)"
        )
    if config.generator.init_discriminator:
        differences = _discriminator_differences(source, config)
        if differences:
            raise InitSourceError(
                f"{where}: its discriminator differs from this run's ({'; '.join(differences)}); "
                f"give the same discriminator options, or start a fresh discriminator with "
                f"--no-generator-init-discriminator"
            )


def _painter_part(weights: dict[str, Tensor]) -> dict[str, Tensor]:
    prefix = "painter."
    return {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}


def read_init_source(config: TrainConfig) -> InitSource:
    """Read and check the init run of ``config`` (see :func:`check_init_source`)."""
    path, _ = _source_config(config)
    try:
        state = load_checkpoint(path)
    except (FileNotFoundError, ValueError) as err:
        raise InitSourceError(f"generator.init_from: {err}") from None
    source = config_from_saved(state["config"], str(path))
    _check(config, path, source)
    networks = state["objective"]["networks"]
    return InitSource(
        path=path,
        config=source,
        painter_raw=_painter_part(networks["generator"]),
        painter_ema=_painter_part(state["ema"]),
        discriminator=networks.get("discriminator"),
    )


def _load(module: nn.Module, weights: dict[str, Any], what: str, path: Path) -> None:
    try:
        module.load_state_dict(weights)
    except RuntimeError as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise InitSourceError(
            f"generator.init_from: the {what} weights of {str(path)!r} do not fit ({first})"
        ) from None


def start_stage(
    source: InitSource, config: TrainConfig, generator: nn.Module, ema: nn.Module, objective: Any
) -> None:
    """Copy the init run's painter into the trained ``generator`` and the ``ema`` generator
    (weights chosen by ``generator.init_weights``) and, with ``generator.init_discriminator``, its
    discriminator into ``objective.networks["discriminator"]`` (the optimisers start afresh)."""
    choice = config.generator.init_weights
    trained = source.painter_ema if choice == "ema" else source.painter_raw
    averaged = source.painter_raw if choice == "raw" else source.painter_ema
    _load(generator.painter, trained, "painter", source.path)
    _load(ema.painter, averaged, "EMA painter", source.path)
    networks = getattr(objective, "networks", {})
    if config.generator.init_discriminator and "discriminator" in networks:
        if source.discriminator is None:
            raise InitSourceError(
                f"generator.init_from: {str(source.path)!r} has no discriminator; start a fresh "
                f"one with --no-generator-init-discriminator"
            )
        _load(networks["discriminator"], source.discriminator, "discriminator", source.path)
