import pytest
import torch

from fwp.painters import Painter, PainterConfig, UNetRefiner, count_parameters, painter_preset


def tiny(**overrides) -> PainterConfig:
    values = dict(
        height=8,
        width=6,
        steps=5,
        latent_dim=12,
        step_latent_dim=3,
        controller_input_dim=10,
        hidden_size=16,
    )
    values.update(overrides)
    return PainterConfig(**values)


def test_paper_preset_has_the_official_parameter_count():
    # the official FPA implementation of the paper's main configuration: 6,437,891 parameters
    assert count_parameters(Painter(painter_preset("paper"))) == 6_437_891


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("generator", ["v1", "v2"])
@pytest.mark.parametrize("rule", ["delta", "hebb", "oja", "delta_rowlr", "delta_gated"])
def test_shapes_for_any_size_channel_count_and_rule(channels, generator, rule):
    painter = Painter(tiny(channels=channels, input_generator=generator, rule=rule))
    images = painter(torch.randn(4, 12))
    assert images.shape == (4, channels, 8, 6)
    assert images.abs().max() <= 1.0
    result = painter.paint(torch.randn(2, 12), frames=True)
    assert result.updates.shape == (5, 2, channels, 8, 6)
    assert result.partials.shape == (5, 2, channels, 8, 6)
    torch.testing.assert_close(result.partials[-1], result.image)


@pytest.mark.parametrize("initial_matrix", ["zeros", "learned"])
@pytest.mark.parametrize("rule", ["delta", "delta_rowlr", "delta_gated", "hebb", "hebb_decay"])
def test_fast_painter_equals_scan_painter_values_and_gradients(rule, initial_matrix):
    torch.manual_seed(0)
    painter = Painter(tiny(rule=rule, steps=9, initial_matrix=initial_matrix)).double()
    if painter.initial is not None:  # a trained-looking W_0, so that its gradient path matters
        with torch.no_grad():
            painter.initial.normal_()
    z = torch.randn(3, 12, dtype=torch.float64)
    outputs, grads = [], []
    for fast in (True, False):
        painter.fast_path = fast
        painter.zero_grad()
        image = painter(z)
        (
            image * torch.linspace(-1, 1, image.numel(), dtype=image.dtype).view_as(image)
        ).sum().backward()
        outputs.append(image.detach())
        grads.append([p.grad.clone() for p in painter.parameters()])
    torch.testing.assert_close(outputs[0], outputs[1], rtol=1e-10, atol=1e-12)
    for fast_grad, scan_grad in zip(*grads, strict=True):
        torch.testing.assert_close(fast_grad, scan_grad, rtol=1e-9, atol=1e-11)


def test_sampling_is_seeded_and_batched_consistently():
    painter = Painter(tiny())
    a = painter.sample(7, batch_size=3, seed=1)
    b = painter.sample(7, batch_size=7, seed=1)
    assert a.shape == (7, 3, 8, 6)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(a, painter.sample(7, seed=2))


def test_bad_latent_shape_is_reported():
    with pytest.raises(ValueError, match=r"z must have shape \(B, 12\)"):
        Painter(tiny())(torch.randn(2, 5))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"channels": 2}, "channels must be 1 or 3"),
        ({"steps": 0}, "steps must be a positive integer"),
        ({"input_generator": "v3"}, "input_generator"),
        ({"rule": "deltaa"}, "unknown learning rule 'deltaa'.*delta"),
        ({"output_activation": "relu"}, "output_activation"),
        ({"initial_matrix": "ones"}, r"initial_matrix must be one of \('zeros', 'learned'\)"),
    ],
)
def test_invalid_configuration_is_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        Painter(tiny(**overrides))


@pytest.mark.parametrize("rule", ["delta", "hebb", "oja"])
def test_learned_initial_matrix_starts_at_zero_and_is_what_the_rule_updates(rule):
    torch.manual_seed(0)
    learned = Painter(tiny(rule=rule, initial_matrix="learned")).double()
    zeros = Painter(tiny(rule=rule)).double()
    assert learned.initial is not None and learned.initial.shape == (3, 8, 6)
    assert zeros.initial is None
    # same weights otherwise: a new learned painter paints exactly what the paper's does
    zeros.load_state_dict({k: v for k, v in learned.state_dict().items() if k != "initial"})
    z = torch.randn(4, 12, dtype=torch.float64)
    torch.testing.assert_close(learned(z), zeros(z))
    # a trained W_0 is the rule's starting matrix: the step-by-step scan from W_0, by hand
    with torch.no_grad():
        learned.initial.normal_()
    K, V, LR = learned.sequences(z)
    W = learned.initial.detach().expand(4, -1, -1, -1)
    for t in range(learned.config.steps):
        W = learned.rule.step(W, K[:, :, t], V[:, :, t], LR[:, :, t])
    torch.testing.assert_close(learned(z), torch.tanh(W))
    # partial paintings start from it too, and W_0 gets a gradient
    result = learned.paint(z, frames=True)
    torch.testing.assert_close(result.partials[-1], result.image)
    learned(z).sum().backward()
    assert learned.initial.grad is not None and learned.initial.grad.abs().sum() > 0


def test_config_round_trip_and_unknown_keys():
    config = tiny(rule="delta_l2")
    assert PainterConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown painter options"):
        PainterConfig.from_dict({"heigth": 3})


def test_refiner_starts_as_identity_and_trains():
    torch.manual_seed(0)
    refiner = UNetRefiner(channels=3, base_channels=8, depth=2)
    images = torch.rand(2, 3, 16, 12) * 1.8 - 0.9
    torch.testing.assert_close(refiner(images), images, rtol=1e-5, atol=1e-5)
    target = torch.zeros_like(images)
    optimiser = torch.optim.Adam(refiner.parameters(), lr=1e-2)
    first = None
    for _ in range(20):
        loss = (refiner(images) - target).pow(2).mean()
        first = first if first is not None else loss.item()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert loss.item() < 0.5 * first


def test_refiner_rejects_indivisible_sizes():
    with pytest.raises(ValueError, match="divisible by 8"):
        UNetRefiner(depth=3)(torch.zeros(1, 3, 20, 20))


def test_painting_stays_float32_under_bf16_autocast():
    torch.manual_seed(0)
    painter = Painter(PainterConfig(height=8, width=8, steps=5, latent_dim=8, hidden_size=16))
    z = torch.randn(3, 8)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        K, V, LR = painter.sequences(z)
        images = painter(z)
    assert K.dtype == V.dtype == LR.dtype == images.dtype == torch.float32
    torch.testing.assert_close(images, painter(z), rtol=0, atol=0.05)  # bf16 controller only
