"""The official FPA code's discriminator architecture and the attention and head options."""

from __future__ import annotations

import pytest
import torch

from fwp.gan.networks import DISCRIMINATOR_ARCHITECTURES, LightweightDiscriminator

SMALL = {"base_channels": 16, "max_channels": 64}


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _images(batch: int, size: tuple[int, int], channels: int = 3, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, channels, *size, generator=g) * 2 - 1


def test_parameter_counts_of_both_architectures_at_64() -> None:
    # the official discriminator at 64x64 with attn_res_layers [32] and disc_output_size 1
    official = LightweightDiscriminator((64, 64), architecture="official")
    assert _count(official) == 12_326_632
    explicit = LightweightDiscriminator(
        (64, 64), architecture="official", attention_resolutions=(32,), output_size=1
    )
    assert _count(explicit) == 12_326_632
    assert _count(LightweightDiscriminator((64, 64))) == 5_889_384  # fwp's, unchanged
    assert tuple(DISCRIMINATOR_ARCHITECTURES) == ("fwp", "official")


@pytest.mark.parametrize("size", [(16, 16), (32, 32), (64, 64), (32, 16)])
@pytest.mark.parametrize("output_size", [1, 5])
def test_official_shapes(size: tuple[int, int], output_size: int) -> None:
    torch.manual_seed(0)
    d = LightweightDiscriminator(size, architecture="official", output_size=output_size, **SMALL)
    out = d(_images(3, size), reconstruct=True)
    assert out.logits.shape == (3,) and out.small_logits.shape == (3,)
    assert out.reconstruction_loss is not None and out.reconstruction_loss.dim() == 0
    assert torch.isfinite(out.logits).all() and torch.isfinite(out.reconstruction_loss)
    assert d.part_decoder is None  # a quarter is reconstructed from 512 pixels on


def test_official_quarter_decoder_at_512() -> None:
    torch.manual_seed(0)
    d = LightweightDiscriminator((512, 512), architecture="official", base_channels=8)
    assert d.part_decoder is not None and len(d.stem) == 2  # one stride-2 conv to 256
    out = d(_images(2, (512, 512)), reconstruct=True)
    assert out.logits.shape == (2,)
    assert out.reconstruction_loss is not None
    out.reconstruction_loss.backward()
    for name, p in d.part_decoder.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_official_gradients_reach_every_parameter_and_the_input() -> None:
    torch.manual_seed(0)
    d = LightweightDiscriminator((32, 32), architecture="official", **SMALL)
    images = _images(2, (32, 32)).requires_grad_()
    out = d(images)
    (out.logits.sum() + out.small_logits.sum()).backward()
    for name, p in d.named_parameters():
        if name.startswith("decoder."):
            assert p.grad is None, name
        else:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert images.grad is not None and images.grad.abs().sum() > 0
    d.zero_grad()
    loss = d(_images(2, (32, 32)), reconstruct=True).reconstruction_loss
    assert loss is not None
    loss.backward()
    for name, p in d.decoder.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_attention_sits_before_the_block_of_its_resolution() -> None:
    plain = LightweightDiscriminator((64, 64), **SMALL)
    attended = LightweightDiscriminator((64, 64), attention_resolutions=(32, 128), **SMALL)
    # the block reading 32x32 features gains attention; no block reads 128 (unused)
    assert [isinstance(b, torch.nn.Sequential) for b in attended.blocks] == [False, True, False]
    assert _count(attended) > _count(plain)
    none = LightweightDiscriminator((64, 64), architecture="official", attention_resolutions=())
    assert _count(none) < 12_326_632


def test_official_minibatch_std_adds_one_head_input() -> None:
    torch.manual_seed(0)
    d = LightweightDiscriminator((32, 32), architecture="official", minibatch_std=True, **SMALL)
    assert d(_images(4, (32, 32))).logits.shape == (4,)


@pytest.mark.slow
def test_official_compiles_without_graph_breaks() -> None:
    d = LightweightDiscriminator((16, 16), architecture="official", **SMALL)
    compiled = torch.compile(d, backend="eager", fullgraph=True)
    out = compiled(_images(2, (16, 16)), reconstruct=True)
    assert out.logits.shape == (2,)
    assert out.reconstruction_loss is not None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"architecture": "fastgan"}, r"architecture must be one of \('fwp', 'official'\)"),
        ({"attention_resolutions": (8,)}, r"attention_resolutions must hold powers of two >= 16"),
        ({"attention_resolutions": (24,)}, "powers of two"),
        ({"output_size": 3}, r"output_size must be one of \(1, 5\)"),
    ],
)
def test_invalid_options_are_refused(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LightweightDiscriminator((32, 32), **options)
