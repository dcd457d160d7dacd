"""Training configuration: typed sections, presets, file loading, overrides and validation.

A configuration is built in layers, each overriding the one before: a preset (``paper``, the main
setting of "Images as Weight Matrices", Irie & Schmidhuber, ICLR 2023, or ``quick``, sized for a
CPU), an optional TOML/JSON file, then command-line options. The resolved configuration is written
to the run directory and is all that is needed to rebuild the run.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from fwp.painters import (
    PAINTER_PRESETS,
    REFINER_ARCHITECTURES,
    REFINER_OUTPUTS,
    ConvGeneratorConfig,
    PainterConfig,
)
from fwp.painters.painter import CONTROLLERS, INPUT_GENERATORS, OUTPUT_ACTIVATIONS

from .naming import parse_size
from .networks.discriminator import DISCRIMINATOR_ARCHITECTURES, OUTPUT_SIZES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class ConfigError(ValueError):
    """An invalid configuration; the message names the option to change."""


#: gradient-penalty kinds of ``objective.penalty`` and the gradient norm each pulls toward
PENALTY_TARGETS = {"one-centred": 1.0, "r1": 0.0}

#: training objectives of ``objective.name`` (each registered in :mod:`fwp.gan.objectives`)
OBJECTIVE_NAMES = ("adversarial", "coop")

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


@dataclass
class DataSection:
    """The training images."""

    source: str = option(
        "emoji",
        "a built-in dataset (fwp data list: emoji, textures:NAME, fashion-mnist) or a folder",
    )
    size: list[int] = option(  # noqa: RUF009 (option returns a dataclasses.field)
        help="image size: N (square) or HxW such as 48x64", default_factory=lambda: [64, 64]
    )
    channels: int = option(3, "colour channels: 3 (RGB) or 1 (grey)")
    limit: int = option(0, "use only the first N images; 0 = all images")


@dataclass
class DiscriminatorSection:
    """The Lightweight-GAN discriminator (Liu et al., ICLR 2021)."""

    base_channels: int = option(64, "channels of its first (highest-resolution) layer")
    max_channels: int = option(512, "cap on the channels of its deeper layers")
    minibatch_std: bool = option(
        False, "append the batch's feature spread before the main head (against collapse)"
    )
    architecture: str = option(
        "fwp",
        "fwp: fwp's own design; official: the official FPA code's (lucidrains/lightweight-gan)",
        choices=tuple(DISCRIMINATOR_ARCHITECTURES),
    )
    attention_resolutions: list[int] = option(  # noqa: RUF009 (option returns a dataclasses.field)
        help="input sides of the blocks preceded by linear attention, e.g. 32 or 16,32; "
        "empty = none",
        default_factory=list,
    )
    output_size: int = option(
        5, "main head: 5 (a 5x5 grid of patch logits, averaged) or 1 (one logit, the official)"
    )


@dataclass
class GeneratorSection:
    """Which generator is trained, and where a second (refinement) stage starts from."""

    kind: str = option(
        "painter",
        "painter: a learning-rule painter ([painter]); conv: the LightGAN conv baseline "
        "(Liu et al., ICLR 2021)",
        choices=GENERATOR_KINDS,
    )
    latent_dim: int = option(256, "conv generator: size of the latent z (the official 256)")
    max_channels: int = option(512, "conv generator: cap on any layer's width (official 512)")
    attention_resolutions: list[int] = option(  # noqa: RUF009 (option returns a dataclasses.field)
        help="conv generator: input sides of the layers preceded by linear attention",
        default_factory=lambda: [32],
    )
    output_activation: str = option(
        "tanh",
        "conv generator: tanh (images in [-1, 1]) or none (the official unbounded output)",
        choices=OUTPUT_ACTIVATIONS,
    )
    init_from: str = option(
        "",
        "start a refinement stage from this trained painter run (run directory or checkpoint "
        "file; needs --refiner); empty = from scratch",
    )
    init_weights: str = option(
        "ema",
        "init run's weights the painters start from: ema (both), raw (both) or raw+ema "
        "(trained painter raw, EMA painter ema)",
        choices=INIT_WEIGHTS,
    )
    freeze_painter: bool = option(
        True, "with --init-from: keep the painter fixed, train the refiner (official --frozen_base)"
    )
    init_discriminator: bool = option(
        True,
        "with --init-from: start from the init run's discriminator (off: a fresh one, the "
        "official --load_only_g)",
    )


@dataclass
class RefinerSection:
    """The optional U-Net refiner after the painter (the paper's FPA/U-Net)."""

    enabled: bool = option(
        False, "refine every painted image with a U-Net (trained jointly, or after --init-from)"
    )
    base_channels: int = option(32, "U-Net channels at full resolution")
    depth: int = option(3, "U-Net down/up levels (the image size must divide by 2^depth)")
    architecture: str = option(
        "compact",
        "compact: fwp's small U-Net; official: the official code's denoising-diffusion U-Net",
        choices=REFINER_ARCHITECTURES,
    )
    output: str = option(
        "residual",
        "residual: tanh(atanh(x) + U-Net(x)), identity at the start; direct: tanh(U-Net(x)), "
        "the official",
        choices=REFINER_OUTPUTS,
    )
    lr: float = option(
        0.0, "Adam learning rate of the refiner (official --unet_lr); 0 = the generator's"
    )
    match_loss_weight: float = option(
        0.0,
        "weight of the official match loss mean((painted - refined.detach())^2), which pulls "
        "the painter toward the refined image; 0 = off",
    )
    judge_painter: bool = option(
        False,
        "the discriminator also judges the unrefined painted images, which the generator is "
        "trained on too (official --pre_unet_loss)",
    )


@dataclass
class ObjectiveSection:
    """How the generator is taught."""

    name: str = option("adversarial", "the training objective", choices=OBJECTIVE_NAMES)
    loss: str = option("hinge", "adversarial loss", choices=("hinge",))
    gp_weight: float = option(10.0, "weight of the gradient penalty on real images")
    gp_every: int = option(4, "apply the gradient penalty every N steps (lazy regularisation)")
    penalty: str = option(
        "one-centred",
        "gradient penalty: one-centred (||grad|| - 1)^2, or r1 ||grad||^2",
        choices=tuple(PENALTY_TARGETS),
    )
    reconstruction_weight: float = option(
        1.0, "weight of the discriminator's self-supervised reconstruction loss"
    )
    augment: str = option(
        "translation,cutout",
        "DiffAugment policy, comma-separated from color, translation, cutout; applied only when "
        "--objective-augment-probability > 0 (off by default)",
    )
    augment_probability: float = option(
        0.0, "probability of augmenting a batch (0 = augmentation off)"
    )
    diversity_weight: float = option(
        0.0, "weight of the capped diversity-sensitive generator term (0 = off, as in the paper)"
    )
    diversity_cap: float = option(
        0.5, "per-pair image/latent distance ratio above which the diversity term stops pushing"
    )
    intermediate_images: int = option(
        1,
        "N: the discriminator also judges N-1 partial paintings, after j*T/N+1 updates "
        "(official --use_intermed_loss); 1 = off",
    )
    scale_intermediate: bool = option(
        True,
        "multiply the j-th partial matrix by N/j before the output activation (official "
        "--scale_intermed_loss)",
    )


@dataclass
class CoopSection:
    """Cooperative training, objective.name "coop" (CoopNets, Xie et al., TPAMI 2018): K Langevin
    steps of the descriptor revise the painter's images; the painter regresses on the revision."""

    langevin_steps: int = option(15, "K, descriptor Langevin steps per iteration")
    step_size: float = option(
        0.002, "Langevin step delta of Y <- Y - delta^2/2 (Y / s^2 - df/dY) + delta eps"
    )
    reference_std: float = option(0.016, "s, the std of the descriptor's Gaussian reference")
    noise: bool = option(True, "the delta eps noise term of each Langevin step (off: noise-free)")
    clamp: bool = option(False, "clip Y to [-1, 1] after each Langevin step (not in CoopNets)")
    generator_std: float = option(
        0.3, "sigma of the painter's regression loss ||Y - g(z)||^2 / (2 sigma^2)"
    )
    latent_steps: int = option(
        0, "Langevin inference steps on z before the painter update (0 = off, as CoopNets)"
    )
    latent_step_size: float = option(0.1, "delta_g, the step of the latent Langevin inference")
    painter_updates: int = option(1, "painter Adam steps on each revision (CoopNets: 1)")
    descriptor: str = option(
        "coopnets", "the descriptor network: coopnets, coopnets-small or resnet"
    )
    descriptor_width: int = option(64, "channels of the descriptor's first layer")
    descriptor_outputs: int = option(100, "outputs of the descriptor's last layer; f is their sum")
    lr_descriptor: float = option(
        0.007, "Adam learning rate of the descriptor (betas from optim.beta1, optim.beta2)"
    )


def _validate_coop(config: TrainConfig) -> None:
    """Refuse bad cooperative-training options (the steps only when the objective is on)."""
    from .networks import check_descriptor_size

    coop = config.coop
    positive = ("step_size", "reference_std", "generator_std", "latent_step_size", "lr_descriptor")
    for name in positive:
        if not getattr(coop, name) > 0:
            raise ConfigError(f"coop.{name} must be positive; got {getattr(coop, name)}")
    for name in ("langevin_steps", "latent_steps"):
        if getattr(coop, name) < 0:
            raise ConfigError(f"coop.{name} must be >= 0; got {getattr(coop, name)}")
    for name in ("painter_updates", "descriptor_width", "descriptor_outputs"):
        if getattr(coop, name) < 1:
            raise ConfigError(f"coop.{name} must be a positive integer; got {getattr(coop, name)}")
    try:
        check_descriptor_size(coop.descriptor, (config.data.size[0], config.data.size[1]))
    except ValueError as err:
        raise ConfigError(str(err)) from err
    if config.objective.name == "coop" and coop.langevin_steps < 1:
        raise ConfigError(
            "coop.langevin_steps must be at least 1 with objective.name 'coop': the painter "
            "learns from the descriptor's Langevin revision of its images"
        )


@dataclass
class OptimSection:
    """Optimisers (Adam) and the EMA of the generator."""

    batch_size: int = option(
        20, "images per step and rank (with torchrun/srun the step's batch is this x ranks)"
    )
    lr_generator: float = option(2e-4, "Adam learning rate of the generator")
    lr_discriminator: float = option(2e-4, "Adam learning rate of the discriminator")
    beta1: float = option(0.5, "Adam beta1")
    beta2: float = option(0.9, "Adam beta2")
    ema_decay: float = option(0.995, "decay of the generator's weight EMA (the sampled network)")
    ema_start: int = option(
        0, "update the EMA at step indices >= N only (from 0; the official 20001: after 20000)"
    )
    ema_every: int = option(1, "update the EMA every N steps (the official 10)")
    ema_reset_every: int = option(
        0,
        "copy the trained generator into the EMA at step indices = 2 mod N (lightweight-gan's "
        "phase; the official 1000); 0 = never",
    )
    ema_reset_until: int = option(
        0, "last step index at which the EMA may be reset (the official 25000)"
    )
    amp: bool = option(False, "bf16 mixed precision for controller and discriminator (GPU)")


@dataclass
class RunSection:
    """Budget, device, logging and measurement."""

    steps: int = option(100_000, "training steps (the run stops at steps or minutes, first)")
    minutes: float = option(0.0, "wall-clock training budget in minutes; 0 = no time limit")
    seed: int = option(0, "random seed (weights, data order, latents)")
    device: str = option("auto", "auto (CUDA if available), cpu, cuda or cuda:N")
    log_every: int = option(50, "write losses to metrics.csv and the progress line every N steps")
    sample_every: int = option(1000, "save sample grids and painting strips every N steps")
    checkpoint_every: int = option(1000, "write the crash-safe checkpoint every N steps")
    fid_every: int = option(0, "measure FID/KID every N steps and keep best.pt; 0 = never")
    fid_num: int = option(5000, "generated images per FID/KID measurement")
    num_samples: int = option(64, "fixed latents in each sample grid")
    strip_latents: int = option(4, "latents shown in each painting strip")
    max_nan_retries: int = option(
        3, "roll back to the last checkpoint this many times on NaN/Inf before stopping"
    )
    deterministic: bool = option(False, "deterministic algorithms (slower; for debugging)")
    reference: bool = option(
        False, "reference mode: step-by-step scan, separate passes, eager, fp32 (slow, simple)"
    )
    compile: str = option(
        "off",
        "torch.compile generator and discriminator",
        choices=COMPILE_MODES,
    )
    tensorboard: bool = option(True, "also write TensorBoard scalars to RUN_DIR/tb")
    plugins: list[str] = option(  # noqa: RUF009 (option returns a dataclasses.field)
        help="rule plugins the run was trained with (recorded by fwp, loaded again on resume, "
        "paint and fid)",
        default_factory=list,
        cli=False,
    )


#: painter options that the training configuration derives instead of setting
DERIVED_PAINTER_OPTIONS = ("height", "width", "channels", "fast_path")


#: meanings (and choices) of the painter options, for ``fwp train --help``
PAINTER_OPTION_HELP: dict[str, tuple[str, tuple[str, ...] | None]] = {
    "steps": ("T, the number of rank-1 updates (painting steps)", None),
    "rule": ("the learning rule, by registered name (fwp rules lists them)", None),
    "rule_options": (
        "the rule's options as a TOML inline table, e.g. {decay = 0.5} (fwp rules NAME)",
        None,
    ),
    "latent_dim": ("size of the latent z", None),
    "input_generator": (
        "v1: z at every step; v2: the paper's chunked input generator; split: z cut into T chunks",
        None,
    ),
    "controller": ("the network that emits keys, values and rates: lstm or transformer", None),
    "transformer_heads": ("attention heads of the Transformer controller", None),
    "transformer_feedforward": ("feed-forward width of the Transformer controller", None),
    "transformer_causal": (
        "the Transformer's step t sees steps <= t only (off: all steps, as the official code)",
        None,
    ),
    "step_latent_dim": ("v2's per-step latent chunk", None),
    "controller_input_dim": ("v2's projected per-step controller input", None),
    "hidden_size": ("controller width (LSTM hidden size or Transformer model width)", None),
    "num_layers": ("controller layers", None),
    "init_state_from_latent": ("compute the controller's initial state from z", None),
    "output_activation": ("applied to the final matrix", None),
    "head_init_scale": (
        "scale of the controller head's initial weights (the official kvb_init_fact)",
        None,
    ),
}

#: choices of painter text options, from the painters package
_PAINTER_CHOICES = {
    "input_generator": INPUT_GENERATORS,
    "output_activation": OUTPUT_ACTIVATIONS,
    "controller": CONTROLLERS,
}


def _painter_section_fields() -> list[tuple[str, Any, Any]]:
    """The fields of :class:`PainterConfig`, less the derived ones, with the same defaults and
    the meanings of :data:`PAINTER_OPTION_HELP`."""
    result = []
    for f in fields(PainterConfig):
        if f.name in DERIVED_PAINTER_OPTIONS:
            continue
        meaning, _ = PAINTER_OPTION_HELP.get(f.name, ("", None))
        choices = _PAINTER_CHOICES.get(f.name)
        if f.default_factory is not dataclasses.MISSING:
            made = option(help=meaning, choices=choices, default_factory=f.default_factory)
        else:
            made = option(f.default, meaning, choices=choices)
        result.append((f.name, f.type, made))
    return result


#: painter options of a run: :class:`PainterConfig` without its size, channels and fast-path
#: flag, which follow the data and run sections (one source of truth for names and defaults).
PainterSection = dataclasses.make_dataclass(
    "PainterSection",
    _painter_section_fields(),
    namespace={"__doc__": "Painter options; image size and channels follow the data section."},
)


SECTIONS: dict[str, type] = {
    "data": DataSection,
    "generator": GeneratorSection,
    "painter": PainterSection,
    "refiner": RefinerSection,
    "discriminator": DiscriminatorSection,
    "objective": ObjectiveSection,
    "coop": CoopSection,
    "optim": OptimSection,
    "run": RunSection,
}


@dataclass
class TrainConfig:
    """The whole configuration of a training run, one attribute per section."""

    data: DataSection = field(default_factory=DataSection)
    generator: GeneratorSection = field(default_factory=GeneratorSection)
    painter: PainterSection = field(default_factory=PainterSection)
    refiner: RefinerSection = field(default_factory=RefinerSection)
    discriminator: DiscriminatorSection = field(default_factory=DiscriminatorSection)
    objective: ObjectiveSection = field(default_factory=ObjectiveSection)
    coop: CoopSection = field(default_factory=CoopSection)
    optim: OptimSection = field(default_factory=OptimSection)
    run: RunSection = field(default_factory=RunSection)
    preset: str = "paper"

    # -- conversion ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        config = cls()
        apply_nested(config, values, origin="configuration")
        return config

    def painter_config(self) -> PainterConfig:
        """The :class:`PainterConfig` this run trains (size and channels from the data)."""
        height, width = self.data.size
        return PainterConfig(
            height=height,
            width=width,
            channels=self.data.channels,
            fast_path=not self.run.reference,
            **dataclasses.asdict(self.painter),
        )

    def conv_generator_config(self) -> ConvGeneratorConfig:
        """The :class:`ConvGeneratorConfig` of ``generator.kind = conv`` (side from the data)."""
        gen = self.generator
        return ConvGeneratorConfig(
            size=self.data.size[0],
            channels=self.data.channels,
            latent_dim=gen.latent_dim,
            max_channels=gen.max_channels,
            attention_resolutions=tuple(gen.attention_resolutions),
            output_activation=gen.output_activation,
        )

    # -- validation ---------------------------------------------------------------------------
    def _validate_stages(self) -> None:
        """The generator kind, the refinement stage and the intermediate-image loss together."""
        gen, refiner, objective = self.generator, self.refiner, self.objective
        if gen.kind == "conv":
            if refiner.enabled:
                raise ConfigError(
                    "refiner.enabled: the conv generator takes no refiner (the paper's FPA/U-Net "
                    "refines painters only); drop --refiner or use --generator painter"
                )
            if gen.init_from:
                raise ConfigError(
                    "generator.init_from starts the refinement stage of a painter; it does not "
                    "apply to the conv generator"
                )
        if gen.init_from and not refiner.enabled:
            raise ConfigError(
                "generator.init_from starts the FPA/U-Net refinement stage from a painter run: "
                "enable the refiner (--refiner)"
            )
        if refiner.lr < 0 or refiner.match_loss_weight < 0:
            raise ConfigError(
                "refiner.lr must be >= 0 (0 = optim.lr_generator) and refiner.match_loss_weight "
                ">= 0 (0 = off)"
            )
        if (refiner.match_loss_weight > 0 or refiner.judge_painter) and not refiner.enabled:
            raise ConfigError(
                "refiner.match_loss_weight and refiner.judge_painter compare painted and refined "
                "images: enable the refiner (--refiner)"
            )
        if refiner.match_loss_weight > 0 and gen.init_from and gen.freeze_painter:
            raise ConfigError(
                "refiner.match_loss_weight pulls the painter toward the refined image, but "
                "generator.freeze_painter keeps the painter fixed: set one of them off "
                "(--no-generator-freeze-painter or --refiner-match-loss-weight 0)"
            )
        stages = objective.intermediate_images
        if stages < 1:
            raise ConfigError(f"objective.intermediate_images must be >= 1 (1 = off); got {stages}")
        if stages > 1:
            if gen.kind != "painter" or refiner.enabled:
                raise ConfigError(
                    "objective.intermediate_images judges partial paintings: it needs a painter "
                    "without refiner (--generator painter, no --refiner)"
                )
            if self.painter.steps % stages:
                raise ConfigError(
                    f"objective.intermediate_images ({stages}) must divide painter.steps "
                    f"({self.painter.steps}), as in the official code"
                )

    def validate(self) -> None:
        """Refuse invalid values and combinations before any work starts."""
        from .augment import DiffAugment
        from .networks import check_discriminator_size

        size = self.data.size
        if len(size) != 2 or any(not isinstance(s, int) or s < 1 for s in size):
            raise ConfigError(f"data.size must be [H, W] of positive integers; got {size!r}")
        if self.data.channels not in (1, 3):
            raise ConfigError(f"data.channels must be 1 or 3; got {self.data.channels}")
        if self.data.limit < 0:
            raise ConfigError(f"data.limit must be >= 0 (0 = all images); got {self.data.limit}")
        try:
            if self.generator.kind == "conv":
                if size[0] != size[1]:
                    raise ValueError(
                        f"the conv generator paints square images: set data.size to N; got "
                        f"{size[0]}x{size[1]}"
                    )
                self.conv_generator_config().validate()
            else:
                self.painter_config().validate()
            check_discriminator_size((size[0], size[1]))
        except ValueError as err:
            raise ConfigError(str(err)) from err
        positive = {
            "optim.batch_size": self.optim.batch_size,
            "run.log_every": self.run.log_every,
            "run.sample_every": self.run.sample_every,
            "run.checkpoint_every": self.run.checkpoint_every,
            "objective.gp_every": self.objective.gp_every,
            "discriminator.base_channels": self.discriminator.base_channels,
        }
        for name, value in positive.items():
            if value < 1:
                raise ConfigError(f"{name} must be a positive integer; got {value}")
        if self.run.steps < 1 and self.run.minutes <= 0:
            raise ConfigError(
                "set run.steps (--steps) or run.minutes (--minutes) to a positive value"
            )
        for name in ("lr_generator", "lr_discriminator"):
            if getattr(self.optim, name) <= 0:
                raise ConfigError(f"optim.{name} must be positive")
        if not 0.0 <= self.optim.ema_decay < 1.0:
            raise ConfigError(f"optim.ema_decay must be in [0, 1); got {self.optim.ema_decay}")
        for name in ("beta1", "beta2"):
            if not 0.0 <= getattr(self.optim, name) < 1.0:
                raise ConfigError(f"optim.{name} must be in [0, 1)")
        at_least = {
            "optim.ema_start": (self.optim.ema_start, 0),
            "optim.ema_every": (self.optim.ema_every, 1),
            "optim.ema_reset_every": (self.optim.ema_reset_every, 0),
            "optim.ema_reset_until": (self.optim.ema_reset_until, 0),
            "discriminator.max_channels": (self.discriminator.max_channels, 1),
        }
        for name, (value, least) in at_least.items():
            if value < least:
                raise ConfigError(f"{name} must be an integer >= {least}; got {value}")
        if self.discriminator.output_size not in OUTPUT_SIZES:
            raise ConfigError(
                f"discriminator.output_size must be one of {', '.join(map(str, OUTPUT_SIZES))}; "
                f"got {self.discriminator.output_size}"
            )
        attention = self.discriminator.attention_resolutions
        if any(r < 16 or r & (r - 1) for r in attention):
            raise ConfigError(
                f"discriminator.attention_resolutions must hold powers of two >= 16 (the blocks' "
                f"input sides); got {attention}"
            )
        for dotted, value, choices in _text_choices(self):
            if value not in choices:
                raise ConfigError(f"{dotted} must be one of {', '.join(choices)}; got {value!r}")
        self._validate_stages()
        try:
            DiffAugment(self.objective.augment, self.objective.augment_probability)
        except ValueError as err:
            raise ConfigError(f"objective.augment: {err}") from None
        _validate_coop(self)
        if not 0.0 <= self.objective.augment_probability <= 1.0:
            raise ConfigError("objective.augment_probability must be in [0, 1]")
        if self.objective.diversity_weight < 0 or self.objective.diversity_cap <= 0:
            raise ConfigError(
                "objective.diversity_weight must be >= 0 (0 = off) and objective.diversity_cap > 0"
            )
        if self.objective.diversity_weight > 0 and self.optim.batch_size < 2:
            raise ConfigError(
                "objective.diversity_weight compares pairs of samples: set optim.batch_size >= 2"
            )
        if self.refiner.enabled:
            divisor = 2**self.refiner.depth
            if size[0] % divisor or size[1] % divisor:
                raise ConfigError(
                    f"the refiner of depth {self.refiner.depth} needs an image size divisible "
                    f"by {divisor}; lower refiner.depth or change data.size"
                )
        if self.run.fid_every < 0 or (self.run.fid_every and self.run.fid_num < 2):
            raise ConfigError("run.fid_num must be at least 2 when run.fid_every is set")
        if self.run.device not in ("auto", "cpu") and not self.run.device.startswith("cuda"):
            raise ConfigError(f"run.device must be auto, cpu or cuda[:N]; got {self.run.device!r}")
        if self.optim.amp and self.run.reference:
            raise ConfigError("optim.amp and run.reference exclude each other: reference is fp32")
        if self.run.compile != "off" and self.run.reference:
            raise ConfigError(
                "run.compile and run.reference exclude each other: reference mode is eager; "
                "drop --reference or set --run-compile off"
            )


def _text_choices(config: TrainConfig) -> list[tuple[str, Any, tuple[str, ...]]]:
    """(dotted name, value, choices) of every option that declares its choices."""
    result = []
    for section in SECTIONS:
        values = getattr(config, section)
        for f in fields(values):
            choices = f.metadata.get("choices")
            if choices:
                result.append((f"{section}.{f.name}", getattr(values, f.name), choices))
    return result


def _coerce(section: str, name: str, kind: Any, value: Any) -> Any:
    where = f"{section}.{name}"
    kind_name = kind if isinstance(kind, str) else getattr(kind, "__name__", str(kind))
    if kind_name == "bool":
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false; got {value!r}")
        return value
    if kind_name == "int":
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ConfigError(f"{where} must be an integer; got {value!r}")
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"{where} must be an integer; got {value!r}") from None
    if kind_name == "float":
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where} must be a number; got {value!r}") from None
    if kind_name == "str":
        return str(value)
    if where == "data.size":
        try:
            return list(parse_size(value))
        except ValueError as err:
            raise ConfigError(f"data.size: {err}") from None
    if kind_name == "list[int]":
        return _int_list(where, value)
    if where == "painter.rule_options":
        if isinstance(value, str):
            value = _parse_toml_value(value)
        if not isinstance(value, dict):
            raise ConfigError(
                f"{where} must be a TOML inline table of rule options such as "
                f"{{decay = 0.5}} (fwp rules NAME lists them); got {value!r}"
            )
        return dict(value)
    return value


