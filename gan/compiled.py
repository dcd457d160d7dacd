"""torch.compile for the training step's networks, with a clean fallback to eager execution.

Compiling fuses the many small element-wise kernels of the painter's activations and of the
discriminator into few, which matters most where kernel-launch overhead dominates (small batches
on a GPU). It never changes the model: the compiled and the eager call compute the same function
(tests compare their losses and gradients), and the networks' parameters and checkpoints are the
eager modules' own.
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Callable
from typing import Any

import torch

#: the torch.compile backend (tests swap in lighter ones)
BACKEND: Any = "inductor"


def compile_unavailable_reason(device: torch.device) -> str | None:
    """Why torch.compile's default backend cannot run on ``device`` here, or None if it can."""
    if device.type == "cuda":
        try:
            from torch.utils._triton import has_triton
        except ImportError:  # pragma: no cover - torch without the helper
            return "this torch build has no Triton support"
        return None if has_triton() else "Triton is not installed (pip install triton)"
    if shutil.which("cc") is None and shutil.which("gcc") is None and shutil.which("g++") is None:
        return "no C/C++ compiler on PATH (install gcc)"
    return None


def disable_mix_order_reduction() -> None:
    """Turn off inductor's mix-order reduction (on by default since torch 2.10) where this torch
    has it.

    On CUDA it fuses the two reductions of a channel norm's backward, and with it torch 2.10 and
    2.11 hand back a wrongly shaped gradient for a (1, C, 1, 1) gain (pytorch/pytorch#178080:
    "CompiledFunctionBackward returned an invalid gradient ... got [128] but expected shape
    compatible with [1, 128, 1, 1]", which stopped the compiled discriminator's step on an H200)
    or silently wrong gradients for shared norm parameters (pytorch/pytorch#193061). Our channel
    norms (:class:`fwp.painters.layers.ChannelNorm`) are exactly that pattern.
    """
    from torch._inductor import config as inductor_config

    triton_config = getattr(inductor_config, "triton", None)
    if triton_config is not None and hasattr(triton_config, "mix_order_reduction"):
        triton_config.mix_order_reduction = False


class CompiledCall:
    """Call ``torch.compile(function, mode=mode)``; on the first failure, warn once and call
    ``function`` eagerly from then on.

    Compilation happens lazily, at the first call with new input properties; a failure there
    (no compiler, an unsupported operation) falls back to eager, which recomputes the same call,
    so a genuine error in the model still surfaces (from the eager call). The compiled call
    shares the parameters of the network it runs.

    Args:
        function: a network, or a method of one, to call.
        mode: a torch.compile mode ("default", "reduce-overhead", "max-autotune"); only the
            inductor backend takes one.
        name: used in the warning.
        backend: the torch.compile backend.
    """

    def __init__(
        self, function: Callable[..., Any], mode: str, name: str, backend: Any = "inductor"
    ) -> None:
        self.function = function
        self.name = name
        options = {"mode": mode} if backend == "inductor" else {}
        if backend == "inductor":
            disable_mix_order_reduction()
        self.compiled: Any = torch.compile(function, backend=backend, **options)
        self.failed = False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not self.failed:
            try:
                return self.compiled(*args, **kwargs)
            except Exception as error:  # any compile failure falls back
                self.failed = True
                warnings.warn(
                    f"torch.compile of the {self.name} failed ({type(error).__name__}: "
                    f"{str(error).splitlines()[0] if str(error) else ''}); running it eagerly. "
                    f"Set --run-compile off to silence this.",
                    RuntimeWarning,
                    stacklevel=2,
                )
        return self.function(*args, **kwargs)


def maybe_compile(
    function: Callable[..., Any], mode: str, device: torch.device, name: str
) -> Callable[..., Any]:
    """``function`` itself when ``mode`` is "off" or compiling cannot work on ``device`` (with a
    warning saying why), else a :class:`CompiledCall` of it."""
    if mode == "off":
        return function
    reason = compile_unavailable_reason(device)
    if reason is not None:
        warnings.warn(
            f"run.compile={mode!r} ignored for the {name}: {reason}; running it eagerly",
            RuntimeWarning,
            stacklevel=2,
        )
        return function
    return CompiledCall(function, mode, name, backend=BACKEND)
