"""The learning-rule registry: register by decorator, find plugins by entry point, create by name.

A *family* is one :class:`~fwp.rules.base.LearningRule` subclass; a registered *rule* is a name
bound to a family and a configuration (keyword arguments of the family's constructor), so variants
are configurations, not copied classes.

Third-party packages expose rules through the entry-point group ``fwp.rules``: the entry point
names a module (importing it runs its ``@register_rule`` decorators) or a callable that registers
rules when called with no arguments. Plugins load lazily, on the first lookup.
"""

from __future__ import annotations

import contextlib
import difflib
import fnmatch
import importlib
import importlib.util
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, TypeVar

from .base import LearningRule
from .options import RuleOption, accepts_any_option, family_options, unknown_option_message

ENTRY_POINT_GROUP = "fwp.rules"

#: how to make a plugin's rules known; every unknown-rule error ends with it.
PLUGIN_HINT = (
    "If the rule comes from a plugin, load it with `fwp --plugin FILE_OR_MODULE ...` "
    "(in Python: fwp.rules.load_plugin), or install the package that declares it under the "
    f"{ENTRY_POINT_GROUP!r} entry-point group."
)

R = TypeVar("R", bound=type[LearningRule])


@dataclass(frozen=True)
class RuleSpec:
    """A registered rule: a family class plus the configuration that makes this variant."""

    name: str
    cls: type[LearningRule]
    config: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    origin: str = "built-in"

    @property
    def family(self) -> str:
        return self.cls.family

    @property
    def has_fast_path(self) -> bool:
        return bool(self.cls.has_fast_path) and self.create().has_fast_path

    @property
    def options(self) -> list[RuleOption]:
        """The family's constructor options, with this rule's configuration as their defaults."""
        return family_options(self.cls, self.config)

    def create(self, **overrides: Any) -> LearningRule:
        """Instantiate the rule with its configuration, updated by ``overrides``.

        Raises:
            ValueError: an option the family does not have (the message lists the options with
                their defaults and meanings), or a value the family refuses.
        """
        settings = {**self.config, **overrides}
        if not accepts_any_option(self.cls):
            known = {option.name for option in self.options}
            unknown = [key for key in settings if key not in known]
            if unknown:
                raise ValueError(unknown_option_message(self.name, unknown, self.options))
        try:
            rule = self.cls(**settings)
        except TypeError as err:
            raise ValueError(
                f"cannot configure rule {self.name!r} with {overrides}: {err}"
            ) from err
        rule.name = self.name
        rule.description = self.description
        return rule


_REGISTRY: dict[str, RuleSpec] = {}
_plugins_loaded = False
_origin_stack: list[str] = []


@contextlib.contextmanager
def _registering_from(origin: str) -> Iterator[None]:
    _origin_stack.append(origin)
    try:
        yield
    finally:
        _origin_stack.pop()


def _origin_of(cls: type) -> str:
    if _origin_stack:
        return _origin_stack[-1]
    module = cls.__module__
    if module == "fwp" or module.startswith("fwp."):
        return "built-in"
    return f"module {module}"


def _first_doc_line(cls: type) -> str:
    doc = (cls.__doc__ or "").strip()
    return doc.splitlines()[0] if doc else ""


