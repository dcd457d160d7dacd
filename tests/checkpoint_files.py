"""Checkpoint files for the safety tests: a malicious pickle, a format-1 checkpoint (fwp before
the format marker: numpy's RNG state pickled as an array), comparisons of training states."""

from __future__ import annotations

import os
import random
import shlex
from pathlib import Path
from typing import Any

import numpy as np
import torch


class RunsCommand:
    """Unpickling this object runs ``touch MARKER`` (``__reduce__`` returns ``os.system``)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


def write_malicious_checkpoint(path: Path, marker: Path) -> Path:
    """The file of the issue: ``torch.save({"step": 1, "payload": obj})``."""
    torch.save({"step": 1, "payload": RunsCommand(marker)}, path)
    return path


def format_1_state(state: dict[str, Any], best_fid: float | None = None) -> dict[str, Any]:
    """A training state as fwp wrote it before checkpoint format 2: no marker, ``version`` 1,
    numpy's RNG state as its legacy tuple (with a uint32 array) and python's as
    ``random.getstate()``'s tuple, a FID value as a numpy scalar."""
    old = {k: v for k, v in state.items() if k not in ("format", "version")}
    numpy_state = state["rng"]["numpy"]
    python_state = state["rng"]["python"]
    old["version"] = 1
    old["rng"] = {
        **state["rng"],
        "numpy": (
            numpy_state["bit_generator"],
            np.asarray(numpy_state["key"], dtype=np.uint32),
            numpy_state["pos"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        ),
        "python": (
            python_state["version"],
            tuple(python_state["internal"]),
            python_state["gauss_next"],
        ),
    }
    if best_fid is not None:
        old["best_fid"] = np.float64(best_fid)
    return old


def draws() -> tuple[list[float], list[float], list[float]]:
    """Three numbers from each global generator: torch, numpy, python random."""
    return (
        torch.rand(3).tolist(),
        np.random.rand(3).tolist(),
        [random.random() for _ in range(3)],
    )


def assert_same_state(expected: Any, got: Any, where: str = "state") -> None:
    """Equal trees: same keys, same types, tensors equal in dtype, shape and every value."""
    if isinstance(expected, torch.Tensor):
        assert isinstance(got, torch.Tensor), where
        assert expected.dtype == got.dtype and expected.shape == got.shape, where
        assert torch.equal(expected.cpu(), got.cpu()), where
    elif isinstance(expected, dict):
        assert isinstance(got, dict) and set(expected) == set(got), (where, set(expected), set(got))
        for key in expected:
            assert_same_state(expected[key], got[key], f"{where}.{key}")
    elif isinstance(expected, list | tuple):
        assert type(got) is type(expected) and len(got) == len(expected), where
        for index, (a, b) in enumerate(zip(expected, got, strict=True)):
            assert_same_state(a, b, f"{where}[{index}]")
    else:
        assert type(got) is type(expected) and got == expected, (where, expected, got)
