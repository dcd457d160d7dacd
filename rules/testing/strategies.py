"""The hypothesis strategy over rule inputs: shapes and seeds for :func:`make_rule_inputs`."""

from __future__ import annotations

import torch
from hypothesis import strategies as st

from .inputs import RuleInputs, RuleLike, make_rule_inputs, resolve_rule


def rule_inputs(
    rule: RuleLike,
    dtype: torch.dtype = torch.float64,
    max_batch: int = 3,
    max_channels: int = 3,
    max_steps: int = 8,
    max_size: int = 8,
    *,
    min_size: int = 1,
    with_w0: bool | None = None,
    device: torch.device | str | None = None,
    logit_norm: float = 1.5,
    lr_logit_bound: float = 4.0,
) -> st.SearchStrategy[RuleInputs]:
    """Hypothesis strategy of :class:`~fwp.rules.testing.RuleInputs` for ``rule``.

    Hypothesis draws the shapes (B in [1, max_batch], C in [1, max_channels], T in
    [1, max_steps], H and Wd in [min_size, max_size]), whether there is a W0 (unless
    ``with_w0`` fixes it) and a seed; :func:`make_rule_inputs` makes the tensors from the seed,
    which is much faster than drawing every float and still shrinks to small shapes.
    """
    rule = resolve_rule(rule)
    return st.builds(
        make_rule_inputs,
        st.just(rule),
        batch=st.integers(1, max_batch),
        channels=st.integers(1, max_channels),
        steps=st.integers(1, max_steps),
        height=st.integers(min_size, max_size),
        width=st.integers(min_size, max_size),
        seed=st.integers(0, 2**32 - 1),
        with_w0=st.booleans() if with_w0 is None else st.just(with_w0),
        dtype=st.just(dtype),
        device=st.just(device),
        logit_norm=st.just(logit_norm),
        lr_logit_bound=st.just(lr_logit_bound),
    )
