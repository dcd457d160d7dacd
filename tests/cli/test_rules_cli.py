"""``fwp rules``: a pattern lists rules, an exact name describes one rule and its options."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from click.testing import CliRunner

from fwp.cli.main import cli
from fwp.rules import LearningRule, register_rule, rule_options, unregister_rule
from fwp.rules.registry import _REGISTRY


@pytest.fixture
def scratch_registry() -> Iterator[None]:
    before = dict(_REGISTRY)
    yield
    for name in set(_REGISTRY) - set(before):
        unregister_rule(name)
    _REGISTRY.update(before)


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_an_exact_name_shows_family_description_fast_path_origin_and_options() -> None:
    result = invoke("rules", "hebb_decay")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "hebb_decay"
    facts = {}
    for line in lines[1:6]:
        label, value = line.strip().split("  ", 1)
        facts[label] = value.strip()
    assert facts["family"] == "hebbian (fwp.rules.hebbian.HebbianRule)"
    assert facts["description"].startswith("decaying Hebbian")
    assert facts["fast path"] == "yes (parallel paint)"
    assert facts["origin"] == "built-in"
    assert "decay=0.9" in facts["configuration"]
    header = next(
        i for i, line in enumerate(lines) if line.split()[:3] == ["option", "default", "meaning"]
    )
    rows = {line.split()[0]: line for line in lines[header + 2 :]}
    assert set(rows) == {option.name for option in rule_options("hebb_decay")}
    assert rows["decay"].split()[1] == "0.9"
    assert "factor in (0, 1] that multiplies W" in rows["decay"]
    assert rows["lr_activation"].split()[1] == "'one'"


def test_a_rule_without_a_fast_path_says_so() -> None:
    result = invoke("rules", "oja_official")
    assert result.exit_code == 0, result.output
    assert "fast path      no (scans step)" in result.output
    assert "activate_after_correction  True" in result.output


def test_a_pattern_still_lists_the_matching_rules() -> None:
    result = invoke("rules", "delta_*")
    assert result.exit_code == 0, result.output
    names = [line.split()[0] for line in result.output.splitlines()[2:]]
    assert names == sorted(names) and {"delta_gated", "delta_rowlr"} <= set(names)
    assert "delta" not in names
    assert result.output.splitlines()[0].split()[:2] == ["name", "family"]


def test_an_unknown_name_suggests_close_names_and_the_plugin_option() -> None:
    result = invoke("rules", "hebb_decya")
    assert result.exit_code != 0
    assert "unknown learning rule 'hebb_decya'" in result.output
    assert "Did you mean: hebb_decay" in result.output
    assert "fwp --plugin FILE_OR_MODULE" in result.output
    assert "Traceback" not in result.output
    nothing = invoke("rules", "covariance*")
    assert nothing.exit_code != 0 and "fwp --plugin" in nothing.output


class _Undocumented(LearningRule):
    family = "test-cli-undocumented"

    def __init__(self, gain: float = 1.0) -> None:
        self.gain = gain

    def step(self, W, k, v, lr):
        return W + self.gain * torch.einsum("bch,bcd->bchd", lr * v, k)


@pytest.mark.usefixtures("scratch_registry")
def test_a_plugin_rule_is_described_with_its_origin_and_undocumented_options() -> None:
    register_rule("test_cli_gain", gain=2.0, description="gain times Hebbian")(_Undocumented)
    result = invoke("rules", "test_cli_gain")
    assert result.exit_code == 0, result.output
    assert f"module {__name__}" in result.output
    gain = next(line for line in result.output.splitlines() if line.startswith("gain "))
    assert gain.split()[1] == "2.0" and "(undocumented)" in gain
