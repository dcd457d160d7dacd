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
from .registry import (
    ENTRY_POINT_GROUP,
    RuleSpec,
    get_rule,
    get_spec,
    list_rules,
    load_plugin,
    register_rule,
    unregister_rule,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "DeltaRule",
    "HebbianRule",
    "LearningRule",
    "OjaRule",
    "PaintResult",
    "RuleSpec",
    "get_rule",
    "get_spec",
    "list_rules",
    "load_plugin",
    "register_rule",
    "unregister_rule",
]
