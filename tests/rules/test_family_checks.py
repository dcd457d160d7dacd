"""Family checks are declared by each family and found by its name, never by class inspection."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
import torch

from fwp.rules import HebbianRule, LearningRule, OjaRule
from fwp.rules import testing as rt

TINY = dict(max_examples=2, max_steps=2, max_size=2, dtypes=(torch.float64,), quiet=True)


@pytest.fixture
def scratch_checks() -> Iterator[None]:
    before = dict(rt.FAMILY_CHECKS), dict(rt.FAMILY_RUN_CHECKS)
    yield
    for table, saved in zip((rt.FAMILY_CHECKS, rt.FAMILY_RUN_CHECKS), before, strict=True):
        table.clear()
        table.update(saved)


class Tripling(LearningRule):
    """A plugin family: W <- W + 3 lr v k^T."""

    family = "test-tripling"

    def step(self, W, k, v, lr):
        return W + 3 * torch.einsum("bch,bcd->bchd", lr * v, k)


class LooksHebbian(LearningRule):
    """Declares the hebbian family without being a HebbianRule: it has no ``decay``."""

    family = "hebbian"

    def step(self, W, k, v, lr):
        return W + torch.einsum("bch,bcd->bchd", lr * v, k)


def test_the_built_in_families_declare_their_checks() -> None:
    per_input, whole_run = rt.checks_for_family("hebbian")
    assert set(per_input) == {"hebbian_order_invariance", "hebbian_linearity"} and not whole_run
    per_input, whole_run = rt.checks_for_family("delta")
    assert set(per_input) == {"delta_exact_recall", "delta_no_interference"}
    per_input, whole_run = rt.checks_for_family("oja")
    assert set(per_input) == {"oja_step_energy"}
    assert set(whole_run) == {"oja_rows_bounded", "oja_norm_bounded"}
    assert rt.FAMILY_CHECKS["hebbian_order_invariance"].applies is rt.NO_DECAY
    assert rt.checks_for_family("no-such-family") == ({}, {})


@pytest.mark.usefixtures("scratch_checks")
def test_a_plugin_family_declares_a_check_and_the_runner_runs_it() -> None:
    seen: list[tuple[str, int]] = []

    @rt.family_check("test-tripling", "tripling_is_three_hebbian_steps")
    def check_three_times(rule: LearningRule, inputs: rt.RuleInputs) -> None:
        seen.append((rule.name, inputs.seed))
        hebbian = HebbianRule(key_activation="identity", lr_activation="identity")
        expected = 3 * hebbian.scan(inputs.K, inputs.V, inputs.LR) + inputs.initial()
        rt.assert_close(
            rule.scan(inputs.K, inputs.V, inputs.LR, W0=inputs.W0),
            expected,
            1e-9,
            "three Hebbian writes",
        )

    report = rt.run_rule_checks(Tripling(), **TINY)
    assert "tripling_is_three_hebbian_steps" in report
    assert {run.scope for run in report.ran if run.name.startswith("tripling")} == {"test-tripling"}
    assert 1 <= len(seen) <= 2, "one call per hypothesis example, max_examples=2"
    assert "tripling_is_three_hebbian_steps" not in rt.run_rule_checks(HebbianRule(), **TINY)


@pytest.mark.usefixtures("scratch_checks")
def test_a_requirement_declared_with_the_check_decides_and_explains_a_skip() -> None:
    never = rt.Requirement("a configuration no rule has", lambda rule: f"{rule.name} is plain")
    rt.register_family_check(
        "test-tripling", "tripling_never", lambda rule, x: None, requires=never
    )
    rt.register_family_check(
        "test-tripling", "tripling_whole_run", lambda rule: None, whole_run=True
    )
    plan = rt.plan_checks(Tripling())
    assert "tripling_never" not in plan.per_input
    assert [(s.name, s.reason) for s in plan.skipped if s.scope == "test-tripling"] == [
        ("tripling_never", "unregistered is plain")
    ]
    assert "tripling_whole_run" in plan.whole_run
    report = rt.run_rule_checks(Tripling(), **TINY)
    assert "tripling_whole_run" in report and "tripling_never" in report.skipped_names


@pytest.mark.usefixtures("scratch_checks")
def test_check_names_are_unique_across_families_unless_overridden() -> None:
    with pytest.raises(ValueError, match="'hebbian_linearity' is already registered for family"):
        rt.register_family_check("test-tripling", "hebbian_linearity", lambda rule, x: None)
    rt.register_family_check(
        "test-tripling", "hebbian_linearity", lambda rule, x: None, override=True
    )
    assert rt.FAMILY_CHECKS["hebbian_linearity"].family == "test-tripling"
    rt.unregister_family_check("hebbian_linearity")
    assert "hebbian_linearity" not in rt.checks_for_family("hebbian")[0]


def test_subclasses_keep_their_family_checks_and_the_family_name_decides() -> None:
    class SlowOja(OjaRule):
        pass

    class Renamed(OjaRule):
        family = "test-renamed-oja"

    assert "oja_step_energy" in rt.applicable_checks(SlowOja())
    assert "oja_step_energy" not in rt.applicable_checks(Renamed())


def test_a_family_check_called_explicitly_on_a_rule_of_another_family_still_runs() -> None:
    """A plugin's own additive rule may use the Hebbian laws: the family's requirements tell
    configurations of *their* family apart and do not refuse other rules."""
    assert rt.NO_DECAY(Tripling()) and rt.PLAIN_OJA(Tripling())
    rt.run_check(Tripling(), rt.check_additive_order_invariance, max_examples=3)
    rt.run_check(Tripling(), rt.check_additive_linearity, max_examples=3)
    with pytest.raises(AssertionError, match=r"recall W' k"):
        rt.check_delta_exact_recall(Tripling(), rt.make_rule_inputs(Tripling(), seed=1))


def test_a_class_that_borrows_a_family_name_gets_a_clear_error() -> None:
    with pytest.raises(TypeError, match=r"cannot be checked for 'decay == 1'.*must subclass"):
        rt.plan_checks(LooksHebbian())


def test_the_rules_import_without_hypothesis_and_the_testing_package_says_what_is_missing() -> None:
    script = (
        "import sys\n"
        "sys.modules['hypothesis'] = None\n"
        "import fwp.rules, fwp.rules.hebbian, fwp.rules.delta, fwp.rules.oja\n"
        "fwp.rules.get_rule('delta')\n"
        "try:\n"
        "    import fwp.rules.testing\n"
        "except ImportError as err:\n"
        "    print('refused:', err)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    assert "refused: fwp.rules.testing needs hypothesis" in out and "fwp[dev]" in out
