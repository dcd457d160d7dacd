"""The learning-rule contract shared by every rule, built-in or plugin.

A rule turns a sequence of (key, value, learning rate) triples into a weight matrix per colour
channel by applying one rank-1 update per step ("Images as Weight Matrices", Irie & Schmidhuber,
ICLR 2023). Shapes, per batch element ``b`` and channel ``c``, for an image of height ``H`` and
width ``Wd`` (the matrix has ``H`` rows and ``Wd`` columns):

- one step: ``W`` (B, C, H, Wd), ``k`` (B, C, Wd), ``v`` (B, C, H), ``lr`` (B, C, L) with
  ``L = rule.lr_size(H)`` (1 for a scalar rate, H for a per-row rate);
- all steps: ``K`` (B, C, T, Wd), ``V`` (B, C, T, H), ``LR`` (B, C, T, L).

:meth:`LearningRule.scan` applies :meth:`LearningRule.step` T times; that scan is the reference.
A rule may override :meth:`LearningRule.paint` with a parallel fast path; tests compare every fast
path against the scan, values and gradients.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class PaintResult:
    """The outcome of painting with ``frames=True``.

    Attributes:
        image: the final matrix W_T, (B, C, H, Wd).
        updates: W_t - W_{t-1} for every step, (T, B, C, H, Wd).
        partials: W_t after every step, (T, B, C, H, Wd); ``partials[-1]`` equals ``image``.
    """

    image: Tensor
    updates: Tensor
    partials: Tensor


def _describe(t: Tensor) -> str:
    return f"{tuple(t.shape)} {t.dtype}"


def check_step_inputs(rule: LearningRule, W: Tensor, k: Tensor, v: Tensor, lr: Tensor) -> None:
    """Raise ``ValueError`` naming the argument whose shape or dtype breaks the step contract."""
    if W.dim() != 4:
        raise ValueError(f"W must have shape (B, C, H, Wd); got {_describe(W)}")
    if not W.is_floating_point():
        raise ValueError(f"W must be a floating-point tensor; got {_describe(W)}")
    B, C, H, Wd = W.shape
    expected = {
        "k": (k, (B, C, Wd)),
        "v": (v, (B, C, H)),
        "lr": (lr, (B, C, rule.lr_size(H))),
    }
    for name, (tensor, shape) in expected.items():
        if tuple(tensor.shape) != shape:
            raise ValueError(
                f"{name} must have shape {shape} (B, C, ...) to match W {tuple(W.shape)} "
                f"for rule {rule.name!r}; got {_describe(tensor)}"
            )
        if tensor.dtype != W.dtype:
            raise ValueError(
                f"{name} must have the dtype of W ({W.dtype}); got {_describe(tensor)}"
            )


def check_sequence_inputs(
    rule: LearningRule, K: Tensor, V: Tensor, LR: Tensor, W0: Tensor | None = None
) -> tuple[int, int, int, int, int]:
    """Validate ``K`` (B, C, T, Wd), ``V`` (B, C, T, H), ``LR`` (B, C, T, L) and optional ``W0``.

    Returns:
        (B, C, T, H, Wd)
    """
    if K.dim() != 4:
        raise ValueError(f"K must have shape (B, C, T, Wd); got {_describe(K)}")
    if not K.is_floating_point():
        raise ValueError(f"K must be a floating-point tensor; got {_describe(K)}")
    B, C, T, Wd = K.shape
    if V.dim() != 4 or tuple(V.shape[:3]) != (B, C, T):
        raise ValueError(f"V must have shape ({B}, {C}, {T}, H) to match K; got {_describe(V)}")
    H = V.shape[-1]
    expected_lr = (B, C, T, rule.lr_size(H))
    if tuple(LR.shape) != expected_lr:
        raise ValueError(
            f"LR must have shape {expected_lr} (B, C, T, L) for rule {rule.name!r}; "
            f"got {_describe(LR)}"
        )
    if W0 is not None and tuple(W0.shape) != (B, C, H, Wd):
        raise ValueError(f"W0 must have shape {(B, C, H, Wd)}; got {_describe(W0)}")
    for name, tensor in (("V", V), ("LR", LR)) + ((("W0", W0),) if W0 is not None else ()):
        if tensor.dtype != K.dtype:
            raise ValueError(
                f"{name} must have the dtype of K ({K.dtype}); got {_describe(tensor)}"
            )
    return B, C, T, H, Wd


class LearningRule:
    """Base class of every learning rule.

    Subclasses implement :meth:`activate` and :meth:`step`; they may implement a parallel
    :meth:`paint` and then set ``has_fast_path = True``. Rules hold no trainable parameters: every
    quantity that changes from step to step comes from the controller. A family documents each
    constructor argument in an ``Args:`` section of its docstring: ``fwp rules NAME`` and
    :func:`fwp.rules.rule_options` show those lines as the rule's options.

    Class attributes:
        family: the family name shown by ``fwp rules`` (one class per family); the property
            checks declared for that name in :mod:`fwp.rules.testing` apply to the rule.
        has_fast_path: whether :meth:`paint` is a parallel implementation rather than the scan.
        zero_lr_is_identity: whether ``step`` with ``lr = 0`` leaves W unchanged (a property test).
    """

    family: str = "custom"
    has_fast_path: bool = False
    zero_lr_is_identity: bool = True

    #: registered name and description, set by :func:`fwp.rules.register_rule`.
    name: str = "unregistered"
    description: str = ""

    # -- what the controller must emit ---------------------------------------------------------
    def lr_size(self, height: int) -> int:
        """Learning-rate logits per channel and step: 1 (scalar) or ``height`` (per row)."""
        return 1

    # -- activations -------------------------------------------------------------------------
    def activate(
        self, key_logits: Tensor, value_logits: Tensor, lr_logits: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Map raw controller outputs to (k, v, lr).

        Works elementwise over leading dimensions: ``key_logits`` (..., Wd), ``value_logits``
        (..., H), ``lr_logits`` (..., L). The default is the identity.
        """
        return key_logits, value_logits, lr_logits

    def activate_sequence(
        self, key_logits: Tensor, value_logits: Tensor, lr_logits: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Activate a whole sequence, (B, C, T, Wd), (B, C, T, H), (B, C, T, L).

        Rules with a convention that depends on the step index (for example an unscaled first
        update) apply it here.
        """
        return self.activate(key_logits, value_logits, lr_logits)

    # -- the update ----------------------------------------------------------------------------
    def step(self, W: Tensor, k: Tensor, v: Tensor, lr: Tensor) -> Tensor:
        """One update. W (B, C, H, Wd), k (B, C, Wd), v (B, C, H), lr (B, C, L) -> W' (B, C, H, Wd).

        Must return a new tensor and never modify its inputs.
        """
        raise NotImplementedError

    def checked_step(self, W: Tensor, k: Tensor, v: Tensor, lr: Tensor) -> Tensor:
        """:meth:`step` with the contract checked on the inputs and on the result."""
        check_step_inputs(self, W, k, v, lr)
        out = self.step(W, k, v, lr)
        if not isinstance(out, Tensor) or out.shape != W.shape:
            got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise ValueError(
                f"rule {self.name!r} ({type(self).__module__}.{type(self).__qualname__}) returned "
                f"{got} from step(); the contract requires W's shape {tuple(W.shape)}"
            )
        return out

    # -- whole sequences -----------------------------------------------------------------------
    def scan(
        self, K: Tensor, V: Tensor, LR: Tensor, W0: Tensor | None = None, frames: bool = False
    ) -> Tensor | PaintResult:
        """The reference: apply :meth:`step` for t = 0 .. T-1, starting from ``W0`` (zeros).

        Args:
            K: keys (B, C, T, Wd). V: values (B, C, T, H). LR: rates (B, C, T, L).
            W0: initial matrix (B, C, H, Wd), zeros when omitted.
            frames: also return every update and partial image.

        Returns:
            W_T (B, C, H, Wd), or a :class:`PaintResult` when ``frames`` is true.
        """
        B, C, T, H, Wd = check_sequence_inputs(self, K, V, LR, W0)
        W = K.new_zeros(B, C, H, Wd) if W0 is None else W0
        partials = []
        for t in range(T):
            W = self.checked_step(W, K[:, :, t], V[:, :, t], LR[:, :, t])
            if frames:
                partials.append(W)
        if not frames:
            return W
        return frames_from_partials(torch.stack(partials), W0)

    def paint(
        self, K: Tensor, V: Tensor, LR: Tensor, W0: Tensor | None = None, frames: bool = False
    ) -> Tensor | PaintResult:
        """All T steps at once; same signature and result as :meth:`scan` (the default)."""
        return self.scan(K, V, LR, W0=W0, frames=frames)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def frames_from_partials(partials: Tensor, W0: Tensor | None = None) -> PaintResult:
    """Build a :class:`PaintResult` from partial images (T, B, C, H, Wd)."""
    start = torch.zeros_like(partials[:1]) if W0 is None else W0.unsqueeze(0)
    previous = torch.cat([start, partials[:-1]], dim=0)
    return PaintResult(image=partials[-1], updates=partials - previous, partials=partials)


def frames_from_updates(updates: Tensor, W0: Tensor | None = None) -> PaintResult:
    """Build a :class:`PaintResult` from purely additive updates (T, B, C, H, Wd)."""
    partials = updates.cumsum(dim=0)
    if W0 is not None:
        partials = partials + W0.unsqueeze(0)
    return PaintResult(image=partials[-1], updates=updates, partials=partials)
