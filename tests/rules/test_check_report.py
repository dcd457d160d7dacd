"""``run_rule_checks`` reports what it did: the checks that ran, in which dtypes, and the checks
it skipped, with the reason."""

from __future__ import annotations

import pytest
import torch

from fwp.rules import HebbianRule, LearningRule
from fwp.rules import testing as rt

TINY = dict(max_examples=2, max_steps=2, max_size=2)


def test_a_rule_without_a_fast_path_reports_the_fast_path_check_as_skipped(capsys) -> None:
    report = rt.run_rule_checks("oja", dtypes=(torch.float64,), **TINY)
    assert isinstance(report, rt.RuleCheckReport)
    assert (report.rule, report.family, report.rule_class) == ("oja", "oja", "OjaRule")
    assert "fast_path_matches_scan" in report.skipped_names
    assert "no parallel paint" in report.reason_skipped("fast_path_matches_scan")
    runs = {run.name: run for run in report.ran}
    assert runs["shapes_and_dtype"].scope == "generic"
    assert runs["shapes_and_dtype"].dtypes == (torch.float64,)
    assert runs["shapes_and_dtype"].examples == 2
    assert runs["oja_step_energy"].scope == "oja"
    assert runs["oja_norm_bounded"].examples is None, "a whole-run check has no examples"
    printed = capsys.readouterr().out
    assert printed.strip() == report.summary()
    assert "fwp rule checks for 'oja' (OjaRule, family 'oja')" in printed
    assert "skipped  fast_path_matches_scan" in printed and "no parallel paint" in printed
    assert "whole run" in printed and "2 examples per dtype" in printed


def test_skip_reasons_name_the_declaration_that_excludes_a_check() -> None:
    report = rt.run_rule_checks("hebb_decay", dtypes=(torch.float64,), quiet=True, **TINY)
    assert "zero_lr_is_identity = False" in report.reason_skipped("zero_lr_identity")
    assert "decay = 0.9" in report.reason_skipped("hebbian_order_invariance")
    assert "hebbian_linearity" in report and "fast_path_matches_scan" in report
    official = rt.run_rule_checks("oja_official", dtypes=(torch.float64,), quiet=True, **TINY)
    for name in ("oja_step_energy", "oja_rows_bounded", "oja_norm_bounded"):
        reason = official.reason_skipped(name)
        assert "applies its key activation after the correction" in reason
    with pytest.raises(KeyError, match="'shapes_and_dtype' was not skipped"):
        official.reason_skipped("shapes_and_dtype")


def test_quiet_prints_nothing_and_the_report_lists_each_dtype(capsys) -> None:
    report = rt.run_rule_checks("hebb", dtypes=(torch.float64, torch.float32), quiet=True, **TINY)
    assert capsys.readouterr().out == ""
    assert report.dtypes == (torch.float64, torch.float32)
    assert all(run.dtypes == report.dtypes for run in report.ran)
    assert "dtypes float64, float32" in report.summary()


def test_families_off_skips_every_family_check_with_that_reason() -> None:
    report = rt.run_rule_checks(
        "delta", dtypes=(torch.float64,), families=False, quiet=True, **TINY
    )
    assert {"delta_exact_recall", "delta_no_interference"} <= set(report.skipped_names)
    assert all(
        report.reason_skipped(name) == "family checks were turned off (families=False)"
        for name in ("delta_exact_recall", "delta_no_interference")
    )
    assert not any(run.scope == "delta" for run in report.ran)


class _Doubling(LearningRule):
    """A family of its own without declared checks."""

    family = "test-report-doubling"

    def step(self, W, k, v, lr):
        return W + 2 * torch.einsum("bch,bcd->bchd", lr * v, k)


def test_a_family_without_checks_gets_a_note_and_the_generic_checks() -> None:
    report = rt.run_rule_checks(_Doubling(), dtypes=(torch.float64,), quiet=True, **TINY)
    assert set(report.names) == set(rt.GENERIC_CHECKS) - {"fast_path_matches_scan"}
    assert any(
        "no family checks are declared for family 'test-report-doubling'" in n for n in report.notes
    )
    assert "note: no family checks" in report.summary()


def test_the_report_still_reads_as_the_list_of_names_that_ran() -> None:
    report = rt.run_rule_checks(HebbianRule(), dtypes=(torch.float64,), quiet=True, **TINY)
    assert list(report) == report.names and len(report) == len(report.ran)
    assert "hebbian_order_invariance" in report and "zero_lr_identity" in report
    assert "delta_exact_recall" not in report
