import pytest
import torch

from fwp.gan.discriminator import DiscriminatorOutput
from fwp.gan.objectives import (
    hinge_discriminator_loss,
    hinge_generator_loss,
    real_gradient_penalty,
)


def outputs(logits, small):
    return DiscriminatorOutput(torch.tensor(logits), torch.tensor(small))


def test_hinge_losses_match_their_definitions():
    real, fake = outputs([2.0, 0.5], [0.0, 1.5]), outputs([-2.0, 0.0], [0.5, -1.0])
    # relu(1 - real) + relu(1 + fake), averaged per head, summed over both heads
    expected = (0.0 + 0.5) / 2 + (0.0 + 1.0) / 2 + (1.0 + 0.0) / 2 + (1.5 + 0.0) / 2
    assert hinge_discriminator_loss(real, fake).item() == pytest.approx(expected)
    assert hinge_generator_loss(fake).item() == pytest.approx(-(-1.0 + -0.25))


@pytest.mark.parametrize(("target", "expected"), [(1.0, (5.0 - 1.0) ** 2), (0.0, 25.0)])
def test_gradient_penalty_on_a_linear_discriminator(target, expected):
    """D(x) = <w, x> on both heads has input gradient 2w everywhere; |2w| = 5 here."""
    w = torch.zeros(1, 1, 2, 2)
    w[0, 0, 0, 0], w[0, 0, 1, 1] = 1.5, 2.0
    real = torch.randn(3, 1, 2, 2, requires_grad=True)
    score = (real * w).sum(dim=(1, 2, 3))
    out = DiscriminatorOutput(score, score)
    assert real_gradient_penalty(real, out, target).item() == pytest.approx(expected)