def _int_list(where: str, value: Any) -> list[int]:
    """A list of integers from a list, one integer, or text such as ``32``, ``16,32``,
    ``[16, 32]`` or ``""`` (an empty list)."""
    if isinstance(value, str):
        text = value.strip().strip("[]")
        items: list[Any] = [part.strip() for part in text.split(",") if part.strip()]
    elif isinstance(value, int) and not isinstance(value, bool):
        items = [value]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise ConfigError(f"{where} must be a list of integers such as 16,32; got {value!r}")
    try:
        if any(isinstance(item, bool | float) for item in items):
            raise ValueError
        return [int(item) for item in items]
    except ValueError:
        raise ConfigError(
            f"{where} must be a list of integers such as 16,32; got {value!r}"
        ) from None


def _parse_toml_value(text: str) -> Any:
    """A TOML value (``{decay = 0.5}``, ``[16, 64]``, ``true``); text that is no TOML value is
    returned as it is."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def set_option(config: TrainConfig, dotted: str, value: Any) -> None:
    """Set ``section.name`` to ``value`` (strings are converted to the field's type)."""
    section, _, name = dotted.partition(".")
    if section not in SECTIONS or not name:
        raise ConfigError(
            f"unknown option {dotted!r}: use section.name with a section among {sorted(SECTIONS)}"
        )
    target = getattr(config, section)
    types = {f.name: f.type for f in fields(target)}
    if name not in types:
        raise ConfigError(
            f"unknown option {dotted!r}; options of [{section}]: {', '.join(sorted(types))}"
        )
    setattr(target, name, _coerce(section, name, types[name], value))


def apply_nested(config: TrainConfig, values: dict[str, Any], origin: str) -> None:
    """Apply a nested mapping {section: {name: value}} (as read from TOML/JSON)."""
    for section, entries in values.items():
        if section == "preset":
            config.preset = str(entries)
            continue
        if not isinstance(entries, dict):
            raise ConfigError(f"{origin}: [{section}] must be a table of options; got {entries!r}")
        for name, value in entries.items():
            set_option(config, f"{section}.{name}", value)


def flatten_config(config: TrainConfig) -> dict[str, Any]:
    """``{"section.name": value}`` for every option of ``config``."""
    return {
        f"{section}.{f.name}": getattr(getattr(config, section), f.name)
        for section in SECTIONS
        for f in fields(getattr(config, section))
    }


#: options fwp records about a run rather than takes as requests (where its rule code came from)
RECORDED_OPTIONS = frozenset({"run.plugins"})


def config_changes(saved: TrainConfig, requested: TrainConfig) -> dict[str, Any]:
    """``{"section.name": requested value}`` for the options where ``requested`` differs
    (options fwp records, :data:`RECORDED_OPTIONS`, are no requests and never differ)."""
    old, new = flatten_config(saved), flatten_config(requested)
    return {
        key: value
        for key, value in new.items()
        if old[key] != value and key not in RECORDED_OPTIONS
    }


def parse_assignment(text: str) -> tuple[str, Any]:
    """``section.name=value`` -> (dotted, value); the value is read as TOML when it parses."""
    key, sep, raw = text.partition("=")
    if not sep:
        raise ConfigError(f"--set expects section.name=value; got {text!r}")
    return key.strip(), _parse_toml_value(raw)


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a .toml or .json configuration file into a nested mapping {section: {name: value}}.

    Raises:
        ConfigError: naming the file and what is wrong: missing or unreadable, bad TOML/JSON
            (with its line), not a table of sections, or an unknown section, option or value.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"configuration file {str(path)!r} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
        values = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (OSError, ValueError) as err:  # JSON, TOML and UTF-8 errors are ValueErrors
        raise ConfigError(f"cannot parse configuration file {str(path)!r}: {err}") from None
    if not isinstance(values, dict):
        raise ConfigError(
            f"configuration file {str(path)!r} must hold [section] tables of options; "
            f"got {type(values).__name__}"
        )
    for section, entries in values.items():
        if section != "preset" and not isinstance(entries, dict):
            raise ConfigError(
                f"configuration file {str(path)!r}: [{section}] must be a table of options; "
                f"got {entries!r}"
            )
    try:  # every name and value is checked here, so that errors name this file
        apply_nested(TrainConfig(), values, origin=str(path))
    except ConfigError as err:
        raise ConfigError(f"configuration file {str(path)!r}: {err}") from None
    return values


def _painter_preset_overrides(name: str) -> dict[str, Any]:
    """The painter options in which the painters package's preset ``name`` differs from the
    defaults (size and channels aside: they belong to the data section)."""
    preset, default = PAINTER_PRESETS[name], PainterConfig()
    return {
        f.name: getattr(preset, f.name)
        for f in fields(PainterConfig)
        if f.name not in DERIVED_PAINTER_OPTIONS
        and getattr(preset, f.name) != getattr(default, f.name)
    }


#: presets as nested overrides of the defaults. The defaults are the paper's main setting, except
#: for options added later, whose defaults keep fwp's earlier behaviour (a saved run that lacks
#: them takes their defaults) and which the paper preset sets here.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "paper": {
        # the official code's discriminator (12,326,632 parameters at 64x64 RGB) and U-Net
        # (the official --max_unet_dim 4 with its tanh output; painter + U-Net 14,423,366)
        "discriminator": {
            "architecture": "official",
            "attention_resolutions": [32],
            "output_size": 1,
        },
        "refiner": {
            "architecture": "official",
            "output": "direct",
            "base_channels": 64,
            "depth": 2,
        },
    },
    "quick": {
        # the painter architecture is the painters package's "quick" preset (one table)
        "data": {"size": [PAINTER_PRESETS["quick"].height, PAINTER_PRESETS["quick"].width]},
        "painter": _painter_preset_overrides("quick"),
        # the conv baseline about 3x the painter's size, as in the paper (1.4M vs 0.42M here)
        "generator": {"latent_dim": 64, "max_channels": 128},
        "refiner": {"architecture": "compact", "output": "residual"},
        # with the paper's training setting, every latent paints one of one or two images within
        # a CPU budget; these three changes (see the README) give varied emoji-like samples
        "discriminator": {
            "architecture": "fwp",
            "attention_resolutions": [],
            "output_size": 5,
            "base_channels": 16,
            "max_channels": 128,
            "minibatch_std": True,
        },
        "objective": {"diversity_weight": 1.0},
        "optim": {
            "batch_size": 32,
            "ema_decay": 0.99,
            "lr_generator": 1e-3,
            "lr_discriminator": 1e-3,
        },
        "run": {
            "steps": 2500,
            "log_every": 25,
            "sample_every": 250,
            "checkpoint_every": 250,
            "fid_num": 1000,
        },
    },
}


