"""The official FPA code's extra loss terms, against their definitions on small cases: the
intermediate-image loss (--use_intermed_loss N --scale_intermed_loss), the pooled hinge loss it
uses (hinge_loss_bis) and the U-Net match loss (--use_unet_match_loss)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from fwp_test_utils import tiny_config
from torch import nn

from fwp.gan.config import ConfigError
from fwp.gan.generators import build_generator
from fwp.gan.networks.discriminator import DiscriminatorOutput
from fwp.gan.objectives import build_objective
from fwp.gan.objectives.adversarial import match_loss, pooled_hinge_discriminator_loss
from fwp.painters import Painter, painter_preset


def _scanned_matrices(painter: Painter, z: torch.Tensor) -> list[torch.Tensor]:
    """W_t after t = 1..T updates, one rule step at a time (the reference)."""
    K, V, LR = painter.sequences(z)
    W = torch.zeros(
        z.shape[0], painter.config.channels, painter.config.height, painter.config.width
    )
    matrices = []
    for t in range(painter.config.steps):
        W = painter.rule.step(W, K[:, :, t], V[:, :, t], LR[:, :, t])
        matrices.append(W)
    return matrices


@pytest.mark.parametrize("fast_path", [True, False])
def test_paint_stages_are_the_scaled_partial_matrices(fast_path):
    torch.manual_seed(0)
    config = painter_preset(
        "quick", height=8, width=8, steps=6, latent_dim=12, hidden_size=16, fast_path=fast_path
    )
    painter = Painter(config).eval()
    z = torch.randn(2, 12)
    W = _scanned_matrices(painter, z)  # W[t - 1] holds t updates
    stages = painter.paint_stages(z, 3, scale=True)
    # N = 3, T = 6: the official loop keeps step indices j*T//N = 2, 4, i.e. 3 and 5 updates,
    # scaled by N/j = 3 and 1.5, then the final matrix; tanh of each
    expected = torch.stack([torch.tanh(3.0 * W[2]), torch.tanh(1.5 * W[4]), torch.tanh(W[5])])
    torch.testing.assert_close(stages, expected, rtol=1e-5, atol=1e-5)
    unscaled = painter.paint_stages(z, 3, scale=False)
    torch.testing.assert_close(unscaled[0], torch.tanh(W[2]), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(stages[-1], painter(z), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="divides"):
        painter.paint_stages(z, 4)


def test_pooled_hinge_matches_the_official_definition():
    real = DiscriminatorOutput(torch.tensor([2.0, 0.5]), torch.tensor([0.0, 1.5]))
    fake = DiscriminatorOutput(torch.tensor([-2.0, 0.0, 1.0, -0.5]), torch.tensor([0.5, -1, 0, 3]))
    # per head: (sum relu(1 - real) + sum relu(1 + fake)) / (2 + 4)
    main = ((0.0 + 0.5) + (0.0 + 1.0 + 2.0 + 0.5)) / 6
    small = ((1.0 + 0.0) + (1.5 + 0.0 + 1.0 + 4.0)) / 6
    assert pooled_hinge_discriminator_loss(real, fake).item() == pytest.approx(main + small)


class _LinearCritic(nn.Module):
    """A stand-in discriminator: s(x) = w * mean(x) on the main head, 2 w mean(x) on the small."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))

    def score(self, images: torch.Tensor) -> DiscriminatorOutput:
        s = self.w * images.mean(dim=(1, 2, 3))
        return DiscriminatorOutput(s, 2 * s, reconstruction_loss=torch.zeros(()))

    def pair(self, real, fake):
        return self.score(real), self.score(fake)


def test_intermediate_image_losses_match_their_definition():
    torch.manual_seed(0)
    config = tiny_config(objective__intermediate_images=3, objective__diversity_weight=0.0)
    assert config.painter.steps == 6
    generator = build_generator(config)
    objective = build_objective(config, generator, torch.device("cpu"))
    critic = _LinearCritic()
    objective.score, objective.score_pair = critic.score, critic.pair
    z = torch.randn(8, config.painter.latent_dim)
    objective._latents = lambda batch: z
    real = torch.rand(8, 3, 16, 16) * 2 - 1

    with torch.no_grad():
        W = _scanned_matrices(generator.painter, z)
        fakes = torch.cat([torch.tanh(3.0 * W[2]), torch.tanh(1.5 * W[4]), torch.tanh(W[5])])
    s_real, s_fake = real.mean(dim=(1, 2, 3)), fakes.mean(dim=(1, 2, 3))

    def pooled(r, f):
        return (F.relu(1 - r).sum() + F.relu(1 + f).sum()) / (len(r) + len(f))

    losses = objective.train_step(real, step=1)  # no gradient penalty at step 1 (gp_every 4)
    # the discriminator judges the 8 real images against 3 x 8 fakes, pooled (hinge_loss_bis)
    expected_d = pooled(s_real, s_fake) + pooled(2 * s_real, 2 * s_fake)
    assert losses["d_loss"].item() == pytest.approx(expected_d.item(), rel=1e-5)
    # the generator's loss averages over all 24 fakes, partial and final alike
    expected_g = -(s_fake.mean() + (2 * s_fake).mean())
    assert losses["g_loss"].item() == pytest.approx(expected_g.item(), rel=1e-5, abs=1e-6)


def test_match_loss_pulls_only_the_painter():
    torch.manual_seed(0)
    config = tiny_config(refiner__enabled=True, refiner__depth=1, refiner__base_channels=4)
    generator = build_generator(config)
    nn.init.normal_(generator.refiner.head.weight, std=0.1)  # not the identity at the start
    z = torch.randn(3, config.painter.latent_dim)
    painted = generator.painter(z)
    refined = generator.refiner(painted)
    loss = match_loss(painted, refined)
    assert loss.item() == pytest.approx((painted - refined).pow(2).mean().item())
    loss.backward()
    assert all(p.grad is None for p in generator.refiner.parameters())
    assert any(
        p.grad is not None and p.grad.abs().sum() > 0 for p in generator.painter.parameters()
    )


def test_match_loss_and_judged_painter_in_a_training_step():
    torch.manual_seed(0)
    config = tiny_config(
        refiner__enabled=True,
        refiner__depth=1,
        refiner__base_channels=4,
        refiner__match_loss_weight=2.0,
        refiner__judge_painter=True,
    )
    generator = build_generator(config)
    objective = build_objective(config, generator, torch.device("cpu"))
    z = torch.randn(8, config.painter.latent_dim)
    fakes = objective._fakes(z)
    assert fakes.judged.shape == (16, 3, 16, 16)  # painted, then refined images
    torch.testing.assert_close(fakes.judged[:8], fakes.painted)
    torch.testing.assert_close(fakes.judged[8:], fakes.final)
    losses = objective.train_step(torch.rand(8, 3, 16, 16) * 2 - 1, step=1)
    assert "match" in objective.loss_names and torch.isfinite(losses["match"])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"objective__intermediate_images": 4}, "must divide painter.steps"),
        ({"objective__intermediate_images": 0}, "objective.intermediate_images"),
        (
            {"objective__intermediate_images": 2, "refiner__enabled": True},
            "without refiner",
        ),
        ({"refiner__match_loss_weight": 1.0}, "enable the refiner"),
        ({"refiner__lr": -1.0}, "refiner.lr"),
    ],
)
def test_bad_loss_options_are_refused(options, message):
    with pytest.raises(ConfigError, match=message):
        tiny_config(**options)
