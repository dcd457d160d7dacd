"""The FID Inception network: pytorch-fid's ``InceptionV3`` (the TensorFlow
``inception-2015-12-05`` graph as ported by pytorch-fid) holding local weights, mapping images to
the 2048-d final average-pool ("pool3") features.

Images are scaled to ``[0, 1]``, bilinearly resized to 299x299 and mapped to ``[-1, 1]`` exactly
as pytorch-fid does, in full float32 (TF32 off on GPUs).
"""

from __future__ import annotations

import contextlib
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from einops import rearrange, repeat
from torch import Tensor, nn

from fwp.gan.runtime import pick_device

from .weights import (
    FID_WEIGHTS_NAME,
    InceptionWeightsError,
    fid_inception_skeleton,
    find_inception_weights,
)

__all__ = ["FEATURE_DIM", "INCEPTION_SIZE", "InceptionFeatures"]

#: Dimension of the pool3 features.
FEATURE_DIM = 2048
#: Inception input side.
INCEPTION_SIZE = 299


def _load_fid_inception(weights_file: Path) -> nn.Module:
    """pytorch-fid ``InceptionV3`` (2048-d pool output) holding the local weights."""
    from pytorch_fid import inception as pf

    try:
        state = torch.load(weights_file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:  # torch's own message suggests weights_only=False
        raise InceptionWeightsError(
            f"cannot read {weights_file} as a state dict of tensors: it is not a torch file, or "
            "it holds pickled Python objects, which fwp never loads. Give pytorch-fid's "
            f"{FID_WEIGHTS_NAME} or a state dict saved from its network."
        ) from err
    except Exception as err:  # truncated, or not a file torch can open
        raise InceptionWeightsError(
            f"cannot read {weights_file} as a state dict ({type(err).__name__}: {err})."
        ) from err
    if not isinstance(state, dict):
        raise InceptionWeightsError(f"{weights_file} holds a {type(state).__name__}, not a dict")
    skeleton = fid_inception_skeleton()
    try:
        result = skeleton.load_state_dict(state, strict=False)
    except RuntimeError as err:  # a key with the wrong shape
        raise InceptionWeightsError(
            f"{weights_file} is not a pytorch-fid FID Inception state dict: {err}"
        ) from err
    missing = set(result.missing_keys) - {"fc.weight", "fc.bias"}
    missing -= {k for k in result.missing_keys if k.endswith("num_batches_tracked")}
    if missing or result.unexpected_keys:
        raise InceptionWeightsError(
            f"{weights_file} is not a pytorch-fid FID Inception state dict: missing "
            f"{sorted(missing)[:5]}, unexpected {sorted(result.unexpected_keys)[:5]}."
        )

    def no_download(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("fwp tried to download Inception weights; this is a bug")

    # InceptionV3(use_fid_inception=True) calls fid_inception_v3(), which downloads; hand it the
    # skeleton loaded above instead, so pytorch-fid's own block assembly and forward are used.
    with (
        _patched(pf, "fid_inception_v3", lambda: skeleton),
        _patched(pf, "load_state_dict_from_url", no_download),
    ):
        model = pf.InceptionV3(
            output_blocks=(pf.InceptionV3.BLOCK_INDEX_BY_DIM[FEATURE_DIM],),
            resize_input=True,
            normalize_input=True,
            requires_grad=False,
            use_fid_inception=True,
        )
    return model.eval()


@contextlib.contextmanager
def _patched(module: Any, name: str, value: Any) -> Iterator[None]:
    old = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, old)


@contextlib.contextmanager
def _no_tf32() -> Iterator[None]:
    """Full fp32 convolutions and matmuls on GPUs (TF32 would shift the features by ~1e-3)."""
    old = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old


class InceptionFeatures(nn.Module):
    """pytorch-fid's FID InceptionV3 with local weights: images -> 2048-d pool3 features.

    Args:
        weights: a weights file (see :func:`find_inception_weights`); ``None`` searches.
        device: where the network runs; ``None`` or ``"auto"``: CUDA if available, else CPU.
        cache_dir: root of fwp's cache (for converted weights); default ``default_cache_dir()``.

    Attributes:
        weights_origin: where the weights came from (recorded in every statistic).
        weights_path: the state-dict file that was loaded.
    """

    def __init__(
        self,
        weights: str | Path | None = None,
        device: str | torch.device | None = None,
        *,
        cache_dir: Path | None = None,
    ) -> None:
        super().__init__()
        self.weights_path, self.weights_origin = find_inception_weights(weights, cache_dir)
        self.net = _load_fid_inception(self.weights_path)
        # channels_last: ~20-40% faster convolutions on CPU (oneDNN), fine on CUDA.
        self.to(pick_device(str(device or "auto")), memory_format=torch.channels_last)
        self.requires_grad_(False)
        self.eval()

    @property
    def device(self) -> torch.device:
        """Where the network's weights are (inputs are moved there)."""
        return next(self.net.parameters()).device

    def train(self, mode: bool = True) -> InceptionFeatures:
        """Always stays in eval mode (batch norm uses its running statistics)."""
        return super().train(False)

    def pool_features(self, x: Tensor) -> Tensor:
        """Features of already preprocessed input.

        Args:
            x: float ``(N, 3, 299, 299)`` in ``[-1, 1]`` (Inception's own input range).

        Returns:
            float32 ``(N, 2048)``.
        """
        x = x.to(self.device, torch.float32).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), _no_tf32():
            for block in self.net.blocks:
                x = block(x)
        return rearrange(x, "n c 1 1 -> n c")

    def forward(self, images: Tensor) -> Tensor:
        """Pool3 features of a batch of images.

        Args:
            images: uint8 ``(N, C, H, W)`` in ``[0, 255]`` or float ``(N, C, H, W)`` in ``[-1, 1]``
                (clamped), ``C`` = 3, or 1 (replicated to 3). Any ``H, W``: resized to 299x299
                bilinearly as pytorch-fid does.

        Returns:
            float32 ``(N, 2048)``.
        """
        if images.ndim != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"images must be (N, 1 or 3, H, W), got {tuple(images.shape)}")
        x = images.to(self.device)
        if x.dtype == torch.uint8:
            x = x.to(torch.float32) / 255.0
        elif x.is_floating_point():
            x = ((x.to(torch.float32) + 1.0) / 2.0).clamp(0.0, 1.0)
        else:
            raise ValueError(f"images must be uint8 or floating point, got {images.dtype}")
        if x.shape[1] == 1:
            x = repeat(x, "n 1 h w -> n c h w", c=3)
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), _no_tf32():
            (pool,) = self.net(x)  # resize to 299 (bilinear), 2x - 1, blocks 0..3
        return rearrange(pool, "n c 1 1 -> n c")
