"""Running checks: which apply to a rule (:func:`plan_checks`), one under hypothesis
(:func:`run_check`), all of them (:func:`run_rule_checks`, which returns a report).

Which checks apply comes from declarations only: the generic checks' requirements read the rule
contract's own flags (``zero_lr_is_identity``, ``has_fast_path``), and family checks are looked up
by ``rule.family`` in the family registry with their declared requirements.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from hypothesis import HealthCheck, given, settings

from .compare import Check, RunCheck, single_thread
from .family_registry import FAMILY_CHECKS, checks_for_family
from .generic import GENERIC_CHECKS, GENERIC_REQUIREMENTS
from .inputs import RuleInputs, RuleLike, resolve_rule
from .report import CheckRun, RuleCheckReport, SkippedCheck
from .strategies import rule_inputs

#: the scope of the checks that every rule gets.
GENERIC = "generic"


@dataclass(frozen=True)
class CheckPlan:
    """The checks that apply to one rule, and those that do not.

    Attributes:
        per_input: name -> (scope, ``check(rule, inputs)``), run under hypothesis per dtype.
        whole_run: name -> (family, ``check(rule)``), run once.
        skipped: the checks that do not apply, with the reason.
        notes: remarks for the report (e.g. a family that declares no checks).
    """

    per_input: dict[str, tuple[str, Check]] = field(default_factory=dict)
    whole_run: dict[str, tuple[str, RunCheck]] = field(default_factory=dict)
    skipped: list[SkippedCheck] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def plan_checks(rule: RuleLike, families: bool = True) -> CheckPlan:
    """Sort every check into applies / skipped (with a reason) for ``rule``.

    Every generic check applies unless its requirement in
    :data:`~fwp.rules.testing.GENERIC_REQUIREMENTS` is unmet (``zero_lr_identity`` needs
    ``zero_lr_is_identity``; ``fast_path_matches_scan`` needs a parallel ``paint``). The family
    checks are those registered for ``rule.family`` whose requirement the rule meets.
    """
    rule = resolve_rule(rule)
    plan = CheckPlan()
    for name, check in GENERIC_CHECKS.items():
        requirement = GENERIC_REQUIREMENTS.get(name)
        reason = None if requirement is None else requirement.reason_unmet(rule)
        if reason is None:
            plan.per_input[name] = (GENERIC, check)
        else:
            plan.skipped.append(SkippedCheck(name, GENERIC, reason))
    per_input, whole_run = checks_for_family(rule.family)
    if not per_input and not whole_run:
        plan.notes.append(
            f"no family checks are declared for family {rule.family!r} (declare some with "
            f"fwp.rules.testing.family_check)"
        )
    for table, target in ((per_input, plan.per_input), (whole_run, plan.whole_run)):
        for name, (family, requirement, check) in table.items():
            if families:
                reason = requirement.reason_unmet(rule)
            else:
                reason = "family checks were turned off (families=False)"
            if reason is None:
                target[name] = (family, check)
            else:
                plan.skipped.append(SkippedCheck(name, family, reason))
    return plan


def applicable_checks(rule: RuleLike, families: bool = True) -> dict[str, Check]:
    """The per-input checks that apply to ``rule``, by name (see :func:`plan_checks`).

    With ``families``, the family's per-input checks are included; whole-run checks (e.g. Oja's
    norm bounds) are not per-input and appear in :func:`plan_checks` instead.
    """
    return {name: check for name, (_, check) in plan_checks(rule, families).per_input.items()}


def run_check(
    rule: RuleLike,
    check: Check | str,
    *,
    max_examples: int = 25,
    dtype: torch.dtype = torch.float64,
    **strategy_options: Any,
) -> None:
    """Run one check under hypothesis on inputs drawn by :func:`rule_inputs`.

    Args:
        check: a check function ``check(rule, inputs)`` or a name from
            :data:`~fwp.rules.testing.GENERIC_CHECKS` or :data:`~fwp.rules.testing.FAMILY_CHECKS`.
        max_examples: hypothesis examples (derandomized, no deadline: reproducible in CI).
        dtype: of the inputs.
        **strategy_options: passed to :func:`rule_inputs` (``max_steps``, ``with_w0``, ...).

    Raises:
        AssertionError: from the check, after hypothesis has shrunk the failing example; the
            report names the inputs as a :func:`make_rule_inputs` call.
        ValueError: ``check`` is an unknown name.

    The inputs are tiny, so on the CPU the check runs with one intra-op thread (thread pools
    only add overhead there, a lot of it on a busy CI machine); the setting is restored after.
    """
    rule = resolve_rule(rule)
    if isinstance(check, str):
        known: dict[str, Any] = {
            **GENERIC_CHECKS,
            **{n: c for n, (_, _, c) in FAMILY_CHECKS.items()},
        }
        if check not in known:
            raise ValueError(f"unknown check {check!r}; choose one of: {', '.join(sorted(known))}")
        check = known[check]

    @settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(inputs=rule_inputs(rule, dtype=dtype, **strategy_options))
    def property_holds(inputs: RuleInputs) -> None:
        check(rule, inputs)

    with single_thread():
        property_holds()


def run_rule_checks(
    rule_or_name: RuleLike,
    max_examples: int = 25,
    *,
    dtypes: Sequence[torch.dtype] = (torch.float64, torch.float32),
    families: bool = True,
    quiet: bool = False,
    **strategy_options: Any,
) -> RuleCheckReport:
    """Run every applicable check on a rule: the one call a plugin author needs.

    For each dtype, each per-input check of :func:`plan_checks` runs under hypothesis
    (:func:`run_check`): the generic checks, and the checks declared for the rule's family
    (``rule.family``: the built-in "hebbian", "delta" and "oja" families, subclasses that keep
    the name included, and any family that registered checks with
    :func:`~fwp.rules.testing.family_check`). The family's whole-run checks (e.g. Oja's norm
    bounds) then run once.

    Args:
        rule_or_name: a rule instance or a registered name.
        max_examples: hypothesis examples per check and dtype.
        dtypes: dtypes to run in; tolerances follow :func:`default_rtol`.
        families: also run the family checks.
        quiet: do not print the summary.
        **strategy_options: passed to :func:`rule_inputs` (``max_steps``, ``max_size``, ...).

    Returns:
        A :class:`~fwp.rules.testing.RuleCheckReport`: which checks ran, in which dtypes, and
        which were skipped and why. Unless ``quiet``, its summary is printed. Iterating over it
        gives the names of the checks that ran.

    Raises:
        AssertionError: the first failing check, naming it, with a reproducible example.
    """
    rule = resolve_rule(rule_or_name)
    plan = plan_checks(rule, families=families)
    dtypes = tuple(dtypes)
    for dtype in dtypes:
        for name, (_, check) in plan.per_input.items():
            try:
                run_check(rule, check, max_examples=max_examples, dtype=dtype, **strategy_options)
            except AssertionError as err:
                raise AssertionError(
                    f"check {name!r} failed for rule {rule.name!r} in {dtype}: {err}"
                ) from err
    ran = [
        CheckRun(name, scope, dtypes, max_examples) for name, (scope, _) in plan.per_input.items()
    ]
    for name, (family, run) in plan.whole_run.items():
        try:
            with single_thread():
                run(rule)
        except AssertionError as err:
            raise AssertionError(f"check {name!r} failed for rule {rule.name!r}: {err}") from err
        ran.append(CheckRun(name, family, (torch.float64,), None))
    report = RuleCheckReport(
        rule=rule.name,
        family=rule.family,
        rule_class=type(rule).__qualname__,
        dtypes=dtypes,
        ran=ran,
        skipped=plan.skipped,
        notes=plan.notes,
    )
    if not quiet:
        print(report.summary())
    return report