# Cooperative training (objective.name "coop"): "coop" is the official CoopNets setting (Xie et al.,
# TPAMI 2018: batch 100, 15 Langevin steps of size 0.002 with s = 0.016, descriptor Adam lr 0.007,
# painter Adam lr 1e-4, beta1 0.5, TensorFlow's beta2 0.999) with the paper's painter. In a CPU
# budget that setting makes every latent paint one striped image (see the README), so
# "coop-quick" changes five things, each an ordinary option: ten times the Langevin step size and
# reference s (the same pull towards 0 per step, a 100 times larger push by the descriptor, so f
# need not grow as large), the revision clipped to [-1, 1], four painter steps per revision, a
# painter head initialised ten times larger (varied first paintings) and the capped
# diversity-sensitive painter term of the quick GAN preset.
PRESETS["coop"] = {
    "objective": {"name": "coop"},
    "coop": {"langevin_steps": 15, "descriptor": "coopnets", "descriptor_width": 64},
    "optim": {"batch_size": 100, "lr_generator": 1e-4, "beta1": 0.5, "beta2": 0.999},
}
PRESETS["coop-quick"] = {
    "data": {"size": [32, 32]},
    "painter": {**PRESETS["quick"]["painter"], "head_init_scale": 10.0},
    "objective": {"name": "coop", "diversity_weight": 1000.0, "diversity_cap": 0.5},
    "coop": {
        "langevin_steps": 8,
        "step_size": 0.02,
        "reference_std": 0.16,
        "clamp": True,
        "painter_updates": 4,
        "descriptor": "coopnets",
        "descriptor_width": 16,
    },
    "optim": {
        "batch_size": 32,
        "ema_decay": 0.99,
        "lr_generator": 1e-3,
        "beta1": 0.5,
        "beta2": 0.999,
    },
    "run": {
        "steps": 1500,
        "minutes": 10.0,
        "log_every": 25,
        "sample_every": 100,
        "checkpoint_every": 100,
        "fid_num": 1000,
    },
}


