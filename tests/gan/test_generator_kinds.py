"""The paper's generators and discriminator through the training configuration: the LightGAN
conv baseline (--generator conv), the official discriminator of the paper preset and the official
FPA/U-Net, at the official parameter counts, and the conv baseline trained with the services."""

from __future__ import annotations

import pytest
import torch
from fwp_test_utils import tiny_config

from fwp.gan.checkpoint import load_generator
from fwp.gan.config import ConfigError, build_config
from fwp.gan.generators import build_generator
from fwp.gan.objectives import build_objective
from fwp.gan.paintings import paint_run
from fwp.gan.trainer import Trainer
from fwp.painters import ConvGenerator, Generator, count_parameters


def _parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_paper_preset_trains_against_the_official_discriminator():
    config = build_config("paper", options={"run.device": "cpu"})
    objective = build_objective(config, build_generator(config), torch.device("cpu"))
    assert objective.discriminator.architecture == "official"
    assert _parameters(objective.discriminator) == 12_326_632


def test_quick_preset_keeps_fwps_smaller_discriminator():
    config = build_config("quick")
    assert (config.discriminator.architecture, config.discriminator.output_size) == ("fwp", 5)
    objective = build_objective(config, build_generator(config), torch.device("cpu"))
    assert objective.discriminator.architecture == "fwp"


def test_paper_refiner_is_the_official_fpa_unet():
    config = build_config("paper", options={"refiner.enabled": True})
    generator = build_generator(config)
    assert isinstance(generator, Generator) and generator.refiner is not None
    assert count_parameters(generator) == 14_423_366


def test_conv_generator_from_the_configuration():
    config = build_config("paper", options={"generator.kind": "conv"})
    generator = build_generator(config)
    assert isinstance(generator, ConvGenerator)
    assert count_parameters(generator) == 20_988_039  # the official LightGAN baseline at 64x64
    quick = build_generator(build_config("quick", assignments=["generator.kind='conv'"]))
    assert quick.config.size == 32 and quick.latent_dim == 64
    assert quick(torch.randn(2, 64)).shape == (2, 3, 32, 32)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"generator__kind": "conv", "refiner__enabled": True}, "takes no refiner"),
        ({"generator__kind": "conv", "data__size": [16, 32]}, "square"),
        ({"generator__kind": "conv", "objective__intermediate_images": 2}, "without refiner"),
        ({"generator__init_from": "somewhere"}, "enable the refiner"),
        (
            {
                "generator__init_from": "somewhere",
                "refiner__enabled": True,
                "refiner__match_loss_weight": 1.0,
            },
            "freeze_painter",
        ),
        ({"discriminator__output_size": 3}, "discriminator.output_size"),
        ({"discriminator__attention_resolutions": [24]}, "discriminator.attention_resolutions"),
        ({"generator__kind": "gan"}, "generator.kind must be one of painter, conv"),
    ],
)
def test_bad_generator_options_are_refused_by_name(options, message):
    with pytest.raises(ConfigError, match=message):
        tiny_config(**options)


@pytest.mark.parametrize(
    ("text", "expected"), [("32", [32]), ("16,32", [16, 32]), ("[16, 32]", [16, 32]), ("", [])]
)
def test_resolution_lists_are_read_from_text(text, expected):
    config = tiny_config(discriminator__attention_resolutions=text)
    assert config.discriminator.attention_resolutions == expected
    with pytest.raises(ConfigError, match="list of integers"):
        tiny_config(discriminator__attention_resolutions="16,x")


def test_conv_generator_trains_with_the_services(tmp_path, tiny_emoji):
    config = tiny_config(
        generator__kind="conv", generator__latent_dim=16, generator__max_channels=16, run__steps=3
    )
    result = Trainer(config, tmp_path / "run", images=tiny_emoji, progress=False).run()
    assert result.step == 3 and all(
        map(torch.isfinite, map(torch.tensor, result.last_losses.values()))
    )
    samples = sorted(p.name for p in (tmp_path / "run" / "samples").iterdir())
    assert samples == ["raw_0000003.png", "samples_0000003.png", "strip_0000003.png"]
    generator, saved = load_generator(tmp_path / "run")
    assert isinstance(generator, ConvGenerator) and saved.generator.kind == "conv"
    torch.testing.assert_close(generator.sample(4, seed=1), generator.sample(4, seed=1))
    paintings = paint_run(tmp_path / "run", num=4, device=torch.device("cpu"))
    assert "painter_grid.png" not in paintings.files
    assert (paintings.folder / "strip.png").is_file()  # a one-step painting
