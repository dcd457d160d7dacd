"""Cooperative training (CoopNets, Xie et al., TPAMI 2018): the Langevin revision against its
formula and its stationary distribution, the two updates, the run directory, resume, learning."""

import math

import pytest
import torch
from click.testing import CliRunner
from einops import rearrange
from fwp_test_utils import (
    TINY_CLI_SHORT_RUN,
    assert_same_losses,
    straight_and_resumed,
    tiny_config,
)
from torch import nn

from fwp.cli.main import cli
from fwp.gan.checkpoint import load_checkpoint, load_generator
from fwp.gan.config import PRESETS, ConfigError, build_config
from fwp.gan.data import load_images, to_float
from fwp.gan.generators import build_generator
from fwp.gan.networks import DESCRIPTORS, ConvDescriptor, build_descriptor
from fwp.gan.objectives import (
    CooperativeObjective,
    build_objective,
    langevin_revision,
    langevin_step,
    latent_inference,
    painter_regression_loss,
)
from fwp.gan.trainer import Trainer

CPU = torch.device("cpu")


def coop_config(**overrides):
    """The tiny test configuration trained cooperatively (4 Langevin steps, a narrow descriptor,
    no diversity term: CoopNets' own painter loss) with the LSTM controller of coop-quick."""
    options = {
        "painter__controller": "lstm",
        "objective__name": "coop",
        "objective__diversity_weight": 0.0,
        "coop__langevin_steps": 4,
        "coop__descriptor_width": 8,
    }
    options.update(overrides)
    return tiny_config(**options)


def coop_objective(seed: int = 0, **overrides) -> CooperativeObjective:
    torch.manual_seed(seed)
    config = coop_config(**overrides)
    objective = build_objective(config, build_generator(config), CPU)
    assert isinstance(objective, CooperativeObjective)
    return objective


class SineEnergy(nn.Module):
    """f(y) = sum(a * sin(y)) per image: ∂f/∂y = a * cos(y), a (C, H, W)."""

    def __init__(self, a: torch.Tensor) -> None:
        super().__init__()
        self.a = a

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return (self.a * torch.sin(y)).flatten(1).sum(1)


