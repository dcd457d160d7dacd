"""The rule registry (register / get / list / override) and the rule contract's error messages."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch import Tensor

from fwp.rules import (
    DeltaRule,
    HebbianRule,
    LearningRule,
    OjaRule,
    RuleSpec,
    get_rule,
    get_spec,
    list_rules,
    register_rule,
    unregister_rule,
)
from fwp.rules.registry import _REGISTRY

BUILT_IN = {
    "delta": DeltaRule,
    "delta_gated": DeltaRule,
    "delta_l2": DeltaRule,
    "delta_official": DeltaRule,
    "delta_raw": DeltaRule,
    "delta_rowlr": DeltaRule,
    "hebb": HebbianRule,
    "hebb_decay": HebbianRule,
    "hebb_rowlr": HebbianRule,
    "hebb_sum": HebbianRule,
    "oja": OjaRule,
    "oja_official": OjaRule,
    "oja_bounded": OjaRule,
}


@pytest.fixture
def scratch_registry() -> Iterator[None]:
    """Remove every registration a test adds and restore any it replaces."""
    before = dict(_REGISTRY)
    yield
    for name in set(_REGISTRY) - set(before):
        unregister_rule(name)
    _REGISTRY.update(before)


class ScaledHebb(LearningRule):
    """A test rule: W <- W + 2 lr v k^T."""

    family = "test-scaled"

    def __init__(self, scale: float = 2.0) -> None:
        self.scale = scale

    def step(self, W: Tensor, k: Tensor, v: Tensor, lr: Tensor) -> Tensor:
        return W + self.scale * torch.einsum("bch,bcd->bchd", lr * v, k)


class WrongShape(LearningRule):
    """A broken plugin: step drops the last column."""

    family = "test-broken"

    def step(self, W: Tensor, k: Tensor, v: Tensor, lr: Tensor) -> Tensor:
        return W[..., :-1]


def _sequence(rule: LearningRule, B=2, C=3, T=4, H=5, Wd=6, dtype=torch.float32):
    K = torch.rand(B, C, T, Wd, dtype=dtype)
    V = torch.rand(B, C, T, H, dtype=dtype)
    LR = torch.rand(B, C, T, rule.lr_size(H), dtype=dtype)
    return K, V, LR


# -- built-ins, lookup and listing ----------------------------------------------------------------


def test_built_in_rules_are_registered_with_their_family() -> None:
    specs = {spec.name: spec for spec in list_rules()}
    for name, cls in BUILT_IN.items():
        assert name in specs, f"built-in rule {name!r} is not registered"
        assert specs[name].cls is cls
        assert specs[name].origin == "built-in"
        assert specs[name].description
        assert specs[name].family == cls.family


def test_list_rules_is_sorted_and_filters_by_pattern() -> None:
    names = [spec.name for spec in list_rules()]
    assert names == sorted(names)
    assert {s.name for s in list_rules("delta*")} >= {
        "delta",
        "delta_gated",
        "delta_l2",
        "delta_official",
        "delta_raw",
        "delta_rowlr",
    }
    assert all(s.name.startswith("delta") for s in list_rules("delta*"))
    assert {s.name for s in list_rules("*oja*")} >= {"oja", "oja_official"}
    assert [s.name for s in list_rules("hebb_?um")] == ["hebb_sum"]
    assert list_rules("no_such_rule_*") == []


def test_get_rule_applies_the_registered_configuration() -> None:
    rule = get_rule("delta_rowlr")
    assert isinstance(rule, DeltaRule)
    assert rule.name == "delta_rowlr"
    assert rule.per_row_lr and rule.lr_size(7) == 7
    assert get_rule("delta").lr_size(7) == 1
    assert get_rule("delta_gated").lr_size(7) == 2
    assert get_rule("hebb_decay").decay == 0.9
    assert get_rule("oja_official").activate_after_correction


def test_get_rule_overrides_update_the_configuration() -> None:
    rule = get_rule("hebb_decay", decay=0.5)
    assert rule.decay == 0.5 and rule.name == "hebb_decay"
    assert get_rule("hebb_decay").decay == 0.9, "an override must not change the registration"
    assert get_rule("delta", per_row_lr=True).lr_size(5) == 5


def test_each_get_rule_returns_a_fresh_instance() -> None:
    assert get_rule("delta") is not get_rule("delta")


def test_unknown_name_lists_close_matches() -> None:
    with pytest.raises(ValueError, match=r"unknown learning rule 'detla'") as info:
        get_rule("detla")
    message = str(info.value)
    assert "Did you mean" in message and "delta" in message
    assert "fwp rules" in message
    assert "fwp --plugin FILE_OR_MODULE" in message, "an unknown rule may be an unloaded plugin"
    with pytest.raises(ValueError, match="unknown learning rule"):
        get_spec("zzzzzzzz")


def test_bad_configuration_is_a_value_error_naming_the_rule() -> None:
    with pytest.raises(
        ValueError, match=r"^rule 'delta' has no option 'no_such_option'; its"
    ) as info:
        get_rule("delta", no_such_option=1)
    assert "per_row_lr (default False): one learning rate per row" in str(info.value)
    with pytest.raises(ValueError, match=r"unknown key activation 'bogus'.*softmax"):
        get_rule("delta", key_activation="bogus")
    with pytest.raises(ValueError, match=r"decay must be in \(0, 1\]"):
        get_rule("hebb", decay=1.5)
    with pytest.raises(ValueError, match="gated delta rule takes a scalar rate"):
        get_rule("delta_gated", per_row_lr=True)


# -- registering -----------------------------------------------------------------------------------


@pytest.mark.usefixtures("scratch_registry")
def test_register_a_family_and_a_variant() -> None:
    register_rule("test_scaled")(ScaledHebb)
    register_rule("test_scaled_3", scale=3.0, description="three times")(ScaledHebb)
    spec = get_spec("test_scaled")
    assert isinstance(spec, RuleSpec)
    assert spec.description == "A test rule: W <- W + 2 lr v k^T."
    assert spec.family == "test-scaled"
    assert spec.origin == f"module {__name__}"
    assert not spec.has_fast_path
    assert get_rule("test_scaled_3").scale == 3.0
    assert get_spec("test_scaled_3").description == "three times"
    assert {"test_scaled", "test_scaled_3"} <= {s.name for s in list_rules("test_*")}
    unregister_rule("test_scaled")
    assert "test_scaled" not in {s.name for s in list_rules()}


@pytest.mark.usefixtures("scratch_registry")
def test_duplicate_name_is_refused_naming_both_origins() -> None:
    with pytest.raises(ValueError) as info:
        register_rule("delta")(ScaledHebb)
    message = str(info.value)
    assert "'delta' is already registered by built-in" in message
    assert "fwp.rules.delta.DeltaRule" in message
    assert f"module {__name__}" in message and "ScaledHebb" in message
    assert "override=True" in message
    assert get_spec("delta").cls is DeltaRule, "a refused registration must change nothing"


@pytest.mark.usefixtures("scratch_registry")
def test_override_replaces_a_registration() -> None:
    register_rule("test_twice")(ScaledHebb)
    with pytest.raises(ValueError, match="already registered"):
        register_rule("test_twice", scale=5.0)(ScaledHebb)
    register_rule("test_twice", scale=5.0, override=True)(ScaledHebb)
    assert get_rule("test_twice").scale == 5.0
    register_rule("delta", override=True, description="replaced")(ScaledHebb)
    assert isinstance(get_rule("delta"), ScaledHebb)


def test_override_of_a_built_in_did_not_leak() -> None:
    assert get_spec("delta").cls is DeltaRule


@pytest.mark.parametrize("bad", ["", "two words", "tab\there"])
def test_invalid_names_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="non-empty word without spaces"):
        register_rule(bad)


def test_registering_a_non_rule_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="expects a LearningRule subclass"):
        register_rule("test_not_a_rule")(int)  # type: ignore[arg-type]
    assert "test_not_a_rule" not in {s.name for s in list_rules()}


def test_unregister_of_an_unknown_name_is_a_no_op() -> None:
    before = dict(_REGISTRY)
    assert unregister_rule("never_registered_anywhere") is None
    after = dict(_REGISTRY)
    assert after == before, "unregistering an unknown name must leave every rule registered"
    with pytest.raises(ValueError, match="unknown learning rule 'never_registered_anywhere'"):
        get_spec("never_registered_anywhere")


# -- the contract's errors -------------------------------------------------------------------------


def test_checked_step_names_the_bad_argument_and_its_expected_shape() -> None:
    rule = get_rule("delta")
    W = torch.zeros(2, 3, 5, 6)
    k, v, lr = torch.rand(2, 3, 6), torch.rand(2, 3, 5), torch.rand(2, 3, 1)
    assert rule.checked_step(W, k, v, lr).shape == W.shape
    with pytest.raises(ValueError, match=r"^k must have shape \(2, 3, 6\).*got \(2, 3, 5\)"):
        rule.checked_step(W, torch.rand(2, 3, 5), v, lr)
    with pytest.raises(ValueError, match=r"^v must have shape \(2, 3, 5\).*got \(2, 3, 6\)"):
        rule.checked_step(W, k, torch.rand(2, 3, 6), lr)
    with pytest.raises(ValueError, match=r"^lr must have shape \(2, 3, 1\).*'delta'"):
        rule.checked_step(W, k, v, torch.rand(2, 3, 5))
    with pytest.raises(ValueError, match=r"^lr must have shape \(2, 3, 5\).*'delta_rowlr'"):
        get_rule("delta_rowlr").checked_step(W, k, v, lr)
    with pytest.raises(ValueError, match=r"^W must have shape \(B, C, H, Wd\)"):
        rule.checked_step(W[0], k, v, lr)
    with pytest.raises(ValueError, match=r"^v must have the dtype of W \(torch.float32\)"):
        rule.checked_step(W, k, v.double(), lr)
    with pytest.raises(ValueError, match="W must be a floating-point tensor"):
        rule.checked_step(W.long(), k, v, lr)


@pytest.mark.parametrize("method", ["scan", "paint"])
def test_sequence_methods_name_the_bad_argument(method: str) -> None:
    rule = get_rule("delta")
    paint = getattr(rule, method)
    K, V, LR = _sequence(rule)
    assert paint(K, V, LR).shape == (2, 3, 5, 6)
    with pytest.raises(ValueError, match=r"^K must have shape \(B, C, T, Wd\)"):
        paint(K[0], V, LR)
    with pytest.raises(ValueError, match=r"^V must have shape \(2, 3, 4, H\) to match K"):
        paint(K, V[:, :, :3], LR)
    with pytest.raises(ValueError, match=r"^LR must have shape \(2, 3, 4, 1\).*got \(2, 3, 4, 5\)"):
        paint(K, V, torch.rand(2, 3, 4, 5))
    with pytest.raises(ValueError, match=r"^W0 must have shape \(2, 3, 5, 6\)"):
        paint(K, V, LR, W0=torch.zeros(2, 3, 6, 5))
    with pytest.raises(ValueError, match=r"^LR must have the dtype of K \(torch.float32\)"):
        paint(K, V, LR.double())
    with pytest.raises(ValueError, match=r"^W0 must have the dtype of K"):
        paint(K, V, LR, W0=torch.zeros(2, 3, 5, 6, dtype=torch.float64))
    with pytest.raises(ValueError, match="K must be a floating-point tensor"):
        paint(K.long(), V, LR)


def test_gated_rule_expects_two_rate_logits() -> None:
    rule = get_rule("delta_gated")
    K, V, _ = _sequence(rule)
    with pytest.raises(ValueError, match=r"^LR must have shape \(2, 3, 4, 2\).*'delta_gated'"):
        rule.paint(K, V, torch.rand(2, 3, 4, 1))


@pytest.mark.usefixtures("scratch_registry")
def test_plugin_step_with_a_wrong_shape_is_reported_by_name() -> None:
    register_rule("test_wrong_shape")(WrongShape)
    rule = get_rule("test_wrong_shape")
    K, V, LR = _sequence(rule)
    for call in (lambda: rule.scan(K, V, LR), lambda: rule.paint(K, V, LR, frames=True)):
        with pytest.raises(ValueError) as info:
            call()
        message = str(info.value)
        assert "rule 'test_wrong_shape'" in message
        assert "WrongShape" in message
        assert "(2, 3, 5, 5)" in message and "(2, 3, 5, 6)" in message


def test_step_is_abstract_in_the_base_class() -> None:
    with pytest.raises(NotImplementedError):
        LearningRule().step(
            torch.zeros(1, 1, 2, 2),
            torch.zeros(1, 1, 2),
            torch.zeros(1, 1, 2),
            torch.zeros(1, 1, 1),
        )