def build_config(
    preset: str = "paper",
    config_file: str | Path | None = None,
    options: dict[str, Any] | None = None,
    assignments: list[str] | tuple[str, ...] = (),
) -> TrainConfig:
    """Preset, then file, then ``options`` ({"section.name": value}), then ``--set`` strings."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    config = TrainConfig(preset=preset)
    apply_nested(config, PRESETS[preset], origin=f"preset {preset}")
    if config_file is not None:
        apply_nested(config, load_config_file(config_file), origin=str(config_file))
    for dotted, value in (options or {}).items():
        set_option(config, dotted, value)
    for text in assignments:
        set_option(config, *parse_assignment(text))
    config.validate()
    return config


@dataclass(frozen=True)
class OptionInfo:
    """One configuration option as the command line shows it."""

    dotted: str
    section: str
    kind: str
    default: Any
    help: str
    choices: tuple[str, ...] | None
    cli: bool


def option_table() -> list[OptionInfo]:
    """Every option with its type name, paper default, meaning and choices, in section order."""
    defaults = TrainConfig()
    rows = []
    for section in SECTIONS:
        values = getattr(defaults, section)
        for f in fields(values):
            kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
            rows.append(
                OptionInfo(
                    dotted=f"{section}.{f.name}",
                    section=section,
                    kind=kind,
                    default=getattr(values, f.name),
                    help=f.metadata.get("help", ""),
                    choices=f.metadata.get("choices"),
                    cli=f.metadata.get("cli", True),
                )
            )
    return rows


def preset_defaults(preset: str) -> dict[str, Any]:
    """``{"section.name": value}`` of a preset (before any file or option)."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    config = TrainConfig(preset=preset)
    apply_nested(config, PRESETS[preset], origin=f"preset {preset}")
    return flatten_config(config)
