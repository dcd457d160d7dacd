"""Property tests of every registered learning rule, plugins included, and of each family.

The generic tests are parametrised over ``list_rules()`` at collection time, so a newly registered
rule (or an installed plugin) is tested automatically. Fast paths are compared with the scan in
test_fast_paths.py. The checks themselves live in :mod:`fwp.rules.testing` so that plugin authors
can run them on their own rules; the last tests here make sure those checks catch real bugs.
"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from fwp.rules import DeltaRule, HebbianRule, LearningRule, OjaRule, get_rule, list_rules
from fwp.rules import testing as rt

SPECS = list_rules()
ALL_RULES = [spec.name for spec in SPECS]
HEBBIAN = [s.name for s in SPECS if issubclass(s.cls, HebbianRule)]
DELTA = [s.name for s in SPECS if issubclass(s.cls, DeltaRule)]
OJA = [s.name for s in SPECS if issubclass(s.cls, OjaRule)]


def _creatable(name: str) -> LearningRule | None:
    try:
        return get_rule(name)
    except Exception:  # reported by test_every_rule_can_be_created
        return None


def _generic_cases() -> list:
    cases = []
    for name in ALL_RULES:
        rule = _creatable(name)
        if rule is None:
            continue
        for check in rt.applicable_checks(rule, families=False):
            if check == "fast_path_matches_scan":
                continue  # test_fast_paths.py, in float64 and float32, with and without W0
            cases.append(pytest.param(name, check, id=f"{name}-{check}"))
    return cases


@pytest.mark.parametrize("name", ALL_RULES)
def test_every_rule_can_be_created(name: str) -> None:
    rule = get_rule(name)
    assert isinstance(rule, LearningRule)
    assert rule.name == name
    assert rule.lr_size(7) >= 1


@pytest.mark.parametrize(("name", "check"), _generic_cases())
def test_generic_property(name: str, check: str) -> None:
    rt.run_check(name, check, max_examples=25)


@pytest.mark.parametrize("check", ["shapes_and_dtype", "finite_for_bounded_inputs"])
@pytest.mark.parametrize("name", ALL_RULES)
def test_generic_property_float32(name: str, check: str) -> None:
    rt.run_check(name, check, max_examples=10, dtype=torch.float32)


@pytest.mark.parametrize("name", ALL_RULES)
def test_fast_path_flag_matches_an_overridden_paint(name: str) -> None:
    """``has_fast_path`` is what the CLI shows: it must mean that ``paint`` is not the scan."""
    rule = get_rule(name)
    overridden = type(rule).paint is not LearningRule.paint
    if rule.has_fast_path:
        assert overridden, f"{name} declares has_fast_path but does not override paint"


def test_strategy_respects_its_bounds_and_the_rule_shapes() -> None:
    rule = get_rule("delta_rowlr")
    x = rt.make_rule_inputs(rule, batch=2, channels=3, steps=5, height=4, width=6, seed=3)
    assert x.shape == (2, 3, 5, 4, 6)
    assert x.LR.shape == (2, 3, 5, 4)
    assert x.W0 is not None and x.W0.abs().max() <= 1
    assert torch.allclose(x.K.sum(-1), torch.ones(2, 3, 5, dtype=torch.float64))  # softmax keys
    assert x.V.norm(dim=-1).max() <= 1.5 + 1e-12  # raw values, bounded logit norm
    assert x.LR.min() > 0 and x.LR.max() < 1
    again = rt.make_rule_inputs(rule, batch=2, channels=3, steps=5, height=4, width=6, seed=3)
    assert torch.equal(x.K, again.K) and torch.equal(x.LR, again.LR), "seeded: reproducible"
    assert "seed=3" in repr(x) and "make_rule_inputs('delta_rowlr'" in repr(x)
    assert x.to(torch.float32).K.dtype == torch.float32
    assert rt.make_rule_inputs("delta", with_w0=False).W0 is None
    official = rt.make_rule_inputs("delta_official", steps=3)
    assert torch.all(official.LR[:, :, 0] == 1), "activate_sequence is applied"


def test_applicable_checks_follow_the_rule_declarations() -> None:
    assert "zero_lr_identity" not in rt.applicable_checks("delta_gated")
    assert "zero_lr_identity" not in rt.applicable_checks("hebb_decay")
    assert "zero_lr_identity" in rt.applicable_checks("delta")
    assert "fast_path_matches_scan" not in rt.applicable_checks("oja")
    assert "hebbian_order_invariance" not in rt.applicable_checks("hebb_decay")
    assert "hebbian_linearity" in rt.applicable_checks("hebb_decay")
    assert {"delta_exact_recall", "delta_no_interference"} <= set(rt.applicable_checks("delta"))
    assert "oja_step_energy" not in rt.applicable_checks("oja_official")
    with pytest.raises(ValueError, match="zero_lr_is_identity = False"):
        rt.check_zero_lr_identity("delta_gated", rt.make_rule_inputs("delta_gated"))
    with pytest.raises(ValueError, match="unknown check 'nope'"):
        rt.run_check("delta", "nope")


# -- Hebbian ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [n for n in HEBBIAN if getattr(_creatable(n), "decay", 0) == 1])
def test_hebbian_order_invariance(name: str) -> None:
    rt.run_check(name, rt.check_additive_order_invariance, max_examples=25)


@pytest.mark.parametrize("name", HEBBIAN)
def test_hebbian_linearity(name: str) -> None:
    rt.run_check(name, rt.check_additive_linearity, max_examples=25)


def test_decaying_hebbian_is_not_order_invariant() -> None:
    x = rt.make_rule_inputs("hebb_decay", steps=4, seed=1)
    with pytest.raises(ValueError, match="decay"):
        rt.check_additive_order_invariance("hebb_decay", x)
    rule = get_rule("hebb_decay")
    reversed_ = rule.scan(x.K.flip(2), x.V.flip(2), x.LR.flip(2))
    assert not torch.allclose(reversed_, rule.scan(x.K, x.V, x.LR))


# -- delta -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", DELTA)
def test_delta_exact_recall(name: str) -> None:
    rt.run_check(name, rt.check_delta_exact_recall, max_examples=25)


@pytest.mark.parametrize("name", DELTA)
def test_delta_no_interference_between_orthogonal_keys(name: str) -> None:
    rt.run_check(name, rt.check_delta_no_interference, max_examples=25, min_size=2)


def test_delta_recall_by_hand() -> None:
    """The property in its plainest form: one write at a unit key, lr = 1."""
    rule = get_rule("delta")
    W = torch.randn(1, 1, 3, 4, dtype=torch.float64)
    k = torch.tensor([[[0.6, 0.0, 0.8, 0.0]]], dtype=torch.float64)
    v = torch.tensor([[[1.0, -2.0, 3.0]]], dtype=torch.float64)
    W1 = rule.step(W, k, v, torch.ones(1, 1, 1, dtype=torch.float64))
    torch.testing.assert_close(torch.einsum("bchd,bcd->bch", W1, k), v)
    k2 = torch.tensor([[[0.0, 1.0, 0.0, 0.0]]], dtype=torch.float64)
    W2 = rule.step(W1, k2, -v, torch.full((1, 1, 1), 0.3, dtype=torch.float64))
    torch.testing.assert_close(torch.einsum("bchd,bcd->bch", W2, k), v)


# -- Oja -------------------------------------------------------------------------------------------

PLAIN_OJA = [n for n in OJA if not getattr(_creatable(n), "activate_after_correction", True)]


@pytest.mark.parametrize("name", PLAIN_OJA)
def test_oja_step_energy_inequality(name: str) -> None:
    rt.run_check(name, rt.check_oja_step_energy, max_examples=25)


@pytest.mark.parametrize(("height", "width"), [(1, 1), (2, 1), (4, 3), (8, 8)])
@pytest.mark.parametrize("name", PLAIN_OJA)
def test_oja_rows_stay_bounded_for_orthonormal_values(name: str, height: int, width: int) -> None:
    rt.check_oja_rows_bounded(name, height=height, width=width, steps=500, seed=height * width)


@pytest.mark.parametrize(("height", "width"), [(2, 1), (3, 2), (8, 8), (4, 16)])
@pytest.mark.parametrize("name", PLAIN_OJA)
def test_oja_norm_stays_bounded_for_random_unit_values(name: str, height: int, width: int) -> None:
    rt.check_oja_norm_bounded(name, height=height, width=width, steps=500, seed=height + width)


def test_official_oja_is_excluded_from_the_bounds_because_it_grows() -> None:
    """W <- W + lr v softmax(k - W^T v)^T: writing the same unit v again and again adds lr to the
    sum of W^T v at every step (a softmax sums to 1), so |W| grows without bound."""
    rule = get_rule("oja_official")
    with pytest.raises(ValueError, match="applies its key activation after the correction"):
        rt.check_oja_norm_bounded(rule)
    W = torch.zeros(1, 1, 3, 4, dtype=torch.float64)
    v = torch.nn.functional.normalize(torch.ones(1, 1, 3, dtype=torch.float64), dim=-1)
    k = torch.randn(1, 1, 4, dtype=torch.float64)
    lr = torch.full((1, 1, 1), 0.5, dtype=torch.float64)
    for _ in range(100):
        W = rule.step(W, k, v, lr)
    assert torch.einsum("bchd,bch->bcd", W, v).sum().item() == pytest.approx(50.0)


# -- the checks catch bugs -------------------------------------------------------------------------


def _outer(a: Tensor, b: Tensor) -> Tensor:
    return torch.einsum("bch,bcd->bchd", a, b)


class _LeakyGradient(DeltaRule):
    """Fast path with the right values but a wrong gradient."""

    def paint(self, K, V, LR, W0=None, frames=False):
        out = super().paint(K, V, LR, W0=W0, frames=frames)
        return out if frames else out.detach() + 0.999 * (out - out.detach())


class _WrongFrames(HebbianRule):
    """Right image, wrong first update."""

    def paint(self, K, V, LR, W0=None, frames=False):
        out = super().paint(K, V, LR, W0=W0, frames=frames)
        if frames:
            out.updates[0] += 0.1
        return out


class _InPlace(HebbianRule):
    """Updates W in place."""

    has_fast_path = False
    paint = LearningRule.paint

    def step(self, W, k, v, lr):
        return W.add_(_outer(lr * v, k))


class _WrongDtype(HebbianRule):
    def step(self, W, k, v, lr):
        return super().step(W, k, v, lr).float()


class _Forgetful(HebbianRule):
    """Decays W although it declares zero_lr_is_identity."""

    paint = LearningRule.paint

    def step(self, W, k, v, lr):
        return super().step(W * 0.9, k, v, lr)


class _HalfDelta(DeltaRule):
    """Subtracts only half of the recalled value."""

    paint = LearningRule.paint

    def step(self, W, k, v, lr):
        return W + _outer(lr * (v - 0.5 * torch.einsum("bchd,bcd->bch", W, k)), k)


class _Leaky(DeltaRule):
    """Writes a little into every column."""

    paint = LearningRule.paint

    def step(self, W, k, v, lr):
        return super().step(W, k, v, lr) + 1e-3 * _outer(v, torch.ones_like(k))


class _Exploding(HebbianRule):
    paint = LearningRule.paint

    def step(self, W, k, v, lr):
        return super().step(W, k, v, lr) * 1e300


class _GrowingOja(OjaRule):
    def step(self, W, k, v, lr):
        return super().step(W, k, v, lr) * 1.01


BUGGY_RULES = [
    (_LeakyGradient(), "fast_path_matches_scan", "gradient w.r.t. K"),
    (_WrongFrames(), "fast_path_matches_scan", "frames.updates"),
    (_InPlace(), "inputs_not_mutated", "returned W itself"),
    (_WrongDtype(), "shapes_and_dtype", "dtype torch.float32 instead of torch.float64"),
    (_Forgetful(), "zero_lr_identity", "lr = 0"),
    (_Forgetful(), "hebbian_order_invariance", "time permuted"),
    (_HalfDelta(), "delta_exact_recall", "recall W' k"),
    (_Leaky(), "delta_no_interference", "k2 ⟂ k1"),
    (_Exploding(), "finite_for_bounded_inputs", "non-finite"),
    (_GrowingOja(), "oja_step_energy", "energy inequality"),
]


@pytest.mark.parametrize(
    ("rule", "check", "message"),
    [pytest.param(*case, id=f"{type(case[0]).__name__}-{case[1]}") for case in BUGGY_RULES],
)
def test_checks_catch_known_bugs(rule: LearningRule, check: str, message: str) -> None:
    """Called directly on a few fixed inputs (run_check would also shrink, which takes long)."""
    check_fn = {**rt.GENERIC_CHECKS, **{n: c for n, (_, _, c) in rt.FAMILY_CHECKS.items()}}[check]
    for seed in range(3):
        x = rt.make_rule_inputs(rule, batch=2, channels=2, steps=4, height=3, width=4, seed=seed)
        with pytest.raises(AssertionError, match=message) as info:
            check_fn(rule, x)
        assert f"seed={seed}" in str(info.value), "the failure names reproducible inputs"


def test_oja_bounds_catch_a_growing_rule() -> None:
    with pytest.raises(AssertionError, match="row of Q\\^T W has norm"):
        rt.check_oja_rows_bounded(_GrowingOja(), height=4, width=3, steps=50)


def test_run_rule_checks_reports_the_failing_check() -> None:
    with pytest.raises(AssertionError, match="check 'fast_path_matches_scan' failed"):
        rt.run_rule_checks(
            _LeakyGradient(), max_examples=2, dtypes=(torch.float64,), max_steps=2, max_size=2
        )


def test_run_rule_checks_on_a_built_in_name() -> None:
    ran = rt.run_rule_checks("oja", max_examples=3)
    assert {"shapes_and_dtype", "oja_step_energy", "oja_norm_bounded"} <= set(ran)
    assert "fast_path_matches_scan" not in ran
