"""The refiner's architectures and outputs, and the paper's FPA/U-Net parameter count."""

import pytest
import torch

from fwp.painters import (
    REFINER_ARCHITECTURES,
    REFINER_OUTPUTS,
    Generator,
    Painter,
    UNetRefiner,
    count_parameters,
    painter_preset,
)


def test_paper_fpa_unet_has_the_official_parameter_count():
    # the official LSTMDeltaTimeSplitLatentGeneratorV2Unet at the paper's configuration with
    # max_unet_dim 4: painter and U-Net together
    refiner = UNetRefiner(channels=3, base_channels=64, depth=2, architecture="official")
    generator = Generator(painter_preset("paper"), refiner)
    assert count_parameters(generator) == 14_423_366
    assert count_parameters(refiner) == 14_423_366 - count_parameters(
        Painter(painter_preset("paper"))
    )


@pytest.mark.parametrize("output", REFINER_OUTPUTS)
@pytest.mark.parametrize("architecture", REFINER_ARCHITECTURES)
def test_shapes_range_and_gradients(architecture, output):
    torch.manual_seed(0)
    refiner = UNetRefiner(
        channels=3, base_channels=8, depth=2, architecture=architecture, output=output
    )
    if output == "residual":  # the head starts at zero: move it so that gradients reach all
        torch.nn.init.normal_(refiner.head.weight, std=0.1)
    images = (torch.rand(2, 3, 16, 12) * 1.8 - 0.9).requires_grad_()
    refined = refiner(images)
    assert refined.shape == (2, 3, 16, 12)
    assert refined.abs().max() <= 1.0
    (refined * torch.linspace(-1, 1, refined.numel()).view_as(refined)).sum().backward()
    for name, parameter in refiner.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name
    assert images.grad is not None and images.grad.abs().sum() > 0


@pytest.mark.parametrize("architecture", REFINER_ARCHITECTURES)
def test_residual_output_starts_as_identity(architecture):
    torch.manual_seed(0)
    refiner = UNetRefiner(channels=1, base_channels=8, depth=1, architecture=architecture)
    images = torch.rand(2, 1, 8, 8) * 1.8 - 0.9
    torch.testing.assert_close(refiner(images), images, rtol=1e-5, atol=1e-5)


def test_direct_output_reads_the_features_only():
    torch.manual_seed(0)
    refiner = UNetRefiner(channels=3, base_channels=8, depth=1, output="direct")
    images = torch.rand(2, 3, 8, 8) * 1.8 - 0.9
    refined = refiner(images)
    assert not torch.allclose(refined, images, atol=0.05)
    torch.nn.init.zeros_(refiner.head.weight)
    torch.nn.init.zeros_(refiner.head.bias)
    assert torch.equal(refiner(images), torch.zeros_like(images))


def test_official_levels_and_default_unchanged():
    official = UNetRefiner(base_channels=8, depth=2, architecture="official")
    assert official.unet is not None and len(official.unet.down) == 3
    compact = UNetRefiner()
    assert compact.unet is None and compact.output == "residual" and len(compact.down) == 3


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"architecture": "ddpm"}, r"architecture must be one of \('compact', 'official'\)"),
        ({"output": "clamp"}, r"output must be one of \('residual', 'direct'\)"),
        ({"depth": 0}, "depth must be at least 1"),
    ],
)
def test_invalid_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        UNetRefiner(**options)


def test_official_refiner_rejects_indivisible_sizes():
    with pytest.raises(ValueError, match="divisible by 4"):
        UNetRefiner(base_channels=8, depth=2, architecture="official")(torch.zeros(1, 3, 10, 10))
