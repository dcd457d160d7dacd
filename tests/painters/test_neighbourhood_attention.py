"""The shifted-view local attention against its F.unfold reference: values, gradients and the
double backward the gradient penalty takes through the discriminator."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fwp.painters.layers import (
    LinearLocalAttention,
    neighbourhood_attention,
    neighbourhood_attention_reference,
)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _inputs(n: int, d: int, h: int, w: int, device: str, seed: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    shape = (n, d, h, w)
    tensors = [torch.randn(shape, generator=generator, dtype=torch.float64) for _ in range(3)]
    return [t.to(device).requires_grad_() for t in tensors]


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 3),
    d=st.integers(1, 6),
    h=st.integers(1, 7),
    w=st.integers(1, 7),
    kernel_size=st.sampled_from([1, 3, 5]),
    seed=st.integers(0, 2**16),
)
def test_values_and_gradients_match_the_unfold_reference(n, d, h, w, kernel_size, seed):
    q, k, v = _inputs(n, d, h, w, "cpu", seed)
    fast = neighbourhood_attention(q, k, v, kernel_size)
    reference = neighbourhood_attention_reference(q, k, v, kernel_size)
    torch.testing.assert_close(fast, reference)
    weights = torch.randn_like(fast)
    fast_grads = torch.autograd.grad((fast * weights).sum(), (q, k, v))
    reference_grads = torch.autograd.grad((reference * weights).sum(), (q, k, v))
    for got, expected in zip(fast_grads, reference_grads, strict=True):
        torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("device", DEVICES)
def test_second_derivatives_match_the_unfold_reference(device):
    """The R1/one-centred penalty differentiates the gradient: both paths give the same."""
    results = []
    for attention in (neighbourhood_attention, neighbourhood_attention_reference):
        q, k, v = _inputs(2, 4, 5, 6, device, seed=3)
        (grad_q,) = torch.autograd.grad(attention(q, k, v, 3).square().sum(), q, create_graph=True)
        results.append(torch.autograd.grad(grad_q.square().sum(), (q, k, v)))
    for got, expected in zip(*results, strict=True):
        torch.testing.assert_close(got, expected)


def test_the_border_attends_to_zero_keys():
    """A corner's 3x3 window holds four real neighbours and five zero-padded ones; the zero keys
    (score 0, value 0) take part in the softmax, so the corner's output is 4e / (4e + 5) where
    the centre's, with nine real neighbours, is 1."""
    q = torch.ones(1, 1, 3, 3)
    k = torch.ones(1, 1, 3, 3)
    v = torch.ones(1, 1, 3, 3)
    out = neighbourhood_attention(q, k, v, 3)
    e = torch.e
    corner = 4 * e / (4 * e + 5)  # four real neighbours (score 1, value 1), five zero keys
    centre = 1.0  # all nine neighbours are real
    torch.testing.assert_close(out[0, 0, 0, 0], torch.tensor(corner))
    torch.testing.assert_close(out[0, 0, 1, 1], torch.tensor(centre))


@pytest.mark.parametrize("device", DEVICES)
def test_the_module_computes_the_reference_attention(device):
    torch.manual_seed(0)
    module = LinearLocalAttention(12, heads=3, dim_head=4).to(device).double()
    x = torch.randn(2, 12, 6, 5, dtype=torch.float64, device=device)
    q = module.to_q(x)
    k, v = module.to_kv(x).chunk(2, dim=1)
    heads = [t.reshape(2 * 3, 4, 6, 5) for t in (q, k, v)]
    local = neighbourhood_attention_reference(heads[0] * module.scale, *heads[1:], 3)
    expected = module.to_out(torch.cat([module._linear(x), local.reshape(2, 12, 6, 5)], dim=1))
    torch.testing.assert_close(module(x), expected)
