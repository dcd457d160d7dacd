"""Distances between feature sets, in float64.

- FID: the Fréchet distance between Gaussians fitted to the two feature sets (Heusel et al., 2017).
- KID: the unbiased estimate of the squared MMD with the cubic polynomial kernel
  ``k(x, y) = (x.y / d + 1) ** 3``, averaged over random subsets (Bińkowski et al., ICLR 2018).
- Precision and recall: the share of one set that lies inside the other's k-nearest-neighbour
  balls (Kynkäänniemi et al., NeurIPS 2019); recall falls when a generator covers few modes.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import numpy as np
import scipy.linalg
import torch
from torch import Tensor

from fwp.gan.runtime import pick_device

__all__ = ["frechet_distance", "kid", "precision_recall"]


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


def _feature_pair(
    features_real: np.ndarray | Tensor,
    features_fake: np.ndarray | Tensor,
    device: str | torch.device | None,
) -> tuple[Tensor, Tensor]:
    """Both feature sets as float64 tensors ``(M, D)`` and ``(N, D)`` on ``device``."""
    dev = pick_device(str(device or "auto"))
    x = torch.as_tensor(np.asarray(features_real), dtype=torch.float64, device=dev)
    y = torch.as_tensor(np.asarray(features_fake), dtype=torch.float64, device=dev)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"features must be (M, D) and (N, D), got {x.shape} and {y.shape}")
    return x, y


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
    x, y = _feature_pair(features_real, features_fake, device)
    dev = x.device
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


#: Neighbour count of :func:`precision_recall` (the paper's default).
PRECISION_RECALL_K = 3
_ROWS_PER_CHUNK = 1024  # distance rows computed at once: 1024 x N float64


def _pairwise_chunks(a: Tensor, b: Tensor) -> Iterator[tuple[slice, Tensor]]:
    """Euclidean distances from ``a`` (M, D) to ``b`` (N, D), in row chunks (rows, (m, N))."""
    for start in range(0, a.shape[0], _ROWS_PER_CHUNK):
        rows = slice(start, start + _ROWS_PER_CHUNK)
        yield rows, torch.cdist(a[rows], b)


def neighbour_radii(features: Tensor, k: int) -> Tensor:
    """Distance from each row of ``features`` (N, D) to its k-th nearest other row: (N,).

    A row's distance to itself (0) is the first of its sorted distances, so the k-th neighbour is
    the (k + 1)-th smallest; duplicates of a row count as neighbours at distance 0.
    """
    if not 1 <= k < features.shape[0]:
        raise ValueError(f"k must be in [1, {features.shape[0] - 1}] for {features.shape[0]} rows")
    radii = torch.empty(features.shape[0], dtype=features.dtype, device=features.device)
    for rows, distances in _pairwise_chunks(features, features):
        radii[rows] = distances.kthvalue(k + 1, dim=1).values
    return radii


def share_inside(points: Tensor, centres: Tensor, radii: Tensor) -> float:
    """Share of ``points`` (M, D) within ``radii`` (N,) of at least one of ``centres`` (N, D)."""
    inside = torch.zeros(points.shape[0], dtype=torch.bool, device=points.device)
    for rows, distances in _pairwise_chunks(points, centres):
        inside[rows] = (distances <= radii).any(dim=1)
    return float(inside.double().mean())


def precision_recall(
    features_real: np.ndarray | Tensor,
    features_fake: np.ndarray | Tensor,
    k: int = PRECISION_RECALL_K,
    *,
    device: str | torch.device | None = "cpu",
) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi, Karras, Laine, Lehtinen & Aila, NeurIPS 2019).

    Each set's manifold is the union of balls around its rows, each ball's radius the distance to
    that row's k-th nearest neighbour in the same set. Precision: the share of generated rows
    inside the real manifold (are the samples realistic?). Recall: the share of real rows inside
    the generated manifold (is the data covered?). A generator that paints a few good pictures
    over and over has high precision and low recall. The paper uses VGG-16 features; fwp uses
    the same Inception features as FID, so values are comparable between fwp runs, not with the
    paper's tables. Float64.

    Args:
        features_real: ``(M, D)``, ``M > k``.
        features_fake: ``(N, D)``, ``N > k``.
        k: neighbours that set each ball's radius (3, as in the paper).

    Returns:
        ``(precision, recall)``, each in [0, 1].
    """
    real, fake = _feature_pair(features_real, features_fake, device)
    precision = share_inside(fake, real, neighbour_radii(real, k))
    recall = share_inside(real, fake, neighbour_radii(fake, k))
    return precision, recall
