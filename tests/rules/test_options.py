"""Rule options: what ``rule_options`` reports and the error for an option a rule lacks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch import Tensor

from fwp.rules import (
    LearningRule,
    RuleOption,
    get_rule,
    get_spec,
    list_rules,
    register_rule,
    rule_options,
    unregister_rule,
)
from fwp.rules.options import family_options, parse_args_section
from fwp.rules.registry import _REGISTRY

BUILT_IN_FAMILIES = {spec.cls for spec in list_rules() if spec.origin == "built-in"}


@pytest.fixture
def scratch_registry() -> Iterator[None]:
    before = dict(_REGISTRY)
    yield
    for name in set(_REGISTRY) - set(before):
        unregister_rule(name)
    _REGISTRY.update(before)


class Scaled(LearningRule):
    """W <- W + scale lr v k^T, documented in ``__init__``."""

    family = "test-options"

    def __init__(self, scale: float = 2.0, *, clip: float | None = None) -> None:
        """Configure the rule.

        Args:
            scale: factor of every update.
            clip (optional float): bound on |W|; None keeps
                it unbounded.
        """
        self.scale, self.clip = scale, clip

    def step(self, W: Tensor, k: Tensor, v: Tensor, lr: Tensor) -> Tensor:
        return W + self.scale * torch.einsum("bch,bcd->bchd", lr * v, k)


class NoOptions(LearningRule):
    def step(self, W: Tensor, k: Tensor, v: Tensor, lr: Tensor) -> Tensor:
        return W


class AnyOptions(LearningRule):
    def __init__(self, **settings: float) -> None:
        self.settings = settings

    def step(self, W: Tensor, k: Tensor, v: Tensor, lr: Tensor) -> Tensor:
        return W


@pytest.mark.parametrize("cls", sorted(BUILT_IN_FAMILIES, key=lambda c: c.family))
def test_every_built_in_family_documents_every_constructor_argument(cls: type) -> None:
    options = family_options(cls)
    assert options, f"{cls.__name__} has no options"
    undocumented = [option.name for option in options if not option.meaning]
    assert undocumented == [], f"{cls.__name__} does not document {undocumented} under Args:"


def test_rule_options_show_the_registered_configuration_as_default() -> None:
    options = {option.name: option for option in rule_options("hebb_decay")}
    assert list(options) == [
        "key_activation",
        "value_activation",
        "lr_activation",
        "per_row_lr",
        "decay",
    ]
    decay = options["decay"]
    assert isinstance(decay, RuleOption)
    assert (decay.default, decay.family_default, decay.annotation) == (0.9, 1.0, "float")
    assert decay.configured and not options["key_activation"].configured
    assert decay.meaning.startswith("factor in (0, 1] that multiplies W")
    assert decay.describe() == f"decay (default 0.9): {decay.meaning}"
    assert {o.name: o.default for o in rule_options("hebb")}["decay"] == 1.0
    with pytest.raises(ValueError, match="unknown learning rule 'hebb_decayy'"):
        rule_options("hebb_decayy")


def test_unknown_option_is_named_and_the_valid_ones_are_listed() -> None:
    with pytest.raises(ValueError) as info:
        get_rule("hebb_decay", scale=2.0)
    lines = str(info.value).splitlines()
    assert lines[0] == "rule 'hebb_decay' has no option 'scale'; its options are:"
    assert any(line.strip().startswith("decay (default 0.9): factor in (0, 1]") for line in lines)
    assert len(lines) == 1 + len(rule_options("hebb_decay"))
    with pytest.raises(ValueError, match=r"no option 'decya' \(did you mean 'decay'\?\)"):
        get_spec("hebb_decay").create(decya=0.5)
    with pytest.raises(ValueError, match=r"no options 'a', 'b';"):
        get_rule("delta", a=1, b=2)


@pytest.mark.usefixtures("scratch_registry")
def test_plugin_options_come_from_the_init_docstring_and_keyword_only_arguments() -> None:
    register_rule("test_scaled_options", scale=3.0)(Scaled)
    options = {option.name: option for option in rule_options("test_scaled_options")}
    assert options["scale"].default == 3.0 and options["scale"].meaning == "factor of every update."
    assert options["clip"].meaning == "bound on |W|; None keeps it unbounded."
    assert options["clip"].annotation == "float | None"
    assert get_rule("test_scaled_options", clip=1.0).clip == 1.0


@pytest.mark.usefixtures("scratch_registry")
def test_a_family_without_a_constructor_takes_no_options_and_kwargs_take_any() -> None:
    register_rule("test_no_options")(NoOptions)
    register_rule("test_any_options")(AnyOptions)
    assert rule_options("test_no_options") == []
    with pytest.raises(ValueError, match="rule 'test_no_options' has no option 'x'; it takes no"):
        get_rule("test_no_options", x=1)
    assert get_rule("test_any_options", x=1.0).settings == {"x": 1.0}


def test_a_required_argument_without_a_configuration_is_marked_required() -> None:
    class Needs(LearningRule):
        def __init__(self, strength: float) -> None:
            """Configure the rule.

            Args:
                strength: how hard to write.
            """
            self.strength = strength

    (option,) = family_options(Needs)
    assert option.required and option.default_text() == "required"
    (configured,) = family_options(Needs, {"strength": 0.5})
    assert not configured.required and configured.default_text() == "0.5"


def test_parse_args_section_reads_google_style_entries_and_stops_at_the_next_section() -> None:
    doc = """Summary line.

    Args:
        alpha: first line
            continued here.
        beta (int): typed entry.

    Returns:
        gamma: not an argument.
    """
    assert parse_args_section(doc) == {
        "alpha": "first line continued here.",
        "beta": "typed entry.",
    }
    assert parse_args_section(None) == {}
    assert parse_args_section("No sections at all.") == {}
