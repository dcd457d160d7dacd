"""The objective contract: an objective owns its networks and optimisers and exposes one
training step that returns a dict of named losses. The :class:`~fwp.gan.trainer.Trainer` only calls
:meth:`Objective.train_step` and saves :meth:`Objective.state_dict`, so every way of teaching a
generator shares the loop (data, EMA, checkpoints, logging, samples, FID). Objectives register by
name with :func:`register_objective`; ``objective.name`` in the configuration picks one."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

from fwp.painters import Generator

from ..config import TrainConfig

ObjectiveClass = TypeVar("ObjectiveClass", bound=type["Objective"])

#: registered objectives by name
OBJECTIVES: dict[str, type[Objective]] = {}


def register_objective(name: str) -> Callable[[ObjectiveClass], ObjectiveClass]:
    """Class decorator: make an :class:`Objective` subclass available as ``objective.name``."""

    def decorate(cls: ObjectiveClass) -> ObjectiveClass:
        OBJECTIVES[name] = cls
        return cls

    return decorate


def build_objective(config: TrainConfig, generator: Generator, device: torch.device) -> Objective:
    """The objective named by ``config.objective.name``, with its networks on ``device``."""
    name = config.objective.name
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; choose one of {sorted(OBJECTIVES)}")
    return OBJECTIVES[name](config, generator, device)


def make_adam(
    params: Any, lr: float, betas: tuple[float, float], device: torch.device, reference: bool
):
    """Adam: the plain per-parameter loop in reference mode, else the fastest implementation the
    device offers (fused on CUDA, foreach on CPU); all compute the same update."""
    if reference:
        return torch.optim.Adam(params, lr=lr, betas=betas, foreach=False)
    if device.type == "cuda":
        return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)
    return torch.optim.Adam(params, lr=lr, betas=betas, foreach=True)


@dataclass(frozen=True)
class LinearDecay:
    """A learning-rate factor by step index: 1 until ``start``, then falling linearly to 0 at
    ``total`` (the linear decay of pix2pix, Isola et al., CVPR 2017).

    Attributes:
        total: the run's steps (``run.steps``).
        start: the first step index of the decay (``int(optim.lr_decay_start * run.steps)``);
            ``start >= total`` keeps every rate constant.
    """

    total: int
    start: int

    @classmethod
    def from_fraction(cls, total: int, fraction: float) -> LinearDecay:
        """The decay over the last ``1 - fraction`` of ``total`` steps."""
        return cls(total, int(fraction * total))

    @property
    def active(self) -> bool:
        """False when every step's factor is 1."""
        return self.start < self.total

    def factor(self, step: int) -> float:
        """The factor of the step of index ``step`` (from 0): 1 before ``start``, then
        ``(total - step) / (total - start)``, never below 0."""
        if step < self.start:
            return 1.0
        return max(0.0, (self.total - step) / (self.total - self.start))


class Objective:
    """Base class: named networks, named optimisers, one training step.

    Subclasses take ``(config, generator, device)``, set ``self.networks`` (must include
    ``"generator"``) and ``self.optimizers``, and implement :meth:`train_step`.
    """

    #: names of the losses :meth:`train_step` returns, in a fixed order (metrics.csv columns).
    loss_names: tuple[str, ...] = ()
    #: the losses the progress display shows
    progress_losses: tuple[str, ...] = ("d_loss", "g_loss")

    def __init__(self, device: torch.device, amp: bool = False) -> None:
        self.device = device
        self.amp = amp
        self.networks: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}

    @property
    def generator(self) -> Generator:
        return self.networks["generator"]  # type: ignore[return-value]

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast on the objective's device when mixed precision is on, else a no-op."""
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)

    def train_step(self, real: Tensor, step: int) -> dict[str, Tensor]:
        """One optimisation step on real images (B, C, H, W) in [-1, 1].

        Returns:
            detached scalar losses by name (still on the device: no host synchronisation).
        """
        raise NotImplementedError

    def extra_sample_grids(self, latents: Tensor) -> dict[str, Tensor]:
        """Pictures of the objective's own, made when the trainer saves its sample grids.

        Args:
            latents: the trainer's fixed latents (N, latent_dim).

        Returns:
            {kind: float images (M, C, H, W) in [-1, 1]}, each saved as the grid
            ``samples/KIND_STEP.png`` (KIND must not be "samples", "raw" or "strip"). Called
            without gradients (enable them inside when needed); must not draw from the global
            random number generators, so that saving pictures never changes training. The base
            objective has none.
        """
        return {}

    def scale_learning_rates(self, factor: float) -> None:
        """Set every optimiser's learning rates to ``factor`` times their initial values (kept
        in each parameter group as ``initial_lr``, which checkpoints save with the optimiser)."""
        for optimizer in self.optimizers.values():
            for group in optimizer.param_groups:
                group["lr"] = group.setdefault("initial_lr", group["lr"]) * factor

    def learning_rates(self) -> dict[str, float]:
        return {name: opt.param_groups[0]["lr"] for name, opt in self.optimizers.items()}

    def state_dict(self) -> dict[str, Any]:
        return {
            "networks": {name: net.state_dict() for name, net in self.networks.items()},
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, net in self.networks.items():
            net.load_state_dict(state["networks"][name])
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])

    def train(self, mode: bool = True) -> None:
        for net in self.networks.values():
            net.train(mode)

    def distribute(self) -> None:
        """Train data-parallel over the initialised process group (several ranks, see
        :mod:`fwp.gan.distributed`); the trainer calls it once, after construction.

        The default: every network starts from rank 0's parameters, and every optimizer
        averages its parameters' gradients over the ranks right before it steps (an explicit
        all-reduce, :func:`~fwp.gan.distributed.average_gradients_before_step`). That is correct
        for any training step (double backward, networks called several times or frozen in
        another loss), so a new objective is data-parallel without doing anything. An objective
        may wrap networks whose use DistributedDataParallel supports in it instead (overlapping
        the all-reduce with the backward pass), as the adversarial objective does.
        """
        from .. import distributed

        for net in self.networks.values():
            distributed.broadcast_module(net)
        for optimizer in self.optimizers.values():
            distributed.average_gradients_before_step(optimizer)


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Temporarily stop gradients to ``module``'s parameters (they still flow to its input)."""
    flags = [p.requires_grad for p in module.parameters()]
    for p in module.parameters():
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(module.parameters(), flags, strict=True):
            p.requires_grad_(flag)
