"""Every fast path (``paint``) against the reference scan over ``step``: values and gradients.

Parametrised over the registered rules that declare a fast path, so a new rule or plugin with a
``paint`` of its own is compared automatically: float64 with a tight tolerance, float32 with a
loose one, with and without W0, with and without frames. The paper's size (T = 64, 64 x 64) is
checked in float32 for the rules the painter uses most.
"""

from __future__ import annotations

import pytest
import torch
from einops import einsum

from fwp.rules import get_rule, list_rules
from fwp.rules import testing as rt
from fwp.rules.base import frames_from_updates
from fwp.rules.delta import _per_row_updates

FAST = [spec.name for spec in list_rules() if spec.has_fast_path]
DTYPES = [pytest.param(torch.float64, id="float64"), pytest.param(torch.float32, id="float32")]
W0S = [pytest.param(False, id="zeros"), pytest.param(True, id="W0")]


def test_the_built_in_fast_paths_are_all_covered() -> None:
    assert {"delta", "delta_gated", "delta_rowlr", "delta_official", "hebb", "hebb_decay"} <= set(
        FAST
    )


@pytest.mark.parametrize("with_w0", W0S)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", FAST)
def test_fast_path_matches_scan(name: str, dtype: torch.dtype, with_w0: bool) -> None:
    """Values, gradients w.r.t. K, V, LR (and W0), and frames; rtol 1e-9 (f64) / 1e-4 (f32)."""
    rt.run_check(
        name, rt.check_fast_path_matches_scan, max_examples=12, dtype=dtype, with_w0=with_w0
    )


@pytest.mark.parametrize("name", FAST)
def test_fast_path_single_step_and_single_pixel(name: str) -> None:
    """The smallest cases: T = 1, and 1 x 1 images."""
    for shape in [dict(steps=1, height=3, width=4), dict(steps=5, height=1, width=1)]:
        x = rt.make_rule_inputs(name, batch=2, channels=2, seed=7, **shape)
        rt.check_fast_path_matches_scan(name, x)


@pytest.mark.parametrize("name", ["delta", "delta_rowlr", "delta_gated", "hebb"])
def test_fast_path_at_the_papers_size_float32(name: str) -> None:
    """T = 64 steps, 64 x 64, B = 2, C = 3, float32 (observed errors are about 1e-6).

    The key logits are large (norm up to 16) so that softmax keys are peaked as in a trained
    painter and the delta rule's W k term matters.
    """
    x = rt.make_rule_inputs(
        name,
        batch=2,
        channels=3,
        steps=64,
        height=64,
        width=64,
        seed=0,
        dtype=torch.float32,
        logit_norm=16.0,
    )
    with rt.single_thread():
        rt.check_fast_path_matches_scan(name, x, rtol=1e-4)


def test_fast_path_detects_a_difference_at_float64_tolerance() -> None:
    """The tolerance is tight enough to see a 1e-7 relative change of the rates."""
    rule = get_rule("delta")
    x = rt.make_rule_inputs(rule, batch=2, channels=2, steps=6, height=4, width=5, seed=1)
    nudged = x.replace(LR=x.LR * (1 + 1e-7))
    out = rule.paint(nudged.K, nudged.V, nudged.LR, W0=nudged.W0)
    with pytest.raises(AssertionError, match=r"exceeds 1\.0e-09"):
        rt.assert_close(out, rule.scan(x.K, x.V, x.LR, W0=x.W0), 1e-9, "nudged")


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("steps", [1, 7, 12])
@pytest.mark.parametrize("with_w0", W0S)
def test_per_row_chunks_match_the_scan(chunk: int, steps: int, with_w0: bool) -> None:
    """The per-row rate's chunked path for every chunk size, with T padded when the chunk does
    not divide it: values, frames and gradients (float64, rtol 1e-9)."""
    rule = get_rule("delta_rowlr")
    x = rt.make_rule_inputs(
        rule, batch=2, channels=2, steps=steps, height=4, width=5, seed=3, with_w0=with_w0
    )
    leaves = [t.detach().requires_grad_() for t in (x.K, x.V, x.LR)]
    if x.W0 is not None:
        leaves.append(x.W0.detach().requires_grad_())
    W0 = leaves[3] if x.W0 is not None else None
    expected = rule.scan(*leaves[:3], W0=W0)
    U = _per_row_updates(*leaves[:3], W0, chunk=chunk)
    frames = frames_from_updates(einsum(U, leaves[0], "b c t h, b c t d -> t b c h d"), W0)
    actual = frames.image
    rt.assert_close(actual, expected, 1e-9, f"chunk {chunk} image")
    cotangent = torch.randn(expected.shape, dtype=expected.dtype)
    for name, grad, reference in zip(
        ["K", "V", "LR", "W0"],
        torch.autograd.grad(actual, leaves, cotangent),
        torch.autograd.grad(expected, leaves, cotangent),
        strict=False,
    ):
        rt.assert_close(grad, reference, 1e-9, f"chunk {chunk} gradient of {name}")
    reference_frames = rule.scan(*leaves[:3], W0=W0, frames=True)
    rt.assert_close(frames.partials, reference_frames.partials, 1e-9, f"chunk {chunk} partials")
    rt.assert_close(frames.updates, reference_frames.updates, 1e-9, f"chunk {chunk} updates")
