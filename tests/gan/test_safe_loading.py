"""Files fwp reads back are data, never code: the dataset cache is read with
``torch.load(weights_only=True)``, FID statistics with ``numpy.load(allow_pickle=False)`` and
Inception weights with ``torch.load(weights_only=True)``.

Each test plants a pickle whose unpickling creates a marker file, where fwp will read it; an
unsafe load would create the marker, so these tests fail if a loader is switched to unpickling.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from fwp_test_utils import random_inception_weights
from PIL import Image

from fwp.gan.data import load_images
from fwp.gan.metrics import (
    FeatureStats,
    InceptionFeatures,
    InceptionWeightsError,
    load_stats,
    reference_stats,
    reference_stats_path,
    save_stats,
)


class Payload:
    """Unpickling this object creates (opens for writing) ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "unpickled-code-ran"


def _folder(path: Path, count: int = 3, side: int = 10) -> Path:
    path.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(
            path / f"{i}.png"
        )
    return path


def test_the_payload_runs_when_unpickled(tmp_path: Path, marker: Path) -> None:
    """The check that the other tests' payload really is code that runs on an unsafe load."""
    pickle.loads(pickle.dumps(Payload(marker)))
    assert marker.exists()


# ------------------------------------------------------------------------------ dataset cache


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_data_cache_with_a_pickled_object_is_refused_and_rebuilt(
    tmp_path: Path, marker: Path, writer: str
) -> None:
    folder = _folder(tmp_path / "imgs")
    cache = tmp_path / "cache"
    first = load_images(str(folder), (8, 8), cache_dir=cache, progress=False)
    (path,) = (cache / "datasets").glob("*.pt")
    identity = torch.load(path, weights_only=True)["identity"]
    evil = {"identity": identity, "images": Payload(marker), "gray_as_rgb": False}
    if writer == "torch.save":
        torch.save(evil, path)
    else:
        with open(path, "wb") as handle:
            pickle.dump(evil, handle, protocol=2)

    refused = r"ignoring unreadable data cache .*never unpickles objects\); rebuilding it"
    with pytest.warns(UserWarning, match=refused):
        again = load_images(str(folder), (8, 8), cache_dir=cache, progress=False)
    assert not marker.exists()
    assert torch.equal(again, first)
    rebuilt = torch.load(path, weights_only=True)  # the planted file was replaced by plain data
    assert rebuilt["identity"] == identity and torch.equal(rebuilt["images"], first)


# ------------------------------------------------------------------------------ FID statistics


def _valid_arrays(dim: int = 4) -> dict[str, np.ndarray]:
    return {
        "version": np.int64(1),
        "mean": np.zeros(dim),
        "cov": np.eye(dim),
        "features": np.zeros((3, dim), dtype=np.float32),
        "num_images": np.int64(3),
        "weights_origin": np.str_("w"),
    }


@pytest.mark.parametrize("field", ["version", "weights_origin", "features"])
def test_stats_field_holding_a_pickled_object_is_refused(
    tmp_path: Path, marker: Path, field: str
) -> None:
    arrays = _valid_arrays()
    arrays[field] = np.array([Payload(marker)], dtype=object)
    path = tmp_path / "evil.npz"
    np.savez(path, **arrays)  # object arrays are pickled into the file
    with pytest.raises(ValueError, match=f"field '{field}' holds a pickled Python object"):
        load_stats(path)
    assert not marker.exists()


def test_stats_file_that_is_a_pickle_is_refused(tmp_path: Path, marker: Path) -> None:
    path = tmp_path / "evil.npz"
    with open(path, "wb") as handle:
        pickle.dump(Payload(marker), handle)
    with pytest.raises(ValueError, match=r"not an \.npz statistics file"):
        load_stats(path)
    assert not marker.exists()


def test_stats_file_with_wrong_contents_gets_a_clear_error(tmp_path: Path) -> None:
    arrays = _valid_arrays()
    del arrays["cov"]
    np.savez(tmp_path / "partial.npz", **arrays)
    with pytest.raises(ValueError, match=r"not an fwp statistics file: it lacks \['cov'\]"):
        load_stats(tmp_path / "partial.npz")
    arrays = _valid_arrays()
    arrays["cov"] = np.eye(5)
    np.savez(tmp_path / "shapes.npz", **arrays)
    with pytest.raises(ValueError, match=r"expected \(D,\), \(D, D\), \(M, D\)"):
        load_stats(tmp_path / "shapes.npz")


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> InceptionFeatures:
    weights = random_inception_weights(tmp_path_factory.mktemp("weights") / "random.pth")
    return InceptionFeatures(weights, device="cpu")


def test_reference_stats_cache_with_a_pickled_object_is_rebuilt(
    tmp_path: Path, marker: Path, model: InceptionFeatures
) -> None:
    folder = _folder(tmp_path / "real", count=2)
    cache = tmp_path / "cache"
    path = reference_stats_path(str(folder), (8, 8), 3, model.weights_origin, cache)
    arrays = _valid_arrays()
    arrays["weights_origin"] = np.array([Payload(marker)], dtype=object)
    path.parent.mkdir(parents=True)
    np.savez(path, **arrays)
    with pytest.warns(UserWarning, match="ignoring unreadable FID stats"):
        stats = reference_stats(str(folder), (8, 8), model=model, cache_dir=cache, progress=False)
    assert not marker.exists()
    assert stats.num_images == 2 and stats.weights_origin == model.weights_origin
    assert load_stats(path).num_images == 2  # replaced by a file of plain arrays


def test_saved_stats_hold_no_pickled_object(tmp_path: Path) -> None:
    stats = FeatureStats.from_features(np.random.default_rng(0).random((5, 3)), "origin")
    save_stats(stats, tmp_path / "s.npz")
    with np.load(tmp_path / "s.npz", allow_pickle=False) as data:
        assert all(data[name].dtype != object for name in data.files)


# ------------------------------------------------------------------------------ Inception weights


def test_inception_weights_with_a_pickled_object_are_refused(tmp_path: Path, marker: Path) -> None:
    path = tmp_path / "evil.pth"
    torch.save({"Conv2d_1a_3x3.conv.weight": Payload(marker)}, path)
    with pytest.raises(InceptionWeightsError, match="cannot read"):
        InceptionFeatures(path, device="cpu")
    assert not marker.exists()
