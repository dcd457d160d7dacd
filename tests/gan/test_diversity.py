"""Near-duplicate samples (fwp.gan.metrics.diversity): the fast distance matrix equals the plain
pairwise definition, the count is exact on constructed sets, real emoji have (almost) no
near-duplicates while a collapsed set is all near-duplicates, and ``fwp fid`` reports them."""

from __future__ import annotations

import json
import math

import pytest
import torch
from click.testing import CliRunner
from einops import rearrange
from fwp_test_utils import random_inception_weights
from PIL import Image

from fwp.cli.fid_cmd import fid
from fwp.gan.data import load_images
from fwp.gan.metrics import (
    NEAR_DUPLICATE_RMS,
    near_duplicates,
    pairwise_rms,
)
from fwp.gan.metrics.diversity import pairwise_rms_reference


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_the_distance_matrix_equals_the_pairwise_definition(dtype):
    g = torch.Generator().manual_seed(0)
    if dtype == torch.uint8:
        images = torch.randint(0, 256, (7, 3, 5, 4), generator=g, dtype=torch.uint8)
    else:
        images = torch.rand(7, 1, 6, 6, generator=g) * 2 - 1
    fast, reference = pairwise_rms(images), pairwise_rms_reference(images)
    torch.testing.assert_close(fast, reference, rtol=1e-10, atol=1e-10)
    assert torch.equal(fast, fast.T) and torch.all(fast.diagonal() == 0)


def test_the_rms_difference_is_on_the_unit_pixel_scale():
    black = torch.zeros(1, 3, 4, 4, dtype=torch.uint8)
    white = torch.full((1, 3, 4, 4), 255, dtype=torch.uint8)
    assert pairwise_rms(torch.cat([black, white]))[0, 1].item() == pytest.approx(1.0)
    # float images in [-1, 1]: -1 is black, 1 white; half the pixels differ by 1 -> sqrt(0.5)
    a = -torch.ones(1, 1, 2, 2)
    b = a.clone()
    b[0, 0, 0] = 1.0
    assert pairwise_rms(torch.cat([a, b]))[0, 1].item() == pytest.approx(math.sqrt(0.5))


def test_near_duplicate_pairs_are_counted_exactly():
    g = torch.Generator().manual_seed(1)
    distinct = torch.rand(6, 3, 8, 8, generator=g) * 2 - 1  # pairwise RMS about 0.4
    copies = distinct[:1].repeat(3, 1, 1, 1) + 0.01 * torch.randn(3, 3, 8, 8, generator=g)
    result = near_duplicates(torch.cat([distinct, copies]))
    # image 0 and its three noisy copies: 4 images, 6 pairs among 9 * 8 / 2 = 36
    assert (result.pairs, result.images) == (6, 9)
    assert result.fraction == pytest.approx(6 / 36)
    assert result.threshold == NEAR_DUPLICATE_RMS
    assert "6 of 36 pairs (16.67%) among 9 samples" in result.describe()
    assert near_duplicates(distinct).pairs == 0


def test_real_emoji_have_almost_no_near_duplicates_and_a_collapsed_set_is_all_duplicates():
    """64 emoji drawn at random (32x32): at most 4 of the 2,016 pairs (skin-tone variants of one
    emoji come close; this draw has 2); 64 copies of 4 emoji with small noise: every pair within
    a copy group and none across."""
    emoji = load_images("emoji", (32, 32), 3, progress=False)
    picked = emoji[torch.randperm(emoji.shape[0], generator=torch.Generator().manual_seed(0))[:64]]
    assert near_duplicates(picked).pairs <= 4

    g = torch.Generator().manual_seed(2)
    modes = picked[:4].float().repeat(16, 1, 1, 1)
    collapsed = (modes + 3 * torch.randn(modes.shape, generator=g)).clamp(0, 255).to(torch.uint8)
    result = near_duplicates(collapsed)
    assert result.pairs == 4 * (16 * 15 // 2)  # each mode's 16 copies, and nothing across modes


def test_bad_inputs_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="at least 2 images"):
        near_duplicates(torch.zeros(1, 3, 4, 4))
    with pytest.raises(ValueError, match="must be positive"):
        near_duplicates(torch.zeros(2, 3, 4, 4), threshold=0.0)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        pairwise_rms(torch.zeros(2, 4, 4))


def test_fwp_fid_reports_the_near_duplicates_of_an_image_folder(tmp_path, monkeypatch):
    """``fwp fid --real --fake`` on a folder holding one emoji five times and three others:
    10 near-duplicate pairs of 28, in the text and the JSON output (random Inception weights)."""
    monkeypatch.setenv("FWP_CACHE", str(tmp_path / "cache"))
    weights = random_inception_weights(tmp_path / "random_inception.pth")
    emoji = load_images("emoji", (16, 16), 3, limit=40, progress=False)
    folder = tmp_path / "fake"
    folder.mkdir()
    for i, index in enumerate([0, 0, 0, 0, 0, 10, 20, 30]):
        pixels = rearrange(emoji[index], "c h w -> h w c").numpy()
        Image.fromarray(pixels).save(folder / f"{i}.png")
    args = ["--real", "emoji", "--fake", str(folder), "--size", "16", "--limit", "40"]
    args += ["--inception-weights", str(weights), "--device", "cpu", "--quiet"]
    args += ["--fid-method", "eigh"]
    result = CliRunner().invoke(fid, args)
    assert result.exit_code == 0, result.output
    assert "near-duplicates: 10 of 28 pairs (35.71%) among 8 samples" in result.output
    as_json = CliRunner().invoke(fid, [*args, "--json"])
    assert as_json.exit_code == 0, as_json.output
    found = json.loads(as_json.output.strip().splitlines()[-1])["near_duplicates"]
    assert found["pairs"] == 10 and found["images"] == 8
    looser = CliRunner().invoke(fid, [*args, "--json", "--near-duplicate-rms", "1.01"])
    assert json.loads(looser.output.strip().splitlines()[-1])["near_duplicates"]["pairs"] == 28
    refused = CliRunner().invoke(fid, [*args, "--near-duplicate-rms", "0"])
    assert refused.exit_code == 2 and "--near-duplicate-rms" in refused.output
