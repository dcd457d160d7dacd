"""Activation names: "identity" and "one" say what they do; the older "none" keeps working."""

from __future__ import annotations

import pytest
import torch

from fwp.rules import get_rule
from fwp.rules.activations import (
    RATE_ACTIVATIONS,
    VECTOR_ACTIVATIONS,
    rate_activation,
    vector_activation,
)

LOGITS = torch.tensor([[-2.0, 0.5, 3.0]])


def test_vector_identity_returns_the_logits_and_none_is_its_alias() -> None:
    assert torch.equal(vector_activation("identity")(LOGITS), LOGITS)
    assert torch.equal(vector_activation("none")(LOGITS), LOGITS)
    assert "none" not in VECTOR_ACTIVATIONS, "the table lists the explicit names only"


def test_rate_one_ignores_the_logits_and_none_is_its_alias() -> None:
    assert torch.equal(rate_activation("one")(LOGITS), torch.ones_like(LOGITS))
    assert torch.equal(rate_activation("none")(LOGITS), torch.ones_like(LOGITS))
    assert torch.equal(rate_activation("identity")(LOGITS), LOGITS)
    assert "none" not in RATE_ACTIVATIONS


def test_unknown_names_list_the_choices_and_the_older_names() -> None:
    with pytest.raises(
        ValueError, match=r"unknown value activation 'raw'; choose one of: "
    ) as info:
        get_rule("delta", value_activation="raw")
    message = str(info.value)
    assert "identity" in message and "'none' means 'identity'" in message
    with pytest.raises(ValueError, match=r"'none' means 'one'"):
        get_rule("hebb", lr_activation="ones")


def test_an_old_vector_configuration_paints_the_same_image() -> None:
    K, V, LR = torch.randn(1, 2, 5, 4), torch.randn(1, 2, 5, 3), torch.randn(1, 2, 5, 1)
    before = get_rule("delta", key_activation="none", value_activation="none")
    after = get_rule("delta", key_activation="identity", value_activation="identity")
    assert torch.equal(
        before.scan(*before.activate_sequence(K, V, LR)),
        after.scan(*after.activate_sequence(K, V, LR)),
    )


def test_the_sum_baseline_uses_a_rate_of_one_and_old_configs_match_it() -> None:
    rule = get_rule("hebb_sum")
    _, _, rates = rule.activate(torch.zeros(1, 1, 4), torch.zeros(1, 1, 3), LOGITS[:, :1, None])
    assert torch.equal(rates, torch.ones(1, 1, 1))
    assert get_rule("hebb_sum").lr_fn is get_rule("hebb", lr_activation="none").lr_fn
