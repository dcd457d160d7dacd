"""Distances between feature sets, in float64.

- FID: the Fréchet distance between Gaussians fitted to the two feature sets (Heusel et al., 2017).
- KID: the unbiased estimate of the squared MMD with the cubic polynomial kernel
  ``k(x, y) = (x.y / d + 1) ** 3``, averaged over random subsets (Bińkowski et al., ICLR 2018).
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg
import torch
from torch import Tensor

from fwp.gan.runtime import pick_device

__all__ = ["frechet_distance", "kid"]


def _trace_sqrt_product_eigh(cov1: np.ndarray, cov2: np.ndarray) -> float:
    """``tr(sqrtm(cov1 @ cov2))`` for symmetric PSD inputs, via two symmetric eigenproblems.

    The eigenvalues of ``cov1 @ cov2`` are those of ``S cov2 S`` with ``S = cov1^(1/2)``, which
    is symmetric PSD, so the trace of the square root is the sum of the square roots of its
    eigenvalues (clipped at 0).
    """
    c1, c2 = torch.from_numpy(cov1), torch.from_numpy(cov2)
    w, v = torch.linalg.eigh((c1 + c1.T) / 2)
    root = (v * w.clamp_min(0).sqrt()) @ v.T
    middle = root @ c2 @ root
    lam = torch.linalg.eigvalsh((middle + middle.T) / 2)
    return float(lam.clamp_min(0).sqrt().sum())


def frechet_distance(
    mu1: np.ndarray,
    cov1: np.ndarray,
    mu2: np.ndarray,
    cov2: np.ndarray,
    eps: float = 1e-6,
    *,
    method: str = "sqrtm",
) -> float:
    """Fréchet distance between N(mu1, cov1) and N(mu2, cov2).

    ``|mu1 - mu2|^2 + tr(cov1) + tr(cov2) - 2 tr(sqrtm(cov1 @ cov2))``, in float64.

    ``method="sqrtm"`` (default, pytorch-fid's algorithm): ``scipy.linalg.sqrtm``; if the square
    root is not finite (singular product), ``eps * I`` is added to both covariances; a complex
    result is accepted only if its diagonal's imaginary part is negligible (``|imag| <= 1e-3``).
    ``method="eigh"``: the same trace from two symmetric eigendecompositions (exact for PSD
    covariances, no complex arithmetic, several times faster on a CPU at D = 2048).

    Args:
        mu1, mu2: ``(D,)``.
        cov1, cov2: ``(D, D)``, symmetric positive semi-definite.
    """
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    cov1, cov2 = np.atleast_2d(cov1).astype(np.float64), np.atleast_2d(cov2).astype(np.float64)
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or cov1.shape != (d, d) or cov2.shape != (d, d):
        raise ValueError(
            f"shapes must be mu (D,), cov (D, D); got {mu1.shape}, {cov1.shape}, {mu2.shape}, "
            f"{cov2.shape}"
        )
    diff = mu1 - mu2
    if method == "eigh":
        tr_covmean = _trace_sqrt_product_eigh(cov1, cov2)
    elif method == "sqrtm":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
            covmean = scipy.linalg.sqrtm(cov1 @ cov2)
            if not np.isfinite(covmean).all():
                warnings.warn(
                    f"FID: singular covariance product; adding {eps:g} * I to both covariances",
                    RuntimeWarning,
                    stacklevel=2,
                )
                offset = np.eye(d) * eps
                covmean = scipy.linalg.sqrtm((cov1 + offset) @ (cov2 + offset))
        if np.iscomplexobj(covmean):
            worst = float(np.max(np.abs(np.diagonal(covmean).imag)))
            if worst > 1e-3:
                raise ValueError(f"FID: matrix square root has an imaginary component {worst:g}")
            covmean = covmean.real
        tr_covmean = float(np.trace(covmean))
    else:
        raise ValueError(f"method must be 'sqrtm' or 'eigh', got {method!r}")
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * tr_covmean)


def _mmd2_unbiased(kxx: Tensor, kyy: Tensor, kxy: Tensor) -> Tensor:
    """Unbiased MMD^2 from kernel matrices ``(m, m)``, ``(n, n)``, ``(m, n)``."""
    m, n = kxx.shape[0], kyy.shape[0]
    sxx = (kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))
    syy = (kyy.sum() - kyy.diagonal().sum()) / (n * (n - 1))
    return sxx + syy - 2.0 * kxy.mean()


def kid(
    features_real: np.ndarray | Tensor,
    features_fake: np.ndarray | Tensor,
    num_subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
    *,
    device: str | torch.device | None = "cpu",
) -> tuple[float, float]:
    """Kernel Inception Distance (Bińkowski et al., 2018).

    The unbiased estimate of MMD^2 with ``k(x, y) = (x.y / D + 1) ** 3``, computed on
    ``num_subsets`` pairs of random subsets (without replacement within a subset) of
    ``subset_size`` rows each, clipped to the smaller of the two set sizes. Float64 throughout.

    Args:
        features_real: ``(M, D)``, ``M >= 2``.
        features_fake: ``(N, D)``, ``N >= 2``.

    Returns:
        ``(mean, std)`` over the subsets (``std`` with ``ddof=1``; 0 for one subset).
    """
    dev = pick_device(str(device or "auto"))
    x = torch.as_tensor(np.asarray(features_real), dtype=torch.float64, device=dev)
    y = torch.as_tensor(np.asarray(features_fake), dtype=torch.float64, device=dev)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"features must be (M, D) and (N, D), got {x.shape} and {y.shape}")
    if num_subsets < 1:
        raise ValueError(f"num_subsets must be >= 1, got {num_subsets}")
    m, n, dim = x.shape[0], y.shape[0], x.shape[1]
    size = min(subset_size, m, n)
    if size < 2:
        raise ValueError(f"KID needs at least 2 rows on each side, got {m} and {n}")

    def kernel(a: Tensor, b: Tensor) -> Tensor:
        return (a @ b.T / dim + 1.0) ** 3

    rng = np.random.default_rng(seed)
    picks = [
        (
            torch.as_tensor(rng.choice(m, size, replace=False), device=dev),
            torch.as_tensor(rng.choice(n, size, replace=False), device=dev),
        )
        for _ in range(num_subsets)
    ]
    # Whole Gram matrices once when that is cheaper than per-subset ones and fits in ~400 MB.
    whole = m * m + n * n + m * n
    if whole <= 3 * num_subsets * size * size and whole <= 50_000_000:
        kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
        values = [
            _mmd2_unbiased(
                kxx.index_select(0, i).index_select(1, i),
                kyy.index_select(0, j).index_select(1, j),
                kxy.index_select(0, i).index_select(1, j),
            )
            for i, j in picks
        ]
    else:
        values = []
        for i, j in picks:
            a, b = x[i], y[j]
            values.append(_mmd2_unbiased(kernel(a, a), kernel(b, b), kernel(a, b)))
    est = torch.stack(values).cpu().numpy()
    std = float(est.std(ddof=1)) if num_subsets > 1 else 0.0
    return float(est.mean()), std
