"""What :func:`~fwp.rules.testing.run_rule_checks` did: the checks that ran and those skipped."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import torch


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.float64`` -> ``"float64"``."""
    return str(dtype).removeprefix("torch.")


@dataclass(frozen=True)
class CheckRun:
    """A check that ran and passed.

    Attributes:
        name: the check's name, e.g. ``"fast_path_matches_scan"``.
        scope: ``"generic"`` for a check of every rule, else the family that declared it.
        dtypes: the dtypes it ran in.
        examples: hypothesis examples per dtype, or ``None`` for a whole-run check (one run
            with inputs of its own).
    """

    name: str
    scope: str
    dtypes: tuple[torch.dtype, ...]
    examples: int | None

    def how(self) -> str:
        """``"25 examples per dtype"`` or ``"whole run"``."""
        return "whole run" if self.examples is None else f"{self.examples} examples per dtype"


@dataclass(frozen=True)
class SkippedCheck:
    """A check that did not run for this rule, and why (e.g. the rule has no fast path)."""

    name: str
    scope: str
    reason: str


@dataclass(frozen=True)
class RuleCheckReport:
    """The outcome of :func:`~fwp.rules.testing.run_rule_checks` on one rule (all checks passed).

    Iterating over the report, ``len`` and ``in`` see the names of the checks that ran, so code
    written for the list of names the function used to return keeps working.

    Attributes:
        rule: the rule's registered name. family: its family name. rule_class: its class name.
        dtypes: the dtypes the per-input checks ran in.
        ran: the checks that ran, in order. skipped: the checks that did not, with reasons.
        notes: anything else worth knowing (e.g. a family without declared checks).
    """

    rule: str
    family: str
    rule_class: str
    dtypes: tuple[torch.dtype, ...]
    ran: list[CheckRun] = field(default_factory=list)
    skipped: list[SkippedCheck] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        """Names of the checks that ran."""
        return [run.name for run in self.ran]

    @property
    def skipped_names(self) -> list[str]:
        """Names of the checks that were skipped."""
        return [skip.name for skip in self.skipped]

    def reason_skipped(self, name: str) -> str:
        """Why the check ``name`` was skipped.

        Raises:
            KeyError: ``name`` was not skipped (it ran, or is not a check of this rule).
        """
        for skip in self.skipped:
            if skip.name == name:
                return skip.reason
        raise KeyError(f"check {name!r} was not skipped for rule {self.rule!r}")

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.ran)

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def summary(self) -> str:
        """A short plain-text summary: one line per check, then the notes."""
        dtypes = ", ".join(dtype_name(d) for d in self.dtypes)
        lines = [
            f"fwp rule checks for {self.rule!r} ({self.rule_class}, family {self.family!r}): "
            f"{len(self.ran)} passed, {len(self.skipped)} skipped; dtypes {dtypes}"
        ]
        width = max((len(name) for name in self.names + self.skipped_names), default=0)
        for run in self.ran:
            ran_in = ", ".join(dtype_name(d) for d in run.dtypes)
            lines.append(f"  passed   {run.name:<{width}}  [{run.scope}] {ran_in}, {run.how()}")
        for skip in self.skipped:
            lines.append(f"  skipped  {skip.name:<{width}}  [{skip.scope}] {skip.reason}")
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()
