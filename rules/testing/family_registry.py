"""Family checks: declared by each family beside its other checks, found by family name.

A family (the ``family`` name of a :class:`~fwp.rules.base.LearningRule` class, e.g.
``"hebbian"``) declares the laws its rules obey as checks, together with the condition under
which each applies to a configuration of the family::

    NO_DECAY = Requirement("decay == 1", lambda rule: None if rule.decay == 1 else "it decays")

    @family_check("hebbian", "hebbian_order_invariance", requires=NO_DECAY)
    def check_additive_order_invariance(rule, inputs): ...

The runner (:mod:`fwp.rules.testing.runner`) looks up ``rule.family`` with
:func:`checks_for_family` and asks each check's :class:`Requirement`; it never inspects a rule's
class or reads its attributes by name. A plugin family declares its checks the same way (in its
own test module, say), and a subclass that keeps its base's ``family`` keeps the base's checks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

from ..base import LearningRule
from .compare import Check, RunCheck

F = TypeVar("F", bound=Callable[..., None])


@dataclass(frozen=True)
class Requirement:
    """A condition on a rule under which a check applies.

    Attributes:
        description: what the check needs, e.g. ``"decay == 1"``.
        unmet: ``unmet(rule)`` is ``None`` when the rule meets the condition, else one sentence
            saying why it does not (shown when the check is skipped or refused). It receives a
            rule of ``family`` and may read that family's attributes directly.
        family: the family whose configurations the requirement tells apart. A rule of another
            family, on which a check is called explicitly, is taken to meet it (its author chose
            the check); ``None`` asks ``unmet`` about every rule.
    """

    description: str
    unmet: Callable[[Any], str | None]
    family: str | None = None

    def reason_unmet(self, rule: LearningRule) -> str | None:
        """Why ``rule`` does not meet the requirement, or ``None`` when it does.

        Raises:
            TypeError: the rule lacks an attribute the requirement reads: its class declares a
                family whose checks expect that family's class.
        """
        if self.family is not None and rule.family != self.family:
            return None
        try:
            return self.unmet(rule)
        except AttributeError as err:
            raise TypeError(
                f"rule {rule.name!r} ({type(rule).__qualname__}, family {rule.family!r}) cannot "
                f"be checked for {self.description!r}: {err}. A class that declares "
                f"family = {rule.family!r} must subclass that family's class, or declare a "
                f"family name of its own."
            ) from err

    def __call__(self, rule: LearningRule) -> bool:
        """Whether ``rule`` meets the requirement."""
        return self.reason_unmet(rule) is None

    def ensure(self, rule: LearningRule) -> None:
        """Raise ``ValueError`` saying why when ``rule`` does not meet the requirement."""
        reason = self.reason_unmet(rule)
        if reason is not None:
            raise ValueError(reason)


#: the requirement every rule meets.
ANY_RULE = Requirement("any rule", lambda rule: None)


class FamilyCheck(NamedTuple):
    """A registered family check: ``(family, applies, check)``.

    Attributes:
        family: the family name the check belongs to (``LearningRule.family``).
        applies: the :class:`Requirement` a rule of the family must meet (callable: ``bool``).
        check: ``check(rule, inputs)`` for a per-input check, ``check(rule)`` for a whole run.
    """

    family: str
    applies: Requirement
    check: Check | RunCheck


#: per-input checks of every family, by check name (run under hypothesis for each dtype).
FAMILY_CHECKS: dict[str, FamilyCheck] = {}

#: whole-run checks of every family, by check name: ``check(rule)``, run once (float64).
FAMILY_RUN_CHECKS: dict[str, FamilyCheck] = {}


def register_family_check(
    family: str,
    name: str,
    check: Check | RunCheck,
    *,
    requires: Requirement = ANY_RULE,
    whole_run: bool = False,
    override: bool = False,
) -> None:
    """Declare ``check`` as a law of the rules of ``family``.

    Args:
        family: the ``family`` name of the rule class(es) the check is for.
        name: the check's name in reports and in :func:`~fwp.rules.testing.run_check`.
        check: ``check(rule, inputs)`` raising ``AssertionError``; with ``whole_run``,
            ``check(rule)`` drawing its own inputs.
        requires: the configurations of the family the check applies to.
        whole_run: run once per rule instead of once per hypothesis example and dtype.
        override: replace a check already registered under ``name``.

    Raises:
        ValueError: ``name`` is taken (by this or another family) and ``override`` is false.
    """
    taken = FAMILY_CHECKS.get(name) or FAMILY_RUN_CHECKS.get(name)
    if taken is not None and not override:
        raise ValueError(
            f"a family check named {name!r} is already registered for family {taken.family!r}; "
            f"pick another name or pass override=True"
        )
    FAMILY_CHECKS.pop(name, None)
    FAMILY_RUN_CHECKS.pop(name, None)
    table = FAMILY_RUN_CHECKS if whole_run else FAMILY_CHECKS
    table[name] = FamilyCheck(family, requires, check)


def family_check(
    family: str,
    name: str,
    *,
    requires: Requirement = ANY_RULE,
    whole_run: bool = False,
    override: bool = False,
) -> Callable[[F], F]:
    """Decorator form of :func:`register_family_check`; returns the function unchanged."""

    def decorator(check: F) -> F:
        register_family_check(
            family, name, check, requires=requires, whole_run=whole_run, override=override
        )
        return check

    return decorator


def unregister_family_check(name: str) -> None:
    """Remove the family check ``name`` (mainly for tests); unknown names are ignored."""
    FAMILY_CHECKS.pop(name, None)
    FAMILY_RUN_CHECKS.pop(name, None)


def checks_for_family(family: str) -> tuple[dict[str, FamilyCheck], dict[str, FamilyCheck]]:
    """The (per-input, whole-run) checks declared for ``family``, by name."""
    return (
        {name: fc for name, fc in FAMILY_CHECKS.items() if fc.family == family},
        {name: fc for name, fc in FAMILY_RUN_CHECKS.items() if fc.family == family},
    )