# -- the Langevin revision ---------------------------------------------------------------------
@pytest.mark.parametrize("noise", [True, False])
def test_one_langevin_step_equals_the_formula(noise):
    torch.manual_seed(0)
    y = torch.randn(3, 2, 4, 5, dtype=torch.float64)
    a = torch.randn(2, 4, 5, dtype=torch.float64)
    delta, s = 0.3, 0.7
    epsilon = torch.randn(y.shape, generator=torch.Generator().manual_seed(11), dtype=y.dtype)
    grad = a * torch.cos(y)
    expected = y - delta**2 / 2 * (y / s**2 - grad) + (delta * epsilon if noise else 0.0)

    stepped = langevin_step(y, grad, delta, s, epsilon if noise else None)
    torch.testing.assert_close(stepped, expected, rtol=1e-12, atol=1e-12)

    revision = langevin_revision(
        SineEnergy(a), y, 1, delta, s, noise=noise, rng=torch.Generator().manual_seed(11)
    )
    torch.testing.assert_close(revision.images, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(revision.start_scores, (a * torch.sin(y)).flatten(1).sum(1))
    per_image_norm = grad.flatten(1).norm(dim=1).mean()
    torch.testing.assert_close(revision.grad_norm, per_image_norm.float())


def test_training_noise_comes_from_the_global_generator():
    """Without an ``rng`` the noise is torch's global stream (whose state checkpoints keep)."""
    y = torch.rand(2, 1, 3, 3, dtype=torch.float64)
    a = torch.ones(1, 3, 3, dtype=torch.float64)
    torch.manual_seed(5)
    revised = langevin_revision(SineEnergy(a), y, 1, 0.1, 1.0).images
    torch.manual_seed(5)
    epsilon = torch.randn(y.shape, dtype=y.dtype)
    expected = y - 0.005 * (y - a * torch.cos(y)) + 0.1 * epsilon
    torch.testing.assert_close(revised, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("mu", "tau", "s", "delta"), [(1.5, 1.0, 1.0, 0.1), (2.0, 1.0, 0.5, 0.05)])
def test_a_long_noisy_chain_samples_the_analytic_stationary_distribution(mu, tau, s, delta):
    """With f(y) = -(y - mu)^2 / (2 tau^2) per pixel, p(y) ∝ exp(f(y)) N(y; 0, s^2) is Gaussian
    with precision lam = 1/tau^2 + 1/s^2, mean mu / (tau^2 lam) and variance 1 / lam.

    25,600 independent chains (every pixel of 400 images of 8x8) run 3,000 steps from 0, by which
    time the start is forgotten (the mean's distance to it shrinks by (1 - delta^2 lam / 2) per
    step: below 1e-6 of it). The discretised chain's stationary variance is
    1 / (lam (1 - delta^2 lam / 4)), 0.5% and 0.3% above 1 / lam here; its mean is exact.
    Tolerances: 5 standard errors of the sample mean and of the sample variance of 25,600 draws
    (plus the discretisation bias for the variance).
    """
    energy = lambda y: (-((y - mu) ** 2) / (2 * tau**2)).flatten(1).sum(1)  # noqa: E731
    lam = 1 / tau**2 + 1 / s**2
    mean, variance = mu / (tau**2 * lam), 1 / lam
    start = torch.zeros(400, 1, 8, 8, dtype=torch.float64)
    samples = langevin_revision(
        energy, start, 3000, delta, s, noise=True, rng=torch.Generator().manual_seed(0)
    ).images.flatten()
    n = samples.numel()
    bias = variance * (1 / (1 - delta**2 * lam / 4) - 1)
    assert abs(samples.mean().item() - mean) < 5 * math.sqrt(variance / n)
    assert abs(samples.var().item() - variance) < 5 * variance * math.sqrt(2 / n) + bias


def test_without_noise_the_chain_descends_to_the_mode():
    """Noiseless steps are gradient steps: they end at the stationary distribution's mode."""
    energy = lambda y: (-((y - 1.5) ** 2) / 2).flatten(1).sum(1)  # noqa: E731
    start = torch.randn(4, 1, 3, 3, dtype=torch.float64)
    end = langevin_revision(energy, start, 3000, 0.1, 1.0, noise=False).images
    torch.testing.assert_close(end, torch.full_like(end, 0.75), rtol=0, atol=1e-6)


def test_latent_inference_step_equals_the_formula():
    """z <- z - d^2/2 (z + dL/dz) + d eps, L = ||Y - g(z)||^2 / (2 sigma^2) and a linear g,
    for which dL/dz = -W^T (Y - W z) / sigma^2."""
    torch.manual_seed(0)
    W = torch.randn(12, 3, dtype=torch.float64)
    g = lambda z: rearrange(z @ W.T, "b (c h w) -> b c h w", c=1, h=3)  # noqa: E731
    z = torch.randn(5, 3, dtype=torch.float64)
    target = torch.randn(5, 1, 3, 4, dtype=torch.float64)
    delta, sigma = 0.2, 0.3
    eps = torch.randn(z.shape, generator=torch.Generator().manual_seed(2), dtype=z.dtype)
    residual = target.flatten(1) - z @ W.T
    expected = z - delta**2 / 2 * (z - residual @ W / sigma**2) + delta * eps
    got = latent_inference(g, z, target, 1, delta, sigma, rng=torch.Generator().manual_seed(2))
    torch.testing.assert_close(got.double(), expected, rtol=1e-6, atol=1e-6)


def test_zero_steps_is_refused():
    with pytest.raises(ValueError, match="at least one step"):
        langevin_revision(lambda y: y.sum((1, 2, 3)), torch.zeros(1, 1, 2, 2), 0, 0.1, 1.0)


# -- the two updates ----------------------------------------------------------------------------
def test_the_descriptor_update_raises_f_on_data_relative_to_revised_samples(tiny_emoji):
    """One Adam step (a small one: the first Adam step moves every weight by the learning rate,
    and the default 0.007 is most of the initial weights' 0.01 scale, beyond first order)."""
    objective = coop_objective(coop__lr_descriptor=1e-4)
    real = to_float(tiny_emoji[:8])
    revised = objective.revise(objective.paint(torch.randn(8, 16))).images
    descriptor = objective.descriptor
    painter_before = [p.detach().clone() for p in objective.generator.parameters()]
    with torch.no_grad():
        gap_before = (descriptor(real).mean() - descriptor(revised).mean()).item()
    loss, f_data, f_revised = objective.update_descriptor(real, revised)
    assert loss.item() == pytest.approx(-gap_before, rel=1e-5, abs=1e-7)
    assert (f_data - f_revised).item() == pytest.approx(gap_before, rel=1e-5, abs=1e-7)
    with torch.no_grad():
        gap_after = (descriptor(real).mean() - descriptor(revised).mean()).item()
    assert gap_after > gap_before + 1e-4, (gap_before, gap_after)
    for before, after in zip(painter_before, objective.generator.parameters(), strict=True):
        assert torch.equal(before, after)  # the descriptor step leaves the painter alone


class LinearPainter(nn.Module):
    """g(z) = W z + b, reshaped to images (B, 1, 3, 4)."""

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(latent_dim, 12)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return rearrange(self.linear(z), "b (c h w) -> b c h w", c=1, h=3)


def test_the_painter_update_moves_g_towards_the_revision_exactly_on_a_linear_generator():
    """One SGD step (rate eta) on ||Y - g(z)||^2 / (2 sigma^2), averaged over B images, with
    g(z) = W z + b changes the residuals R = Y - g(Z) (B, 12) to
    R - eta / (sigma^2 B) (Z Z^T + 1) R: every residual shrinks along the data of the batch."""
    objective = coop_objective()
    sigma, eta, batch = objective.config.coop.generator_std, 0.01, 6
    torch.manual_seed(1)
    linear = LinearPainter(latent_dim=5)
    objective.generate = linear
    objective.optimizers["generator"] = torch.optim.SGD(linear.parameters(), lr=eta)
    z = torch.randn(batch, 5)
    revised = torch.randn(batch, 1, 3, 4)
    with torch.no_grad():
        residual = (revised - linear(z)).flatten(1)
    loss, _ = objective.update_painter(z, revised)
    assert loss.item() == pytest.approx(residual.pow(2).sum(1).mean().item() / (2 * sigma**2))
    with torch.no_grad():
        new_residual = (revised - linear(z)).flatten(1)
    expected = residual - eta / (sigma**2 * batch) * (z @ z.T + 1) @ residual
    torch.testing.assert_close(new_residual, expected, rtol=1e-4, atol=1e-5)
    assert new_residual.norm() < residual.norm()


def test_fast_and_reference_modes_take_the_same_step(tiny_emoji):
    """Fast mode scores data and revisions in one descriptor pass, reference mode in two."""
    losses = {}
    for reference in (False, True):
        objective = coop_objective(seed=4, run__reference=reference)
        torch.manual_seed(5)
        losses[reference] = objective.train_step(to_float(tiny_emoji[:8]), step=1)
    for name, value in losses[False].items():
        torch.testing.assert_close(value, losses[True][name], rtol=1e-4, atol=1e-5)


def test_latent_inference_runs_inside_the_step(tiny_emoji):
    objective = coop_objective(coop__latent_steps=2)
    calls = []
    infer = objective.infer_latents
    objective.infer_latents = lambda z, y: calls.append(z) or infer(z, y)
    losses = objective.train_step(to_float(tiny_emoji[:8]), step=1)
    assert len(calls) == 1 and all(torch.isfinite(v) for v in losses.values())


def _painter_after_one_update(diversity_weight: float) -> list[torch.Tensor]:
    objective = coop_objective(objective__diversity_weight=diversity_weight)
    torch.manual_seed(3)
    objective.update_painter(torch.randn(8, 16), torch.rand(8, 3, 16, 16) * 2 - 1)
    return [p.detach() for p in objective.generator.parameters()]


def test_the_diversity_term_changes_the_painter_update_only_when_on():
    off, again, on = (_painter_after_one_update(w) for w in (0.0, 0.0, 100.0))
    assert all(torch.equal(a, b) for a, b in zip(off, again, strict=True))
    assert any(not torch.allclose(a, b) for a, b in zip(off, on, strict=True))


def test_painter_regression_loss_is_the_formula():
    painted, revised = torch.zeros(2, 1, 2, 2), torch.ones(2, 1, 2, 2)
    revised[1] = 2.0
    # per image: 4 * 1 and 4 * 4, over 2 sigma^2 = 0.5; the mean of 8 and 32
    assert painter_regression_loss(painted, revised, 0.5).item() == pytest.approx(20.0)
    with pytest.raises(ValueError, match="differ"):
        painter_regression_loss(painted, revised[:1], 0.5)


# -- the descriptor networks --------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(DESCRIPTORS))
@pytest.mark.parametrize("size", [(16, 16), (32, 32), (16, 32)])
def test_every_descriptor_scores_each_image_on_its_own(name, size):
    torch.manual_seed(0)
    descriptor = build_descriptor(name, size, 3, width=8, num_outputs=7)
    images = torch.randn(4, 3, *size)
    scores = descriptor(images)
    assert scores.shape == (4,)
    torch.testing.assert_close(descriptor(images[2:3]), scores[2:3], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(descriptor.outputs(images).sum(1), scores)
    with pytest.raises(ValueError, match="takes images"):
        descriptor(torch.randn(4, 1, *size))


def test_the_coopnets_descriptor_has_the_official_layers():
    """64x64: conv 5x5/2 -> 64, conv 3x3/2 -> 128, conv 3x3/1 -> 256, fc 16*16*256 -> 100."""
    descriptor = build_descriptor("coopnets", (64, 64), 3)
    assert isinstance(descriptor, ConvDescriptor)
    shapes = [tuple(conv.weight.shape) for conv in descriptor.convs]
    assert shapes == [(64, 3, 5, 5), (128, 64, 3, 3), (256, 128, 3, 3)]
    assert descriptor.feature_shape == (256, 16, 16)
    assert tuple(descriptor.head.weight.shape) == (100, 256 * 16 * 16)
    small = build_descriptor("coopnets", (32, 32), 3, width=16)
    assert small.feature_shape == (64, 8, 8)


# -- configuration ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("coop.step_size", -0.1, "coop.step_size must be positive"),
        ("coop.reference_std", -1.0, "coop.reference_std must be positive"),
        ("coop.reference_std", 0.0, "coop.reference_std must be positive"),
        ("coop.generator_std", 0.0, "coop.generator_std must be positive"),
        ("coop.langevin_steps", 0, "coop.langevin_steps must be at least 1"),
        ("coop.latent_steps", -1, "coop.latent_steps must be >= 0"),
        ("coop.descriptor", "vgg", "coop.descriptor 'vgg' is unknown"),
        ("coop.descriptor_width", 0, "coop.descriptor_width must be a positive"),
    ],
)
def test_bad_coop_options_are_refused_naming_the_option(option, value, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        coop_config(**{option.replace(".", "__"): value})


def test_zero_langevin_steps_are_allowed_when_the_objective_is_off():
    assert tiny_config(coop__langevin_steps=0).coop.langevin_steps == 0


def test_the_command_line_refuses_bad_options_before_any_work(tmp_path):
    run_dir = tmp_path / "run"
    result = CliRunner().invoke(
        cli,
        ["train", "--objective", "coop", "--coop-step-size", "-1", "--run-dir", str(run_dir)],
    )
    assert result.exit_code != 0
    assert "coop.step_size must be positive" in result.output
    assert not run_dir.exists()


def test_presets_follow_the_official_defaults():
    config = build_config("coop")
    assert config.objective.name == "coop"
    coop = config.coop
    assert (coop.step_size, coop.reference_std, coop.langevin_steps) == (0.002, 0.016, 15)
    assert (coop.generator_std, coop.latent_steps, coop.latent_step_size) == (0.3, 0, 0.1)
    assert (coop.descriptor, coop.descriptor_width, coop.lr_descriptor) == ("coopnets", 64, 0.007)
    assert (config.optim.lr_generator, config.optim.beta1) == (1e-4, 0.5)
    assert build_config("coop-quick").data.size == [32, 32]
    assert "coop-quick" in PRESETS


# -- the run directory, resume ------------------------------------------------------------------
def test_a_coop_run_directory_holds_everything(tmp_path, tiny_emoji):
    trainer = Trainer(coop_config(), tmp_path / "run", images=tiny_emoji, progress=False)
    rng_before = torch.get_rng_state()
    trainer.save_samples()  # pictures never move the training RNG
    assert torch.equal(torch.get_rng_state(), rng_before)
    result = trainer.run()
    run = tmp_path / "run"
    assert result.step == 6
    names = sorted(p.name for p in (run / "samples").iterdir())
    assert {"revision_0000003.png", "revision_0000006.png", "samples_0000006.png"} <= set(names)
    header = (run / "metrics.csv").read_text().splitlines()[0].split(",")
    assert header[:5] == ["step", "elapsed_s", "img_per_s", "lr_generator", "lr_descriptor"]
    assert set(CooperativeObjective.loss_names) <= set(header)
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    assert set(state["objective"]["networks"]) == {"generator", "descriptor"}
    assert set(state["objective"]["optimizers"]) == {"generator", "descriptor"}
    generator, config = load_generator(run)
    assert config.objective.name == "coop"
    assert generator.sample(3, seed=0).shape == (3, 3, 16, 16)


def test_the_revision_grid_pairs_the_painting_with_its_revision():
    objective = coop_objective()
    latents = torch.randn(3, 16)
    rng_before = torch.get_rng_state()
    tiles = objective.extra_sample_grids(latents)["revision"]
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert tiles.shape == (3, 3, 16, 16 + 2 + 16)
    torch.testing.assert_close(tiles[..., :16], objective.paint(latents))  # x0 on the left
    assert (tiles[..., 16:18] == 1).all()  # a white line
    assert not torch.equal(tiles[..., 18:], tiles[..., :16])  # Y on the right, revised
    assert torch.equal(objective.extra_sample_grids(latents)["revision"], tiles)  # fixed noise


def test_resume_reproduces_the_uninterrupted_coop_losses(tmp_path, tiny_emoji):
    def trainer(run_dir, steps):
        config = coop_config(run__steps=steps, run__checkpoint_every=4)
        return Trainer(config, run_dir, images=tiny_emoji, progress=False)

    _, _, full_history, split_history = straight_and_resumed(trainer, tmp_path)
    assert_same_losses(full_history, split_history)


def test_fwp_train_objective_coop_runs_from_the_command_line(tmp_path):
    run_dir = tmp_path / "run"
    result = CliRunner().invoke(
        cli,
        [
            "train",
            *TINY_CLI_SHORT_RUN,
            "--objective",
            "coop",
            "--coop-langevin-steps",
            "2",
            "--coop-descriptor-width",
            "8",
            "--run-dir",
            str(run_dir),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "painter_loss=" in result.output
    assert (run_dir / "samples" / "revision_0000004.png").is_file()


# -- learning -----------------------------------------------------------------------------------
def sample_statistics(generator, real) -> tuple[float, float]:
    """(colour gap, spread) of 256 fixed-latent samples: the mean absolute difference of the
    per-channel means of samples and data, and the per-pixel standard deviation across samples
    (0 = every latent paints the same image)."""
    fake = generator.sample(256, seed=5)
    gap = (fake.mean(dim=(0, 2, 3)) - real.mean(dim=(0, 2, 3))).abs().mean().item()
    return gap, fake.std(dim=0).mean().item()


def test_two_hundred_cooperative_steps_move_the_samples_toward_the_data(tmp_path):
    """MCMC teaching alone (no diversity term) on 256 real 16x16 emoji: a painter with T=6, LSTM
    64, batch 16, the coop-quick preset's Langevin setting (4 steps here) and two painter steps per
    revision. Measured over seeds 0-5: colour gap 0.22-0.26 -> 0.017-0.036 (at most 0.16 of the
    start), spread 0.10-0.12 -> 0.23-0.38. A painter that does not learn keeps both where they
    start (its head is initialised ten times larger, as in coop-quick, so it starts varied)."""
    images = load_images("emoji", (16, 16), 3, limit=256, progress=False)
    real = to_float(images)
    config = coop_config(
        data__limit=256,
        painter__hidden_size=64,
        painter__latent_dim=32,
        painter__head_init_scale=10.0,
        optim__batch_size=16,
        optim__ema_decay=0.98,
        optim__beta2=0.999,
        coop__step_size=0.02,
        coop__reference_std=0.16,
        coop__clamp=True,
        coop__painter_updates=2,
        run__steps=200,
        run__log_every=50,
        run__checkpoint_every=200,
        run__sample_every=200,
    )
    trainer = Trainer(config, tmp_path / "run", images=images, progress=False)
    gap_before, spread_before = sample_statistics(trainer.ema, real)
    assert gap_before > 0.15 and spread_before < 0.13
    trainer.run()
    gap_after, spread_after = sample_statistics(trainer.ema, real)
    assert gap_after < 0.4 * gap_before, (gap_before, gap_after)
    assert spread_after > 0.18 and spread_after > 1.5 * spread_before, (spread_before, spread_after)
