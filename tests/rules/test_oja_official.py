"""``oja_official`` against a plain re-statement of the official FPA code's Oja loop.

The official painter (Irie & Schmidhuber, "Images as Weight Matrices", ICLR 2023; its Oja
generator) does, per batch element and channel, starting from W = 0:

    k = softmax(key logits); v = value logits; lr = sigmoid(lr logits)
    if not the first step: k = k - W^T v
    k = softmax(k)                       # at every step, the first included
    W = W + (lr v) k^T                   # the rate applies from the first step

``official_loop`` below writes that out one matrix at a time with plain matrix products, apart
from the rule's code, so the comparison tests the rule rather than restating it.
"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from fwp.rules import get_rule


def official_loop(key_logits: Tensor, value_logits: Tensor, lr_logits: Tensor) -> Tensor:
    """Every partial image, (T, B, C, H, Wd), from raw logits (B, C, T, Wd), (B, C, T, H),
    (B, C, T, 1)."""
    B, C, T, Wd = key_logits.shape
    H = value_logits.shape[-1]
    partials = []
    for b in range(B):
        for c in range(C):
            W = torch.zeros(H, Wd, dtype=key_logits.dtype)
            per_step = []
            first = True
            for t in range(T):
                k = torch.softmax(key_logits[b, c, t], dim=0)
                v = value_logits[b, c, t]
                lr = torch.sigmoid(lr_logits[b, c, t])
                if not first:
                    k = k - W.T @ v
                k = torch.softmax(k, dim=0)
                W = W + torch.outer(v * lr, k)
                per_step.append(W)
                first = False
            partials.append(torch.stack(per_step))
    return torch.stack(partials).reshape(B, C, T, H, Wd).permute(2, 0, 1, 3, 4)


def _logits(seed: int, B: int = 2, C: int = 3, T: int = 7, H: int = 5, Wd: int = 4):
    gen = torch.Generator().manual_seed(seed)
    return (
        (torch.randn(B, C, T, Wd, generator=gen, dtype=torch.float64) * 2).requires_grad_(),
        torch.randn(B, C, T, H, generator=gen, dtype=torch.float64).requires_grad_(),
        torch.randn(B, C, T, 1, generator=gen, dtype=torch.float64).requires_grad_(),
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_oja_official_paints_what_the_official_loop_paints(seed: int) -> None:
    rule = get_rule("oja_official")
    logits = _logits(seed)
    expected = official_loop(*logits)
    for method in (rule.scan, rule.paint):
        frames = method(*rule.activate_sequence(*logits), frames=True)
        torch.testing.assert_close(frames.partials, expected, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(frames.image, expected[-1], rtol=1e-12, atol=1e-12)


def test_oja_official_gradients_match_the_official_loop() -> None:
    rule = get_rule("oja_official")
    logits = _logits(3)
    cotangent = torch.randn(2, 3, 5, 4, dtype=torch.float64)
    image = rule.scan(*rule.activate_sequence(*logits))
    actual = torch.autograd.grad((image * cotangent).sum(), logits)
    expected = torch.autograd.grad((official_loop(*logits)[-1] * cotangent).sum(), logits)
    for name, got, want in zip(["key", "value", "lr"], actual, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12, msg=f"d/d {name} logits")


def test_the_single_softmax_of_the_earlier_version_is_not_the_official_update() -> None:
    """softmax(k_raw - W^T v) (one softmax) paints a different image: the test above can fail."""
    key_logits, value_logits, lr_logits = (x.detach() for x in _logits(4))
    W = torch.zeros(2, 3, 5, 4, dtype=torch.float64)
    for t in range(key_logits.shape[2]):
        v = value_logits[:, :, t]
        corrected = key_logits[:, :, t] - torch.einsum("bchd,bch->bcd", W, v)
        k = torch.softmax(corrected, dim=-1)
        W = W + torch.einsum("bch,bcd->bchd", torch.sigmoid(lr_logits[:, :, t]) * v, k)
    official = official_loop(key_logits, value_logits, lr_logits)[-1]
    assert (W - official).abs().max() > 1e-2


def test_plain_oja_is_unchanged_by_the_official_variant() -> None:
    """The plain rule applies its softmax once, to the key logits: W += lr v (k - W^T v)^T."""
    rule = get_rule("oja")
    key_logits, value_logits, lr_logits = (x.detach() for x in _logits(5, B=1, C=1, T=3))
    K, V, LR = rule.activate_sequence(key_logits, value_logits, lr_logits)
    W = torch.zeros(5, 4, dtype=torch.float64)
    for t in range(3):
        v, k = V[0, 0, t], K[0, 0, t]
        W = W + LR[0, 0, t] * torch.outer(v, k - W.T @ v)
    torch.testing.assert_close(rule.scan(K, V, LR)[0, 0], W, rtol=1e-12, atol=1e-12)
