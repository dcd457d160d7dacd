"""Property checks for learning rules: hypothesis strategies, plain check functions, a runner.

Everything here works on *any* rule: an instance of :class:`~fwp.rules.base.LearningRule` or the
name of a registered rule (built-in or plugin). A plugin author runs every applicable check with
one call::

    from fwp.rules.testing import run_rule_checks

    def test_my_rule():
        report = run_rule_checks("my_rule")          # or run_rule_checks(MyRule())
        assert "fast_path_matches_scan" in report    # the names of the checks that ran

:func:`run_rule_checks` prints a short summary (``quiet=True`` turns it off) and returns a
:class:`RuleCheckReport`: which checks ran, in which dtypes, which were skipped and why.

The pieces, one module each:

- :mod:`~fwp.rules.testing.inputs`: :func:`make_rule_inputs` builds one reproducible batch of
  *activated* inputs (the rule's own ``activate_sequence`` applied to bounded random logits);
  :mod:`~fwp.rules.testing.strategies`: :func:`rule_inputs`, the hypothesis strategy over its
  shapes and seeds;
- :mod:`~fwp.rules.testing.compare`: :func:`assert_close`, :func:`default_rtol` and helpers;
- :mod:`~fwp.rules.testing.generic`: checks of every rule, each ``check(rule, inputs)`` raising
  ``AssertionError`` with a clear message: :func:`check_shapes_and_dtype`,
  :func:`check_inputs_not_mutated`, :func:`check_finite_for_bounded_inputs`,
  :func:`check_zero_lr_identity`, :func:`check_fast_path_matches_scan`,
  :func:`check_frames_consistent`;
- family checks, declared by each family with :func:`family_check` and a :class:`Requirement`
  (:mod:`~fwp.rules.testing.family_registry`): :func:`check_additive_order_invariance`,
  :func:`check_additive_linearity` (hebbian), :func:`check_delta_exact_recall`,
  :func:`check_delta_no_interference` (delta), :func:`check_oja_step_energy`,
  :func:`check_oja_rows_bounded`, :func:`check_oja_norm_bounded` (oja);
- :mod:`~fwp.rules.testing.runner`: :func:`run_check` runs one check under hypothesis,
  :func:`run_rule_checks` runs them all; :mod:`~fwp.rules.testing.report`: its report.

A new family adds its laws beside its other checks::

    from fwp.rules.testing import family_check

    @family_check("my-family", "my_family_law")
    def check_my_family_law(rule, inputs): ...

and every rule whose class declares ``family = "my-family"`` gets it from :func:`run_rule_checks`.

Tolerances are *norm-relative*: ``max|actual - expected| <= rtol * max(1, max|expected|)``, with
``rtol`` 1e-9 in float64 and 1e-4 in float32 by default (:func:`default_rtol`).

This package needs ``hypothesis`` (``pip install 'fwp[dev]'``); the rules themselves do not.
"""

from __future__ import annotations

try:
    import hypothesis  # noqa: F401
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError(
        "fwp.rules.testing needs hypothesis; install it with `pip install 'fwp[dev]'` "
        "or `pip install hypothesis`"
    ) from err

from . import delta_checks, hebbian_checks, oja_checks  # noqa: F401  (declare the family checks)
from .compare import (
    Check,
    RunCheck,
    assert_close,
    default_rtol,
    describe_case,
    has_parallel_paint,
    single_thread,
)
from .delta_checks import check_delta_exact_recall, check_delta_no_interference
from .family_registry import (
    ANY_RULE,
    FAMILY_CHECKS,
    FAMILY_RUN_CHECKS,
    FamilyCheck,
    Requirement,
    checks_for_family,
    family_check,
    register_family_check,
    unregister_family_check,
)
from .generic import (
    GENERIC_CHECKS,
    GENERIC_REQUIREMENTS,
    check_fast_path_matches_scan,
    check_finite_for_bounded_inputs,
    check_frames_consistent,
    check_inputs_not_mutated,
    check_shapes_and_dtype,
    check_zero_lr_identity,
)
from .hebbian_checks import NO_DECAY, check_additive_linearity, check_additive_order_invariance
from .inputs import RuleInputs, RuleLike, make_rule_inputs, resolve_rule
from .oja_checks import (
    PLAIN_OJA,
    check_oja_norm_bounded,
    check_oja_rows_bounded,
    check_oja_step_energy,
)
from .report import CheckRun, RuleCheckReport, SkippedCheck
from .runner import CheckPlan, applicable_checks, plan_checks, run_check, run_rule_checks
from .strategies import rule_inputs

__all__ = [
    "ANY_RULE",
    "FAMILY_CHECKS",
    "FAMILY_RUN_CHECKS",
    "GENERIC_CHECKS",
    "GENERIC_REQUIREMENTS",
    "NO_DECAY",
    "PLAIN_OJA",
    "Check",
    "CheckPlan",
    "CheckRun",
    "FamilyCheck",
    "Requirement",
    "RuleCheckReport",
    "RuleInputs",
    "RuleLike",
    "RunCheck",
    "SkippedCheck",
    "applicable_checks",
    "assert_close",
    "check_additive_linearity",
    "check_additive_order_invariance",
    "check_delta_exact_recall",
    "check_delta_no_interference",
    "check_fast_path_matches_scan",
    "check_finite_for_bounded_inputs",
    "check_frames_consistent",
    "check_inputs_not_mutated",
    "check_oja_norm_bounded",
    "check_oja_rows_bounded",
    "check_oja_step_energy",
    "check_shapes_and_dtype",
    "check_zero_lr_identity",
    "checks_for_family",
    "default_rtol",
    "describe_case",
    "family_check",
    "has_parallel_paint",
    "make_rule_inputs",
    "plan_checks",
    "register_family_check",
    "resolve_rule",
    "rule_inputs",
    "run_check",
    "run_rule_checks",
    "single_thread",
    "unregister_family_check",
]
