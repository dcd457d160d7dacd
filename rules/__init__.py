"""Synaptic learning rules that paint images as weight matrices, and their registry.

Nothing here knows about images or GANs: a rule maps (key, value, learning rate) sequences to a
matrix per channel. See :mod:`fwp.rules.base` for the contract and :mod:`fwp.rules.testing` for
property checks that plugin authors can run on their own rules.
"""

from . import delta, hebbian, oja  # noqa: F401  (registers the built-in families)
from .base import LearningRule, PaintResult
from .delta import DeltaRule
from .hebbian import HebbianRule
from .oja import OjaRule
from .options import RuleOption
from .registry import (
    ENTRY_POINT_GROUP,
    PLUGIN_HINT,
    RuleSpec,
    get_rule,
    get_spec,
    list_rules,
    load_plugin,
    register_rule,
    rule_options,
    unregister_rule,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "PLUGIN_HINT",
    "DeltaRule",
    "HebbianRule",
    "LearningRule",
    "OjaRule",
    "PaintResult",
    "RuleOption",
    "RuleSpec",
    "get_rule",
    "get_spec",
    "list_rules",
    "load_plugin",
    "register_rule",
    "rule_options",
    "unregister_rule",
]
