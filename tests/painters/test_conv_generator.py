"""The convolutional baseline (the Lightweight GAN generator, the official code's ``base``)."""

import pytest
import torch

from fwp.painters import (
    ConvGenerator,
    ConvGeneratorConfig,
    Generator,
    PainterConfig,
    UNetRefiner,
    build_generator,
    count_parameters,
)
from fwp.rules import PaintResult

SMALL = dict(latent_dim=16, max_channels=32)


def test_paper_baseline_has_the_official_parameter_count():
    # the official base generator at 64x64 (latent 256, fmap_max 512, attention at 32)
    generator = ConvGenerator(
        ConvGeneratorConfig(size=64, latent_dim=256, attention_resolutions=(32,))
    )
    assert count_parameters(generator) == 20_988_039
    assert count_parameters(ConvGenerator()) == 20_988_039  # the defaults are the paper's


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize(("size", "attention"), [(16, (8,)), (32, (4, 16)), (128, (32,))])
def test_shapes_range_and_gradients(size, attention, channels):
    torch.manual_seed(0)
    config = ConvGeneratorConfig(
        size=size, channels=channels, attention_resolutions=attention, **SMALL
    )
    generator = ConvGenerator(config)
    images = generator(torch.randn(3, 16))
    assert images.shape == (3, channels, size, size)
    assert images.abs().max() <= 1.0
    (images * torch.linspace(-1, 1, images.numel()).view_as(images)).sum().backward()
    for name, parameter in generator.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
        if name.endswith("to_logit.bias"):
            # the global context's logits go through a softmax over the pixels, which ignores a
            # shift: this bias (kept for the official parameter count) has gradient 0 up to
            # rounding
            assert parameter.grad.abs().max() < 1e-5, name
        else:
            assert parameter.grad.abs().sum() > 0, name


def test_skip_layer_excitation_exists_from_128_pixels():
    assert len(ConvGenerator(ConvGeneratorConfig(size=64, **SMALL)).excitation) == 0
    assert len(ConvGenerator(ConvGeneratorConfig(size=128, **SMALL)).excitation) == 1
    assert len(ConvGenerator(ConvGeneratorConfig(size=256, **SMALL)).excitation) == 2


def test_attention_precedes_the_layer_of_its_resolution():
    config = ConvGeneratorConfig(size=64, attention_resolutions=(8, 32, 64), **SMALL)
    # layer inputs of 2**3 and 2**5 pixels; no layer reads 64 pixels (unused, as officially)
    assert sorted(ConvGenerator(config).attention) == ["3", "5"]
    assert len(ConvGenerator(ConvGeneratorConfig(size=16, **SMALL)).attention) == 0


def test_no_output_activation_is_unbounded():
    torch.manual_seed(0)
    generator = ConvGenerator(ConvGeneratorConfig(size=16, output_activation="none", **SMALL))
    generator.out.weight.data *= 100
    assert generator(torch.randn(4, 16)).abs().max() > 1.0


def test_paint_frames_is_a_one_step_painting():
    torch.manual_seed(0)
    generator = ConvGenerator(ConvGeneratorConfig(size=16, **SMALL)).eval()
    z = torch.randn(2, 16)
    result = generator.paint(z, frames=True)
    assert isinstance(result, PaintResult)
    assert result.updates.shape == result.partials.shape == (1, 2, 3, 16, 16)
    torch.testing.assert_close(result.image, generator(z))
    torch.testing.assert_close(result.updates[0], result.image)
    torch.testing.assert_close(result.partials[-1], result.image)
    torch.testing.assert_close(generator.paint(z), generator(z))


def test_sampling_is_seeded_and_leaves_the_global_rng_alone():
    torch.manual_seed(0)
    generator = ConvGenerator(ConvGeneratorConfig(size=16, **SMALL)).eval()
    # the noise strengths start at zero: the images depend on the latents only
    a = generator.sample(7, batch_size=3, seed=1)
    assert a.shape == (7, 3, 16, 16)
    torch.testing.assert_close(a, generator.sample(7, batch_size=7, seed=1), rtol=1e-5, atol=1e-6)
    assert not torch.allclose(a, generator.sample(7, seed=2))
    for layer in generator.layers:
        layer.net[4].strength.data.fill_(0.5)  # the noise inputs matter
    state = torch.random.get_rng_state()
    noisy = generator.sample(7, batch_size=3, seed=1)
    assert torch.equal(torch.random.get_rng_state(), state)
    torch.testing.assert_close(noisy, generator.sample(7, batch_size=3, seed=1))
    assert not torch.allclose(noisy, a)
    assert generator.sample_latents(5, torch.Generator().manual_seed(0)).shape == (5, 16)
    assert generator.latent_dim == 16


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"size": 48}, "size must be a power of two between 8 and 1024"),
        ({"size": 2048}, "size must be a power of two"),
        ({"channels": 2}, "channels must be 1 or 3"),
        ({"latent_dim": 0}, "latent_dim must be a positive integer"),
        ({"attention_resolutions": (6,)}, r"attention_resolutions must hold powers of two >= 4"),
        ({"output_activation": "sigmoid"}, "output_activation must be one of"),
    ],
)
def test_invalid_configuration_is_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        ConvGenerator(ConvGeneratorConfig(**overrides))


def test_wrong_latent_shape_is_refused():
    with pytest.raises(ValueError, match=r"z must have shape \(B, 16\)"):
        ConvGenerator(ConvGeneratorConfig(size=16, **SMALL))(torch.randn(2, 8))


def test_config_round_trip_and_unknown_keys():
    config = ConvGeneratorConfig(size=32, attention_resolutions=(8, 16), **SMALL)
    values = config.to_dict()
    values["attention_resolutions"] = list(values["attention_resolutions"])  # as from TOML/JSON
    assert ConvGeneratorConfig.from_dict(values) == config
    with pytest.raises(ValueError, match="unknown conv generator options"):
        ConvGeneratorConfig.from_dict({"sise": 32})


def test_build_generator_dispatches_on_the_configuration():
    painter_config = PainterConfig(height=8, width=8, steps=4, latent_dim=8, hidden_size=16)
    assert isinstance(build_generator(painter_config), Generator)
    refined = build_generator(painter_config, UNetRefiner(channels=3, base_channels=8, depth=1))
    assert isinstance(refined, Generator) and refined.refiner is not None
    conv_config = ConvGeneratorConfig(size=16, **SMALL)
    assert isinstance(build_generator(conv_config), ConvGenerator)
    with pytest.raises(ValueError, match="takes no refiner"):
        build_generator(conv_config, UNetRefiner(channels=3, base_channels=8, depth=1))
    with pytest.raises(ValueError, match=r"ConvGeneratorConfig.*PainterConfig.*got dict"):
        build_generator({"size": 16})  # type: ignore[arg-type]
