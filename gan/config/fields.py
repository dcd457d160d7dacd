"""The building blocks of the training configuration: the error every bad option raises, the
field declaration (:func:`option`) and the choices that several sections share."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import field
from typing import Any


class ConfigError(ValueError):
    """An invalid configuration; the message names the option to change."""


#: gradient-penalty kinds of ``objective.penalty`` and the gradient norm each pulls toward
PENALTY_TARGETS = {"one-centred": 1.0, "r1": 0.0}

#: adversarial losses of ``objective.loss`` (defined in :mod:`fwp.gan.objectives.adversarial`)
ADVERSARIAL_LOSSES = ("hinge", "logistic")

#: training objectives of ``objective.name`` (each registered in :mod:`fwp.gan.objectives`)
OBJECTIVE_NAMES = ("adversarial", "coop", "introspective")

#: torch.compile modes of ``run.compile`` ("off": eager)
COMPILE_MODES = ("off", "default", "reduce-overhead", "max-autotune")

#: generators of ``generator.kind``: a learning-rule painter, or the LightGAN conv baseline
GENERATOR_KINDS = ("painter", "conv")

#: which weights of an init run (``generator.init_from``) the painters of a new stage start from
INIT_WEIGHTS = ("ema", "raw", "raw+ema")


def option(
    default: Any = dataclasses.MISSING,
    help: str = "",
    *,
    choices: Sequence[str] | None = None,
    default_factory: Any = dataclasses.MISSING,
    cli: bool = True,
) -> Any:
    """A configuration field with its one-line meaning (shown by ``fwp train --help``), the
    choices of a text option, and whether the command line offers it (``cli``)."""
    metadata = {"help": help, "choices": tuple(choices) if choices else None, "cli": cli}
    if default_factory is not dataclasses.MISSING:
        return field(default_factory=default_factory, metadata=metadata)
    return field(default=default, metadata=metadata)
