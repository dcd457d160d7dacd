"""The Transformer controller (the official FPA code's ``trafo_delta_split``) inside the painter."""

import pytest
import torch

from fwp.painters import (
    CONTROLLERS,
    Painter,
    PainterConfig,
    TransformerController,
    count_parameters,
)
from fwp.rules import list_rules


def tiny(**overrides) -> PainterConfig:
    values = dict(
        height=8,
        width=6,
        steps=5,
        latent_dim=15,
        step_latent_dim=3,
        controller_input_dim=10,
        controller="transformer",
        hidden_size=16,
        transformer_heads=4,
        transformer_feedforward=24,
    )
    values.update(overrides)
    return PainterConfig(**values)


def _one_rule_per_family() -> list[str]:
    chosen: dict[str, str] = {}
    for spec in list_rules():
        chosen.setdefault(spec.family, spec.name)
    return sorted(chosen.values())


@pytest.mark.parametrize("rule", _one_rule_per_family())
@pytest.mark.parametrize("inputs", ["v1", "v2", "split"])
def test_every_rule_family_paints_and_trains_with_the_transformer(rule, inputs):
    torch.manual_seed(0)
    painter = Painter(tiny(rule=rule, input_generator=inputs))
    images = painter(torch.randn(3, 15))
    assert images.shape == (3, 3, 8, 6)
    assert torch.isfinite(images).all() and images.abs().max() <= 1.0
    (images * torch.linspace(-1, 1, images.numel()).view_as(images)).sum().backward()
    for name, parameter in painter.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name
    result = painter.paint(torch.randn(2, 15), frames=True)
    assert result.updates.shape == result.partials.shape == (5, 2, 3, 8, 6)


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("rule", [spec.name for spec in list_rules() if spec.has_fast_path])
def test_fast_painter_equals_scan_painter_with_the_transformer(rule, causal):
    torch.manual_seed(0)
    painter = Painter(tiny(rule=rule, steps=9, latent_dim=18, transformer_causal=causal)).double()
    z = torch.randn(3, 18, dtype=torch.float64)
    outputs, grads = [], []
    for fast in (True, False):
        painter.fast_path = fast
        painter.zero_grad()
        image = painter(z)
        weights = torch.linspace(-1, 1, image.numel(), dtype=image.dtype).view_as(image)
        (image * weights).sum().backward()
        outputs.append(image.detach())
        grads.append([p.grad.clone() for p in painter.parameters()])
    torch.testing.assert_close(outputs[0], outputs[1], rtol=1e-10, atol=1e-12)
    for fast_grad, scan_grad in zip(*grads, strict=True):
        torch.testing.assert_close(fast_grad, scan_grad, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("with_latent", [False, True])
def test_causal_steps_do_not_see_later_inputs(with_latent):
    torch.manual_seed(0)
    latent_dim = 5 if with_latent else None
    kwargs = dict(dim=16, heads=4, feedforward_dim=24, num_layers=2, latent_dim=latent_dim)
    causal = TransformerController(3, 7, causal=True, **kwargs)
    bidirectional = TransformerController(3, 7, causal=False, **kwargs)
    bidirectional.load_state_dict(causal.state_dict())
    inputs, z = torch.randn(2, 6, 3), torch.randn(2, 5)
    changed = inputs.clone()
    changed[:, 4] += 1.0
    for controller, earlier_unchanged in ((causal, True), (bidirectional, False)):
        before, after = controller(inputs, z), controller(changed, z)
        assert before.shape == (2, 6, 7)
        assert torch.equal(before[:, :4], after[:, :4]) is earlier_unchanged
        assert not torch.allclose(before[:, 4:], after[:, 4:])


def test_the_start_token_makes_the_steps_depend_on_z():
    torch.manual_seed(0)
    controller = TransformerController(3, 7, dim=16, heads=4, feedforward_dim=24, latent_dim=5)
    inputs = torch.randn(2, 6, 3)
    first, second = controller(inputs, torch.randn(2, 5)), controller(inputs, torch.randn(2, 5))
    assert not torch.allclose(first[:, 0], second[:, 0])
    with pytest.raises(ValueError, match="pass z"):
        controller(inputs)


def _transformer_parameters(input_dim, output_dim, dim, layers, feedforward, latent_dim=0):
    """Parameters of the architecture, counted by hand: input projection, optional start token,
    per layer (LayerNorm, bias-free q/k/v and output maps; LayerNorm, two-layer MLP), head."""
    per_layer = 2 * dim + 3 * dim * dim + dim * dim + 2 * dim
    per_layer += dim * feedforward + feedforward + feedforward * dim + dim
    start = latent_dim * dim + dim if latent_dim else 0
    head = dim * output_dim + output_dim
    return input_dim * dim + dim + start + layers * per_layer + head


def test_parameter_count_follows_the_architecture():
    small = TransformerController(3, 7, dim=16, heads=4, feedforward_dim=24, num_layers=2)
    assert count_parameters(small) == _transformer_parameters(3, 7, 16, 2, 24)
    with_start = TransformerController(3, 7, dim=16, heads=2, feedforward_dim=8, latent_dim=5)
    assert count_parameters(with_start) == _transformer_parameters(3, 7, 16, 1, 8, latent_dim=5)


def test_defaults_are_the_official_sizes_and_the_painter_wires_them():
    # the official trafo_delta_split: split input (8 per step), width 512, 8 heads, MLP 1024,
    # one layer, no latent-dependent state, a head for 3 channels of 64 + 64 + 1 logits
    controller = TransformerController(8, 3 * (64 + 64 + 1))
    expected = _transformer_parameters(8, 3 * 129, 512, 1, 1024)
    assert count_parameters(controller) == expected
    assert controller.layers[0].heads == 8
    config = PainterConfig(
        controller="transformer",
        input_generator="split",
        hidden_size=512,
        init_state_from_latent=False,
    )
    assert count_parameters(Painter(config)) == expected


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"controller": "gru"}, r"controller must be one of \('lstm', 'transformer'\); got 'gru'"),
        ({"transformer_heads": 5}, "hidden_size .* divisible by transformer_heads"),
        ({"transformer_heads": 0}, "transformer_heads must be a positive integer"),
        ({"transformer_feedforward": 0}, "transformer_feedforward must be a positive integer"),
        ({"input_generator": "split", "latent_dim": 14}, "latent_dim .* multiple of steps"),
    ],
)
def test_invalid_transformer_configuration_is_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        Painter(tiny(**overrides))


def test_controller_choices_and_config_round_trip():
    assert CONTROLLERS == ("lstm", "transformer")
    config = tiny(transformer_causal=False, input_generator="split")
    assert PainterConfig.from_dict(config.to_dict()) == config
    assert PainterConfig().controller == "lstm"
