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

ENTRY_POINT_GROUP = "fwp.rules"

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

    def create(self, **overrides: Any) -> LearningRule:
        """Instantiate the rule with its configuration, updated by ``overrides``."""
        try:
            rule = self.cls(**{**self.config, **overrides})
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
            f"unknown learning rule {name!r}.{hint} Run `fwp rules` to list all "
            f"{len(_REGISTRY)} registered rules."
        ) from None


def get_rule(name: str, **overrides: Any) -> LearningRule:
    """Create the rule registered as ``name``, with constructor ``overrides`` applied."""
    return get_spec(name).create(**overrides)


def list_rules(pattern: str = "*") -> list[RuleSpec]:
    """Registered rules whose name matches the shell-style ``pattern``, sorted by name."""
    load_entry_point_plugins()
    return [spec for name, spec in sorted(_REGISTRY.items()) if fnmatch.fnmatchcase(name, pattern)]
