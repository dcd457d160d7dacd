"""The generator a training configuration describes: a learning-rule painter, optionally followed
by the U-Net refiner, or the LightGAN convolutional baseline ("Images as Weight Matrices", Irie &
Schmidhuber, ICLR 2023), and its parameters as optimiser groups."""

from __future__ import annotations

from typing import Any

from torch import nn

from fwp.painters import ConvGenerator, Generator, UNetRefiner
from fwp.painters import build_generator as build_network

from .config import TrainConfig
from .networks.cascade import CascadeSampler

#: what a run trains: a painter (with or without refiner), the conv baseline, or the cascade of
#: stage critics of introspective training's classic mode
TrainedGenerator = Generator | ConvGenerator | CascadeSampler


def build_generator(config: TrainConfig) -> TrainedGenerator:
    """A freshly initialised generator with the architecture of ``config``: the cascade of stage
    critics in introspective training's classic mode (empty until stages are stored), the conv
    baseline for ``generator.kind = conv``, else a painter (with the U-Net refiner when
    enabled). In a refinement stage with ``generator.freeze_painter`` the painter's parameters do
    not require gradients (its weights come from the init run, see :mod:`fwp.gan.stages`)."""
    intro = config.introspective
    if config.objective.name == "introspective" and intro.mode == "classic":
        return CascadeSampler(
            config.data.channels,
            (config.data.size[0], config.data.size[1]),
            intro.stages,
            intro.critic_width,
            intro.critic_max_width,
            intro.synthesis_steps,
            intro.synthesis_lr,
            intro.early_stop,
        )
    if config.generator.kind == "conv":
        return build_network(config.conv_generator_config())  # type: ignore[return-value]
    refiner = None
    if config.refiner.enabled:
        refiner = UNetRefiner(
            channels=config.data.channels,
            base_channels=config.refiner.base_channels,
            depth=config.refiner.depth,
            architecture=config.refiner.architecture,
            output=config.refiner.output,
        )
    generator = build_network(config.painter_config(), refiner)
    if config.generator.init_from and config.generator.freeze_painter:
        generator.painter.requires_grad_(False)
    return generator  # type: ignore[return-value]


def generator_param_groups(config: TrainConfig, generator: nn.Module) -> list[dict[str, Any]]:
    """The generator's trainable parameters as optimiser groups: one group, or, with
    ``refiner.lr`` > 0, the painter's and then the refiner's with its own learning rate (the
    official ``--unet_lr``). Frozen parameters are left out."""
    refiner = getattr(generator, "refiner", None)
    if refiner is None or config.refiner.lr <= 0:
        return [{"params": [p for p in generator.parameters() if p.requires_grad]}]
    own = {id(p) for p in refiner.parameters()}
    painter = [p for p in generator.parameters() if p.requires_grad and id(p) not in own]
    groups = [{"params": painter}] if painter else []
    refined = [p for p in refiner.parameters() if p.requires_grad]
    return [*groups, {"params": refined, "lr": config.refiner.lr}]
