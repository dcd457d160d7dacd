import math

import pytest
import torch
from fwp_test_utils import tiny_config

from fwp.gan.config import ADVERSARIAL_LOSSES, ConfigError
from fwp.gan.generators import build_generator
from fwp.gan.networks.discriminator import DiscriminatorOutput
from fwp.gan.objectives import (
    build_objective,
    diversity_loss,
    diversity_ratios,
    hinge_discriminator_loss,
    hinge_generator_loss,
    make_adam,
    real_gradient_penalty,
)
from fwp.gan.objectives.adversarial import (
    ADVERSARIAL_LOSS_TERMS,
    discriminator_loss,
    generator_loss,
)


def outputs(logits, small):
    return DiscriminatorOutput(torch.tensor(logits), torch.tensor(small))


def test_hinge_losses_match_their_definitions():
    real, fake = outputs([2.0, 0.5], [0.0, 1.5]), outputs([-2.0, 0.0], [0.5, -1.0])
    # relu(1 - real) + relu(1 + fake), averaged per head, summed over both heads
    expected = (0.0 + 0.5) / 2 + (0.0 + 1.0) / 2 + (1.0 + 0.0) / 2 + (1.5 + 0.0) / 2
    assert hinge_discriminator_loss(real, fake).item() == pytest.approx(expected)
    assert hinge_generator_loss(fake).item() == pytest.approx(-(-1.0 + -0.25))


def test_logistic_losses_match_their_definitions():
    real, fake = outputs([2.0, 0.0], [0.0, -1.0]), outputs([-2.0, 0.0], [1.0, 3.0])

    def softplus(x: float) -> float:
        return math.log1p(math.exp(x))

    # softplus(-real) + softplus(fake), averaged per head, summed over both heads
    expected = (softplus(-2.0) + softplus(0.0)) / 2 + (softplus(-2.0) + softplus(0.0)) / 2
    expected += (softplus(0.0) + softplus(1.0)) / 2 + (softplus(1.0) + softplus(3.0)) / 2
    assert discriminator_loss(real, fake, "logistic").item() == pytest.approx(expected)
    # non-saturating: softplus(-D(G(z))), still steep where the discriminator rejects the fake
    g_expected = (softplus(2.0) + softplus(0.0)) / 2 + (softplus(-1.0) + softplus(-3.0)) / 2
    assert generator_loss(fake, "logistic").item() == pytest.approx(g_expected)
    # pooled over more fakes than reals (the official hinge_loss_bis, with the logistic terms)
    pooled = discriminator_loss(real, fake, "logistic", pooled=True)
    main = (softplus(-2.0) + softplus(0.0) + softplus(-2.0) + softplus(0.0)) / 4
    small = (softplus(0.0) + softplus(1.0) + softplus(1.0) + softplus(3.0)) / 4
    assert pooled.item() == pytest.approx(main + small)


def test_every_configurable_adversarial_loss_has_its_terms():
    assert tuple(ADVERSARIAL_LOSS_TERMS) == ADVERSARIAL_LOSSES


@pytest.mark.parametrize(("target", "expected"), [(1.0, (5.0 - 1.0) ** 2), (0.0, 25.0)])
def test_gradient_penalty_on_a_linear_discriminator(target, expected):
    """D(x) = <w, x> on both heads has input gradient 2w everywhere; |2w| = 5 here."""
    w = torch.zeros(1, 1, 2, 2)
    w[0, 0, 0, 0], w[0, 0, 1, 1] = 1.5, 2.0
    real = torch.randn(3, 1, 2, 2, requires_grad=True)
    score = (real * w).sum(dim=(1, 2, 3))
    out = DiscriminatorOutput(score, score)
    assert real_gradient_penalty(real, out, target).item() == pytest.approx(expected)


def test_diversity_ratio_pairs_the_two_halves_of_the_batch():
    images = torch.zeros(4, 1, 2, 2)
    images[2] = 1.0  # pair (0, 2) differs by 1 per pixel, pair (1, 3) not at all
    latents = torch.zeros(4, 3)
    latents[2:] = 2.0  # both pairs are 2 apart per latent element
    assert diversity_ratios(images, latents).tolist() == pytest.approx([0.5, 0.0])


def test_a_generator_that_ignores_its_latent_has_diversity_zero():
    images = torch.rand(1, 3, 8, 8).expand(6, -1, -1, -1)
    assert diversity_ratios(images, torch.randn(6, 5)).abs().max().item() == 0.0


def test_diversity_loss_caps_each_pair():
    ratios = torch.tensor([0.0, 2.0], requires_grad=True)
    loss = diversity_loss(ratios, cap=0.5)
    assert loss.item() == pytest.approx(-(0.0 + 0.5) / 2)
    (grad,) = torch.autograd.grad(loss, ratios)
    # the far pair cannot pay for the identical one: only the identical pair is pushed apart
    assert grad.tolist() == pytest.approx([-0.5, 0.0])


def _generator_step(diversity_weight, seed=0):
    """One generator update of a tiny objective; returns (generator parameters before, after)."""
    torch.manual_seed(seed)
    config = tiny_config(objective__diversity_weight=diversity_weight)
    generator = build_generator(config)
    objective = build_objective(config, generator, torch.device("cpu"))
    before = [p.detach().clone() for p in generator.parameters()]
    torch.manual_seed(seed + 1)
    losses = objective.train_step(torch.rand(8, 3, 16, 16) * 2 - 1, step=1)
    return before, list(generator.parameters()), losses


def test_diversity_term_changes_the_generator_update():
    before, off, losses_off = _generator_step(0.0)
    _, on, losses_on = _generator_step(5.0)
    assert torch.isfinite(losses_on["diversity"])
    # same seeds, same discriminator update: only the diversity term can make them differ
    assert losses_on["d_loss"].item() == pytest.approx(losses_off["d_loss"].item())
    assert any(not torch.allclose(a, b) for a, b in zip(off, on, strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(before, off, strict=True))


@pytest.mark.parametrize(
    ("name", "value"), [("objective.diversity_weight", -1.0), ("objective.diversity_cap", 0.0)]
)
def test_bad_diversity_options_are_refused(name, value):
    with pytest.raises(ConfigError, match="diversity"):
        tiny_config(**{name.replace(".", "__"): value})


def test_adam_implementations_compute_the_same_update():
    """make_adam picks plain (reference), foreach (CPU) or fused (CUDA) Adam: same update. The
    fused kernel also runs on a CPU, so all three are compared here."""
    torch.manual_seed(0)
    start = [torch.randn(5, 3), torch.randn(7)]
    grads = [[torch.randn_like(p) for p in start] for _ in range(3)]
    finals = {}
    options = {"plain": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}
    for kind in options:
        params = [p.clone().requires_grad_() for p in start]
        optimizer = torch.optim.Adam(params, lr=1e-2, betas=(0.5, 0.9), **options[kind])
        for step_grads in grads:
            for p, g in zip(params, step_grads, strict=True):
                p.grad = g.clone()
            optimizer.step()
        finals[kind] = [p.detach() for p in params]
    for kind in ("foreach", "fused"):
        for a, b in zip(finals["plain"], finals[kind], strict=True):
            torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-7)
    reference = make_adam(start, 1e-3, (0.5, 0.9), torch.device("cpu"), reference=True)
    fast = make_adam(start, 1e-3, (0.5, 0.9), torch.device("cpu"), reference=False)
    assert reference.defaults["foreach"] is False and fast.defaults["foreach"] is True
