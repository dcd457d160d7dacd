"""The process's runtime set-up: which device, which CUDA math, and every random number
generator (seeding, saving and restoring their states for exact resume)."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from .config import ConfigError


def pick_device(name: str) -> torch.device:
    """``auto`` picks CUDA when available, else the CPU; ``cuda`` without a GPU is refused."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device must be auto, cpu or cuda[:N]; got {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name} asked for, but no CUDA device is available; use cpu")
    return device


def set_cuda_math(device: torch.device, fast: bool, deterministic: bool = False) -> None:
    """On CUDA, TF32 matmuls and convolutions and cuDNN autotuning in fast mode, strict float32
    without autotuning otherwise (these switches are process-wide, so they are set both ways)."""
    if device.type != "cuda":
        return
    torch.backends.cuda.matmul.allow_tf32 = fast
    torch.backends.cudnn.allow_tf32 = fast
    torch.backends.cudnn.benchmark = fast and not deterministic


def seed_everything(seed: int) -> None:
    """Seed python's ``random``, numpy's global generator and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


#: 32-bit words in the key of the Mersenne Twister behind numpy's legacy global generator
NUMPY_KEY_WORDS = 624
#: integers in python ``random``'s internal state (the 624 key words and the position)
PYTHON_STATE_WORDS = 625


def rng_state() -> dict[str, Any]:
    """The states of every global random number generator fwp draws from, as plain data
    (tensors, lists, ints, floats, strings, None: no numpy arrays, no tuples), so that a
    checkpoint holding them loads with ``torch.load(weights_only=True)``::

        {"torch": uint8 tensor, "cuda": [uint8 tensor per device] (only with CUDA),
         "numpy": {"bit_generator": "MT19937", "key": [624 ints], "pos": int,
                   "has_gauss": int, "cached_gaussian": float},
         "python": {"version": int, "internal": [625 ints], "gauss_next": float | None}}
    """
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": _plain_numpy_state(np.random.get_state(legacy=True)),
        "python": _plain_python_state(random.getstate()),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned (tensors may be on any device).

    Raises:
        ValueError: ``state`` is not such a state (see :func:`check_rng_state`).
    """
    check_rng_state(state)
    torch.set_rng_state(state["torch"].cpu())
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            numpy_state["bit_generator"],
            np.asarray(numpy_state["key"], dtype=np.uint32),
            numpy_state["pos"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    python_state = state["python"]
    random.setstate(
        (python_state["version"], tuple(python_state["internal"]), python_state["gauss_next"])
    )
    if "cuda" in state and torch.cuda.is_available():
        devices = torch.cuda.device_count()
        for index, cuda_state in enumerate(state["cuda"][:devices]):
            torch.cuda.set_rng_state(cuda_state.cpu(), index)


def check_rng_state(state: object) -> None:
    """Refuse anything that is not a state of :func:`rng_state`'s form.

    Raises:
        ValueError: naming the entry (``rng.numpy.key``, ...) that is missing or malformed.
    """
    if not isinstance(state, dict):
        raise ValueError(f"rng must be a table of generator states; got {type(state).__name__}")
    missing = sorted({"torch", "numpy", "python"} - set(state))
    if missing:
        raise ValueError(f"rng lacks the state of {', '.join(missing)}")
    _check_byte_tensor(state["torch"], "rng.torch")
    if "cuda" in state:
        if not isinstance(state["cuda"], list):
            raise ValueError("rng.cuda must be a list of per-device states")
        for index, cuda_state in enumerate(state["cuda"]):
            _check_byte_tensor(cuda_state, f"rng.cuda[{index}]")
    numpy_state = state["numpy"]
    if not isinstance(numpy_state, dict):
        raise ValueError("rng.numpy must be a table (bit_generator, key, pos, ...)")
    if numpy_state.get("bit_generator") != "MT19937":
        raise ValueError("rng.numpy.bit_generator must be 'MT19937'")
    _check_words(numpy_state.get("key"), NUMPY_KEY_WORDS, "rng.numpy.key")
    _check_int(numpy_state.get("pos"), 0, NUMPY_KEY_WORDS, "rng.numpy.pos")
    _check_int(numpy_state.get("has_gauss"), 0, 1, "rng.numpy.has_gauss")
    if type(numpy_state.get("cached_gaussian")) is not float:
        raise ValueError("rng.numpy.cached_gaussian must be a float")
    python_state = state["python"]
    if not isinstance(python_state, dict):
        raise ValueError("rng.python must be a table (version, internal, gauss_next)")
    _check_int(python_state.get("version"), 0, 2**31, "rng.python.version")
    _check_words(python_state.get("internal"), PYTHON_STATE_WORDS, "rng.python.internal")
    gauss_next = python_state.get("gauss_next", ...)
    if gauss_next is not None and type(gauss_next) is not float:
        raise ValueError("rng.python.gauss_next must be a float or None")


def plain_rng_state(state: dict[str, Any]) -> dict[str, Any]:
    """A state in :func:`rng_state`'s plain form from one saved by fwp before checkpoint format
    2, where numpy's state was its legacy tuple (with a uint32 array) and python's was
    ``random.getstate()``'s tuple; a state already plain is returned as it is."""
    result = dict(state)
    if isinstance(state.get("numpy"), tuple):
        result["numpy"] = _plain_numpy_state(state["numpy"])
    if isinstance(state.get("python"), tuple):
        result["python"] = _plain_python_state(state["python"])
    return result


def _plain_numpy_state(legacy: tuple[Any, ...]) -> dict[str, Any]:
    kind, key, pos, has_gauss, cached_gaussian = legacy
    return {
        "bit_generator": str(kind),
        "key": [int(word) for word in key],
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "cached_gaussian": float(cached_gaussian),
    }


def _plain_python_state(legacy: tuple[Any, ...]) -> dict[str, Any]:
    version, internal, gauss_next = legacy
    return {
        "version": int(version),
        "internal": [int(word) for word in internal],
        "gauss_next": None if gauss_next is None else float(gauss_next),
    }


def _check_byte_tensor(value: object, where: str) -> None:
    if not (isinstance(value, torch.Tensor) and value.dtype == torch.uint8 and value.dim() == 1):
        raise ValueError(f"{where} must be a 1-D uint8 tensor")


def _check_int(value: object, low: int, high: int, where: str) -> None:
    if type(value) is not int or not low <= value <= high:
        raise ValueError(f"{where} must be an integer in [{low}, {high}]")


def _check_words(value: object, count: int, where: str) -> None:
    if not (
        isinstance(value, list)
        and len(value) == count
        and all(type(word) is int and 0 <= word < 2**32 for word in value)
    ):
        raise ValueError(f"{where} must be a list of {count} integers in [0, 2**32)")
