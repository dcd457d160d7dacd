"""Tests for the FastGAN-style discriminator (fwp.gan.networks.discriminator)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from fwp.gan.networks.discriminator import (
    DiscriminatorOutput,
    LightweightDiscriminator,
    check_discriminator_size,
    with_minibatch_std,
)

SMALL = {"base_channels": 16, "max_channels": 64}


def _images(batch: int, size: tuple[int, int], channels: int = 3, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, channels, *size, generator=g) * 2 - 1


@pytest.mark.parametrize("size", [(16, 16), (32, 32), (64, 64), (16, 32), (64, 16)])
def test_output_shapes(size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    d = LightweightDiscriminator(size, **SMALL)
    out = d(_images(3, size))
    assert isinstance(out, DiscriminatorOutput)
    assert out.logits.shape == (3,)
    assert out.small_logits.shape == (3,)
    assert out.reconstruction_loss is None
    assert torch.isfinite(out.logits).all() and torch.isfinite(out.small_logits).all()


def test_default_widths_build_at_64() -> None:
    d = LightweightDiscriminator((64, 64))
    n = sum(p.numel() for p in d.parameters())
    assert 1_000_000 < n < 10_000_000
    out = d(_images(2, (64, 64)), reconstruct=True)
    assert out.logits.shape == (2,)
    assert out.reconstruction_loss is not None and out.reconstruction_loss.dim() == 0


@pytest.mark.parametrize("channels", [1, 3])
def test_channels(channels: int) -> None:
    d = LightweightDiscriminator((16, 16), channels=channels, **SMALL)
    out = d(_images(2, (16, 16), channels), reconstruct=True)
    assert out.logits.shape == (2,)
    assert out.reconstruction_loss is not None


@pytest.mark.parametrize("size", [(16, 16), (32, 32), (64, 64), (32, 16)])
def test_reconstruction_loss_and_decoder_gradients(size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    d = LightweightDiscriminator(size, **SMALL)
    out = d(_images(4, size), reconstruct=True)
    loss = out.reconstruction_loss
    assert loss is not None and loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    for name, p in [*d.decoder.named_parameters(), *d.part_decoder.named_parameters()]:
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    # The encoder is trained by the reconstruction too (the point of the self-supervision).
    assert d.stem[0].weight.grad is not None and d.stem[0].weight.grad.abs().sum() > 0


def test_logits_reach_every_non_decoder_parameter_and_the_input() -> None:
    torch.manual_seed(0)
    d = LightweightDiscriminator((32, 32), **SMALL)
    images = _images(2, (32, 32)).requires_grad_()
    out = d(images)
    (out.logits.sum() + out.small_logits.sum()).backward()
    for name, p in d.named_parameters():
        if name.startswith(("decoder.", "part_decoder.")):
            assert p.grad is None, name
        else:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert images.grad is not None and images.grad.abs().sum() > 0


def test_reconstruction_loss_is_finite_for_constant_images() -> None:
    d = LightweightDiscriminator((16, 16), **SMALL)
    out = d(torch.zeros(2, 3, 16, 16), reconstruct=True)
    assert out.reconstruction_loss is not None and torch.isfinite(out.reconstruction_loss)


def test_channels_last_matches_contiguous() -> None:
    torch.manual_seed(0)
    d = LightweightDiscriminator((32, 32), **SMALL)
    images = _images(2, (32, 32))
    ref = d(images)
    d_cl = d.to(memory_format=torch.channels_last)
    out = d_cl(images.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out.logits, ref.logits, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out.small_logits, ref.small_logits, atol=1e-5, rtol=1e-4)


def test_compiles_without_graph_breaks() -> None:
    d = LightweightDiscriminator((16, 16), **SMALL)
    compiled = torch.compile(d, backend="eager", fullgraph=True)
    out = compiled(_images(2, (16, 16)), reconstruct=True)
    assert out.logits.shape == (2,)
    assert out.reconstruction_loss is not None


@pytest.mark.parametrize(
    "size",
    [(48, 48), (8, 8), (2048, 2048), (64, 48), (0, 0), (-16, -16), (16.0, 16.0), (True, True)],
)
def test_size_check_names_the_fix(size: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match=r"power of two between 16 and 1024.*--size"):
        check_discriminator_size(size)
    with pytest.raises(ValueError, match="power of two"):
        LightweightDiscriminator(size)


def test_size_check_message_example() -> None:
    with pytest.raises(ValueError, match=r"^image size 48x48 is not supported by the discrim"):
        check_discriminator_size((48, 48))


@pytest.mark.parametrize("size", [(64,), 64, (16, 16, 16)])
def test_size_check_rejects_non_pairs(size: object) -> None:
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        check_discriminator_size(size)  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [(16, 16), (1024, 1024), (16, 1024), (64, 32)])
def test_size_check_accepts(size: tuple[int, int]) -> None:
    check_discriminator_size(size)


def test_wrong_image_shape_is_rejected() -> None:
    d = LightweightDiscriminator((16, 16), **SMALL)
    with pytest.raises(ValueError, match=r"\(B, 3, 16, 16\)"):
        d(torch.zeros(2, 3, 32, 32))
    with pytest.raises(ValueError, match=r"\(B, 3, 16, 16\)"):
        d(torch.zeros(2, 1, 16, 16))
    with pytest.raises(ValueError, match=r"\(B, 3, 16, 16\)"):
        d(torch.zeros(3, 16, 16))


def test_separates_noise_from_constant_images() -> None:
    """50 Adam steps of hinge loss suffice to tell 16x16 noise from constant images."""
    torch.manual_seed(0)
    d = LightweightDiscriminator((16, 16), base_channels=32, max_channels=128)
    opt = torch.optim.Adam(d.parameters(), lr=1e-3, betas=(0.5, 0.999))

    def sample(batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        noise = torch.rand(batch, 3, 16, 16) * 2 - 1
        constant = (torch.rand(batch, 3, 1, 1) * 2 - 1).expand(batch, 3, 16, 16)
        return noise, constant

    for _ in range(50):
        real, fake = sample(16)
        out_real, out_fake = d(real, reconstruct=True), d(fake)
        assert out_real.reconstruction_loss is not None
        loss = (
            F.relu(1 - out_real.logits).mean()
            + F.relu(1 + out_fake.logits).mean()
            + F.relu(1 - out_real.small_logits).mean()
            + F.relu(1 + out_fake.small_logits).mean()
            + out_real.reconstruction_loss
        )
        opt.zero_grad()
        loss.backward()
        opt.step()

    with torch.no_grad():
        real, fake = sample(128)
        out_real, out_fake = d(real), d(fake)
    for real_logits, fake_logits in [
        (out_real.logits, out_fake.logits),
        (out_real.small_logits, out_fake.small_logits),
    ]:
        accuracy = ((real_logits > 0).float().mean() + (fake_logits < 0).float().mean()) / 2
        assert accuracy >= 0.95


@pytest.mark.parametrize("batch, group", [(8, 4), (6, 6)])  # 6 is not divisible by 4: one group
def test_minibatch_std_is_the_group_standard_deviation(batch: int, group: int) -> None:
    x = torch.randn(batch, 5, 3, 2, generator=torch.Generator().manual_seed(0))
    out = with_minibatch_std(x)
    assert out.shape == (batch, 6, 3, 2)
    torch.testing.assert_close(out[:, :5], x)
    for start in range(0, batch, group):
        members = x[start : start + group]
        expected = members.std(dim=0, unbiased=False).mean()
        torch.testing.assert_close(out[start : start + group, 5], expected.expand(group, 3, 2))


def test_minibatch_std_sees_diversity() -> None:
    same = torch.ones(4, 2, 2, 2)
    assert with_minibatch_std(same)[:, 2].abs().max() < 1e-3  # sqrt(1e-8) floor
    assert with_minibatch_std(same + torch.randn(4, 2, 2, 2))[:, 2].min() > 0.1


@pytest.mark.parametrize(
    "architecture",
    [{}, {"architecture": "official"}, {"attention_resolutions": (32,), "output_size": 1}],
    ids=["fwp", "official", "fwp-attention-1"],
)
@pytest.mark.parametrize("minibatch_std", [False, True])
@pytest.mark.parametrize(("real_batch", "fake_batch"), [(4, 4), (6, 6), (3, 5)])
def test_score_pair_equals_two_separate_calls(
    minibatch_std, real_batch, fake_batch, architecture
) -> None:
    torch.manual_seed(0)
    d = LightweightDiscriminator((32, 32), minibatch_std=minibatch_std, **SMALL, **architecture)
    real = _images(real_batch, (32, 32), seed=1).requires_grad_()
    fake = _images(fake_batch, (32, 32), seed=2)

    def run(score):
        torch.manual_seed(7)  # the reconstruction's random quarters
        out_real, out_fake = score()
        loss = out_real.logits.sum() + out_fake.small_logits.sum() + out_real.reconstruction_loss
        input_grad, *weight_grads = torch.autograd.grad(loss, [real, *d.parameters()])
        values = [out_real.logits, out_real.small_logits, out_real.reconstruction_loss]
        assert out_fake.reconstruction_loss is None
        return [*values, out_fake.logits, out_fake.small_logits, input_grad, *weight_grads]

    separate = run(lambda: (d(real, reconstruct=True), d(fake)))
    paired = run(lambda: d.score_pair(real, fake))
    for a, b in zip(separate, paired, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)
