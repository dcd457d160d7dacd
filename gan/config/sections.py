"""The configuration sections of the generator, data, discriminator, optimisers and run (the
objectives' sections are in :mod:`.objectives`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any

from fwp.painters import REFINER_ARCHITECTURES, REFINER_OUTPUTS, PainterConfig
from fwp.painters.painter import (
    CONTROLLERS,
    INITIAL_MATRICES,
    INPUT_GENERATORS,
    OUTPUT_ACTIVATIONS,
)

from ..networks.discriminator import DISCRIMINATOR_ARCHITECTURES
from .fields import COMPILE_MODES, GENERATOR_KINDS, INIT_WEIGHTS, option


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
class OptimSection:
    """Optimisers (Adam) and the EMA of the generator."""

    batch_size: int = option(
        20, "images per step and rank (with torchrun/srun the step's batch is this x ranks)"
    )
    lr_generator: float = option(2e-4, "Adam learning rate of the generator")
    lr_discriminator: float = option(2e-4, "Adam learning rate of the discriminator")
    lr_decay_start: float = option(
        1.0,
        "fraction of run.steps after which every learning rate falls linearly to 0 at run.steps "
        "(1 = constant, the paper's)",
    )
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
    "initial_matrix": (
        "what the T updates start from: zeros (the paper's) or learned (one trained matrix per "
        "channel, shared by all latents)",
        None,
    ),
    "head_init_scale": (
        "scale of the controller head's initial weights (the official kvb_init_fact)",
        None,
    ),
}

#: choices of painter text options, from the painters package
_PAINTER_CHOICES = {
    "input_generator": INPUT_GENERATORS,
    "output_activation": OUTPUT_ACTIVATIONS,
    "initial_matrix": INITIAL_MATRICES,
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
