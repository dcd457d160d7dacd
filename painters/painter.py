"""The Painter engine: latent -> input generator -> controller -> learning rule -> image.

This is the Fast Weight Painter (FPA) of "Images as Weight Matrices" (Irie & Schmidhuber,
ICLR 2023) generalised over learning rules: at each of T steps the controller emits, for every
colour channel, a key (Wd), a value (H) and learning-rate logits; the rule applies one rank-1
update per step to an (H x Wd) matrix per channel, and the final matrix (through an optional tanh)
is the image.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import torch
from einops import rearrange, repeat
from torch import Tensor, nn

from fwp.rules import LearningRule, PaintResult, get_rule

from .controller import LSTMController, TransformerController
from .inputs import ChunkedLatentInput, RepeatedLatentInput, SplitLatentInput

OUTPUT_ACTIVATIONS = ("tanh", "none")
#: the matrix the T updates start from: zeros (the paper's) or one learned matrix per channel
INITIAL_MATRICES = ("zeros", "learned")


def _repeated_input(config: PainterConfig) -> nn.Module:
    return RepeatedLatentInput(config.latent_dim, config.steps)


def _chunked_input(config: PainterConfig) -> nn.Module:
    return ChunkedLatentInput(
        config.latent_dim, config.steps, config.step_latent_dim, config.controller_input_dim
    )


def _split_input(config: PainterConfig) -> nn.Module:
    return SplitLatentInput(config.latent_dim, config.steps)


def _lstm(config: PainterConfig, input_dim: int, output_dim: int) -> nn.Module:
    return LSTMController(
        input_dim=input_dim,
        hidden_size=config.hidden_size,
        num_layers=config.num_layers,
        output_dim=output_dim,
        latent_dim=config.latent_dim if config.init_state_from_latent else None,
        head_init_scale=config.head_init_scale,
    )


def _transformer(config: PainterConfig, input_dim: int, output_dim: int) -> nn.Module:
    return TransformerController(
        input_dim=input_dim,
        output_dim=output_dim,
        dim=config.hidden_size,
        num_layers=config.num_layers,
        heads=config.transformer_heads,
        feedforward_dim=config.transformer_feedforward,
        causal=config.transformer_causal,
        latent_dim=config.latent_dim if config.init_state_from_latent else None,
        head_init_scale=config.head_init_scale,
    )


#: input generator name -> builder from a painter configuration
_INPUT_GENERATORS: dict[str, Callable[[PainterConfig], nn.Module]] = {
    "v1": _repeated_input,
    "v2": _chunked_input,
    "split": _split_input,
}
INPUT_GENERATORS = tuple(_INPUT_GENERATORS)

#: controller name -> builder from (painter configuration, input size, output size)
_CONTROLLERS: dict[str, Callable[[PainterConfig, int, int], nn.Module]] = {
    "lstm": _lstm,
    "transformer": _transformer,
}
CONTROLLERS = tuple(_CONTROLLERS)


@dataclass(frozen=True)
class PainterConfig:
    """Everything that defines a painter's architecture.

    Attributes:
        height, width: image size H x Wd (the matrix has H rows and Wd columns).
        channels: 1 (grey) or 3 (RGB); one matrix per channel.
        steps: T, the number of rank-1 updates.
        rule: a registered learning-rule name (``fwp rules`` lists them).
        rule_options: constructor overrides for the rule.
        latent_dim: size of z.
        input_generator: "v1" (z at every step), "v2" (the paper's chunked input generator) or
            "split" (z cut into T chunks; latent_dim must be a multiple of steps).
        step_latent_dim: v2's per-step latent chunk.
        controller_input_dim: v2's projected per-step input.
        controller: "lstm" (the paper's) or "transformer" (the official code's
            ``trafo_delta_split``, whose sizes there are hidden_size 512, num_layers 1,
            transformer_heads 8, transformer_feedforward 1024, with the "split" input generator).
        hidden_size, num_layers: the controller's width and depth (LSTM hidden size and layers,
            or Transformer width and layers).
        transformer_heads: attention heads of the Transformer (must divide hidden_size).
        transformer_feedforward: hidden width of the Transformer's MLPs.
        transformer_causal: the Transformer's step t sees steps <= t only (the official code's
            Transformer sees all steps: False).
        init_state_from_latent: compute the controller's initial state from z (the LSTM's
            (h0, c0); a start token that the Transformer's steps attend to).
        output_activation: "tanh" or "none", applied to the final matrix.
        initial_matrix: what the updates start from. "zeros" (the paper's W_0 = 0), or "learned":
            one matrix per channel (C, H, Wd), a slow weight trained with the controller and
            shared by all latents (zeros at initialisation, so a new painter paints the same), as
            the learned initial weights of the self-referential weight matrix (Irie, Schlag,
            Csordas & Schmidhuber, ICML 2022). Every rule then updates from it: a Hebbian sum
            adds to it, the delta rule corrects what it recalls (v - W k includes W_0 k).
        head_init_scale: scale of the output head's initial weights (larger: more contrast and
            more difference between latents at the start of training).
        fast_path: use the rule's parallel ``paint`` when it has one (else scan ``step``).
    """

    height: int = 64
    width: int = 64
    channels: int = 3
    steps: int = 64
    rule: str = "delta"
    rule_options: dict[str, Any] = field(default_factory=dict)
    latent_dim: int = 512
    input_generator: str = "v2"
    step_latent_dim: int = 8
    controller_input_dim: int = 128
    controller: str = "lstm"
    hidden_size: int = 1024
    num_layers: int = 1
    transformer_heads: int = 8
    transformer_feedforward: int = 1024
    transformer_causal: bool = True
    init_state_from_latent: bool = True
    output_activation: str = "tanh"
    initial_matrix: str = "zeros"
    head_init_scale: float = 1.0
    fast_path: bool = True

    def validate(self) -> None:
        """Raise ``ValueError`` naming the option to change when the configuration is invalid."""
        positive = (
            "height",
            "width",
            "steps",
            "latent_dim",
            "step_latent_dim",
            "controller_input_dim",
            "hidden_size",
            "num_layers",
            "transformer_heads",
            "transformer_feedforward",
        )
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"painter option {name} must be a positive integer; got {value!r}")
        if self.channels not in (1, 3):
            raise ValueError(f"painter option channels must be 1 or 3; got {self.channels!r}")
        if self.input_generator not in INPUT_GENERATORS:
            raise ValueError(
                f"painter option input_generator must be one of {INPUT_GENERATORS}; "
                f"got {self.input_generator!r}"
            )
        if self.input_generator == "split" and self.latent_dim % self.steps:
            raise ValueError(
                f"painter option latent_dim ({self.latent_dim}) must be a multiple of steps "
                f"({self.steps}) for the split input generator"
            )
        if self.controller not in CONTROLLERS:
            raise ValueError(
                f"painter option controller must be one of {CONTROLLERS}; got {self.controller!r}"
            )
        if self.controller == "transformer" and self.hidden_size % self.transformer_heads:
            raise ValueError(
                f"painter option hidden_size ({self.hidden_size}, the Transformer's width) must "
                f"be divisible by transformer_heads ({self.transformer_heads})"
            )
        if self.output_activation not in OUTPUT_ACTIVATIONS:
            raise ValueError(
                f"painter option output_activation must be one of {OUTPUT_ACTIVATIONS}; "
                f"got {self.output_activation!r}"
            )
        if self.initial_matrix not in INITIAL_MATRICES:
            raise ValueError(
                f"painter option initial_matrix must be one of {INITIAL_MATRICES}; "
                f"got {self.initial_matrix!r}"
            )
        get_rule(self.rule, **self.rule_options)  # unknown rule or bad options fail here

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PainterConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"unknown painter options {unknown}; valid options are {sorted(known)}"
            )
        return cls(**values)


#: named painter configurations. "paper" is the main configuration of Irie & Schmidhuber (2023).
PAINTER_PRESETS: dict[str, PainterConfig] = {
    "paper": PainterConfig(),
    "quick": PainterConfig(
        height=32,
        width=32,
        steps=16,
        latent_dim=64,
        step_latent_dim=8,
        controller_input_dim=64,
        hidden_size=256,
    ),
}


def painter_preset(name: str, **overrides: Any) -> PainterConfig:
    """A preset from :data:`PAINTER_PRESETS` with ``overrides`` applied."""
    if name not in PAINTER_PRESETS:
        raise ValueError(
            f"unknown painter preset {name!r}; choose one of {sorted(PAINTER_PRESETS)}"
        )
    return replace(PAINTER_PRESETS[name], **overrides)


class Painter(nn.Module):
    """A learning-rule painter: z (B, latent_dim) -> image (B, C, H, Wd)."""

    def __init__(self, config: PainterConfig | None = None) -> None:
        super().__init__()
        config = config or PainterConfig()
        config.validate()
        self.config = config
        self.rule: LearningRule = get_rule(config.rule, **config.rule_options)
        self.lr_size = self.rule.lr_size(config.height)
        self.inputs = _INPUT_GENERATORS[config.input_generator](config)
        per_channel = config.width + config.height + self.lr_size
        self.controller = _CONTROLLERS[config.controller](
            config, self.inputs.output_dim, config.channels * per_channel
        )
        self.fast_path = config.fast_path
        #: the learned initial matrix W_0 (C, H, Wd), or None for zeros
        self.initial: nn.Parameter | None = None
        if config.initial_matrix == "learned":
            self.initial = nn.Parameter(torch.zeros(config.channels, config.height, config.width))

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def logits(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Raw controller outputs: key (B, C, T, Wd), value (B, C, T, H), lr (B, C, T, L)."""
        if z.dim() != 2 or z.shape[1] != self.config.latent_dim:
            raise ValueError(
                f"z must have shape (B, {self.config.latent_dim}); got {tuple(z.shape)}"
            )
        cfg = self.config
        out = self.controller(self.inputs(z), z)
        out = rearrange(out, "b t (c n) -> b c t n", c=cfg.channels)
        return out.split([cfg.width, cfg.height, self.lr_size], dim=-1)

    def sequences(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Activated keys (B, C, T, Wd), values (B, C, T, H), rates (B, C, T, L).

        The rule always works in at least float32, also under mixed-precision autocast: the
        controller's half-precision logits are cast up, and the activations and the painting run
        with autocast off (see :meth:`paint`). T rank-1 updates accumulate rounding, and the delta
        rule's triangular solve has no half-precision kernels.
        """
        logits = [at_least_float32(x) for x in self.logits(z)]
        with full_precision(z.device):
            return self.rule.activate_sequence(*logits)

    def _matrices(self, z: Tensor, frames: bool = False) -> Tensor | PaintResult:
        """The rule's painting of latents z (B, latent_dim), before the output activation: the
        final matrices (B, C, H, Wd), or with ``frames`` a :class:`~fwp.rules.PaintResult`.

        The rule's parallel ``paint`` (or its step-by-step ``scan`` without the fast path) runs
        in full precision, from the learned initial matrix repeated (B, C, H, Wd) in the keys'
        dtype when there is one; otherwise no ``W0`` is passed, so the rule starts from zeros and
        a plugin rule whose ``paint`` takes no ``W0`` still works.
        """
        K, V, LR = self.sequences(z)
        run = self.rule.paint if self.fast_path else self.rule.scan
        start = {}
        if self.initial is not None:
            start["W0"] = repeat(self.initial.to(K.dtype), "c h w -> b c h w", b=K.shape[0])
        with full_precision(z.device):
            return run(K, V, LR, frames=frames, **start)

    def _output(self, matrix: Tensor) -> Tensor:
        return torch.tanh(matrix) if self.config.output_activation == "tanh" else matrix

    def paint(self, z: Tensor, frames: bool = False) -> Tensor | PaintResult:
        """Paint images from latents z (B, latent_dim).

        Returns:
            images (B, C, H, Wd); with ``frames=True`` a :class:`~fwp.rules.PaintResult` whose
            ``updates`` are the raw rank-1 updates (T, B, C, H, Wd) and whose ``partials`` and
            ``image`` have the output activation applied.
        """
        result = self._matrices(z, frames)
        if not frames:
            return self._output(result)
        return PaintResult(
            image=self._output(result.image),
            updates=result.updates,
            partials=self._output(result.partials),
        )

    def paint_stages(self, z: Tensor, stages: int, scale: bool = True) -> Tensor:
        """N - 1 partial paintings and the final image of each latent, for the intermediate-image
        loss of the official FPA code (its ``--use_intermed_loss N``).

        With T steps, stage j < N is the matrix after ``j * T // N + 1`` rank-1 updates (the
        official loop appends it at step index ``j * T // N``), multiplied by ``N / j`` when
        ``scale`` (its ``--scale_intermed_loss``: a partial sum of updates is fainter); stage N
        is the final matrix. The output activation is applied to each.

        Args:
            z: latents (B, latent_dim).
            stages: N, between 1 and T, dividing T.
            scale: multiply partial matrix j by N / j.

        Returns:
            images (N, B, C, H, Wd); ``[-1]`` equals :meth:`paint` of ``z``.
        """
        steps = self.config.steps
        if not isinstance(stages, int) or not 1 <= stages <= steps or steps % stages:
            raise ValueError(
                f"stages must be an integer between 1 and painter steps ({steps}) that divides "
                f"them; got {stages!r}"
            )
        if stages == 1:
            return self._output(self._matrices(z))[None]
        result = self._matrices(z, frames=True)
        index = torch.tensor([j * steps // stages for j in range(1, stages)], device=z.device)
        partials = result.partials.index_select(0, index)  # (N - 1, B, C, H, Wd)
        if scale:
            factors = torch.tensor(
                [stages / j for j in range(1, stages)], device=z.device, dtype=partials.dtype
            )
            partials = partials * rearrange(factors, "n -> n 1 1 1 1")
        return self._output(torch.cat([partials, result.image[None]]))

    def forward(self, z: Tensor) -> Tensor:
        """z (B, latent_dim) -> images (B, C, H, Wd)."""
        return self.paint(z)

    def sample_latents(
        self, num: int, rng: torch.Generator | None = None, device: torch.device | None = None
    ) -> Tensor:
        """Standard-normal latents (num, latent_dim)."""
        device = device or next(self.parameters()).device
        z = torch.randn(num, self.config.latent_dim, generator=rng)
        return z.to(device)

    def sample(self, num: int, batch_size: int = 256, seed: int = 0) -> Tensor:
        """``num`` images (num, C, H, Wd) from fixed-seed latents, painted in batches, on CPU."""
        return sample_images(self, num, batch_size, seed)


def at_least_float32(x: Tensor) -> Tensor:
    """``x`` in float32 when it is a half-precision float (float16, bfloat16), else unchanged."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def full_precision(device: torch.device) -> torch.autocast:
    """A context in which autocast is off on ``device`` (a no-op when it was not on)."""
    return torch.autocast(device_type=device.type, enabled=False)


@torch.no_grad()
def sample_images(model: nn.Module, num: int, batch_size: int, seed: int) -> Tensor:
    """Run ``model`` (latents -> images) on ``num`` fixed-seed latents, in batches, to CPU.

    ``model`` has ``sample_latents(num, generator)``; returns float images (num, C, H, Wd). The
    latents are drawn all at once, so the result does not depend on ``batch_size``.
    """
    latents = model.sample_latents(num, torch.Generator().manual_seed(seed))
    return torch.cat([model(z).float().cpu() for z in latents.split(batch_size)])


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