def register_rule(
    name: str, *, description: str | None = None, override: bool = False, **config: Any
) -> Callable[[R], R]:
    """Register a rule family class (or a configuration of it) under ``name``.

    Use as a decorator on the family class, or call it on an existing class to register a variant::

        @register_rule("mine", description="my rule")
        class MyRule(LearningRule): ...

        register_rule("delta_l2", key_activation="l2")(DeltaRule)

    Args:
        name: the name used on the command line and by :func:`get_rule`.
        description: one line shown by ``fwp rules`` (default: the class docstring's first line).
        override: replace an existing registration of the same name instead of refusing.
        **config: constructor keyword arguments that define this variant.

    Raises:
        ValueError: the name is taken (the message names both origins) or is not a valid name.
    """
    if not name or any(ch.isspace() for ch in name):
        raise ValueError(f"rule name must be a non-empty word without spaces; got {name!r}")

    def decorator(cls: R) -> R:
        if not (isinstance(cls, type) and issubclass(cls, LearningRule)):
            raise TypeError(f"register_rule({name!r}) expects a LearningRule subclass; got {cls!r}")
        origin = _origin_of(cls)
        existing = _REGISTRY.get(name)
        if existing is not None and not override:
            raise ValueError(
                f"rule name {name!r} is already registered by {existing.origin} "
                f"({existing.cls.__module__}.{existing.cls.__qualname__}); the new registration "
                f"comes from {origin} ({cls.__module__}.{cls.__qualname__}). Pick another name "
                f"or pass override=True to replace it."
            )
        _REGISTRY[name] = RuleSpec(
            name=name,
            cls=cls,
            config=dict(config),
            description=description if description is not None else _first_doc_line(cls),
            origin=origin,
        )
        return cls

    return decorator


def unregister_rule(name: str) -> None:
    """Remove a registration (mainly for tests and interactive sessions)."""
    _REGISTRY.pop(name, None)


def load_entry_point_plugins(force: bool = False) -> None:
    """Import every ``fwp.rules`` entry point once; a failing plugin gives one warning."""
    global _plugins_loaded
    if _plugins_loaded and not force:
        return
    _plugins_loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            with _registering_from(f"entry point {ep.name} ({ep.value})"):
                loaded = ep.load()
                if callable(loaded) and not isinstance(loaded, type):
                    loaded()
        except Exception as err:  # a broken plugin must not break the toolkit
            warnings.warn(
                f"fwp: rule plugin {ep.name!r} ({ep.value}) failed to load and was skipped: "
                f"{type(err).__name__}: {err}",
                RuntimeWarning,
                stacklevel=2,
            )


def load_plugin(module_or_file: str) -> None:
    """Import a user module (dotted name) or Python file so that its rules register.

    Raises:
        click-friendly ``ValueError`` when the module or file cannot be found.
    """
    path = Path(module_or_file)
    if module_or_file.endswith(".py"):
        if not path.is_file():
            raise ValueError(f"plugin file {module_or_file!r} does not exist")
        module_name = f"fwp_plugin_{path.stem}"
        if module_name in sys.modules:
            return
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise ValueError(f"cannot import plugin file {module_or_file!r}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            with _registering_from(f"module {path.name}"):
                spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[module_name]
            raise
        return
    try:
        with _registering_from(f"module {module_or_file}"):
            importlib.import_module(module_or_file)
    except ModuleNotFoundError as err:
        raise ValueError(
            f"plugin module {module_or_file!r} cannot be imported ({err}); give a dotted module "
            f"name on the Python path or a path to a .py file"
        ) from err


def get_spec(name: str) -> RuleSpec:
    """The :class:`RuleSpec` registered as ``name``; unknown names list close matches."""
    load_entry_point_plugins()
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=5, cutoff=0.4)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ValueError(
            f"unknown learning rule {name!r}.{hint} Registered: {', '.join(sorted(_REGISTRY))} "
            f"(`fwp rules` describes them). {PLUGIN_HINT}"
        ) from None


def get_rule(name: str, **overrides: Any) -> LearningRule:
    """Create the rule registered as ``name``, with constructor ``overrides`` applied.

    Raises:
        ValueError: an unknown name (close matches and the ``--plugin`` hint are given), or an
            option the rule does not have (its options are listed, see :func:`rule_options`).
    """
    return get_spec(name).create(**overrides)


def rule_options(name: str) -> list[RuleOption]:
    """The options of the rule registered as ``name``: each constructor argument of its family
    with the default this rule uses, its annotation and its documented meaning.

    Raises:
        ValueError: ``name`` is not a registered rule.
    """
    return get_spec(name).options


def list_rules(pattern: str = "*") -> list[RuleSpec]:
    """Registered rules whose name matches the shell-style ``pattern``, sorted by name."""
    load_entry_point_plugins()
    return [spec for name, spec in sorted(_REGISTRY.items()) if fnmatch.fnmatchcase(name, pattern)]
