"""The options of a rule family: its constructor arguments, with defaults and documented meanings.

A rule's options are the keyword arguments of its family's ``__init__`` (a registered rule is a
family plus a configuration of those arguments, see :mod:`fwp.rules.registry`). Their meanings
come from the ``Args:`` section of the family's class docstring (or of ``__init__``'s), written in
the Google style every built-in family uses::

    class MyRule(LearningRule):
        \"\"\"One line about the rule.

        Args:
            scale: factor of every update; continuation lines are
                indented further.
        \"\"\"

:func:`family_options` reads them; :func:`unknown_option_message` turns a misspelt option into an
error that lists the valid ones.
"""

from __future__ import annotations

import difflib
import inspect
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: section titles under which argument descriptions are looked for.
_ARGS_TITLES = ("Args:", "Arguments:", "Parameters:")
_ENTRY = re.compile(r"^(?P<name>\*{0,2}[A-Za-z_][A-Za-z0-9_]*)\s*(\([^)]*\))?\s*:\s*(?P<text>.*)$")


@dataclass(frozen=True)
class RuleOption:
    """One option of a rule: a keyword argument of its family's constructor.

    Attributes:
        name: the keyword, e.g. ``"decay"``.
        default: the value the rule uses unless overridden: the registered configuration's value,
            else the constructor's default (``None`` when ``required``).
        family_default: the constructor's default (``None`` when ``required``).
        annotation: the type annotation as written in the source, e.g. ``"float"`` ("" if none).
        meaning: one line from the family's ``Args:`` docstring section ("" if undocumented).
        required: the constructor has no default for it and the configuration sets none.
    """

    name: str
    default: Any
    family_default: Any
    annotation: str
    meaning: str
    required: bool = False

    @property
    def configured(self) -> bool:
        """Whether the registered configuration changes the family's default."""
        return self.default != self.family_default

    def default_text(self) -> str:
        """The default as shown to a user: its ``repr``, or "required"."""
        return "required" if self.required else repr(self.default)

    def describe(self) -> str:
        """``name (default 0.9): meaning`` on one line."""
        return f"{self.name} (default {self.default_text()}): {self.meaning or '(undocumented)'}"


def parse_args_section(doc: str | None) -> dict[str, str]:
    """Argument descriptions from the ``Args:`` section of a Google-style docstring.

    Returns:
        ``{name: description}``, each description joined onto one line (continuation lines
        appended, whitespace collapsed). Entries such as ``name (float): text`` are accepted.
    """
    if not doc:
        return {}
    lines = inspect.cleandoc(doc).splitlines()
    meanings: dict[str, list[str]] = {}
    inside, section_indent, entry_indent, current = False, 0, None, None
    for line in lines:
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if not inside:
            if stripped in _ARGS_TITLES:
                inside, section_indent, entry_indent, current = True, indent, None, None
            continue
        if not stripped:
            continue
        if indent <= section_indent:  # the next section (or prose) starts
            inside = False
            if stripped in _ARGS_TITLES:
                inside, section_indent, entry_indent, current = True, indent, None, None
            continue
        if entry_indent is None:
            entry_indent = indent
        match = _ENTRY.match(stripped) if indent == entry_indent else None
        if match:
            current = match["name"].lstrip("*")
            meanings[current] = [match["text"]]
        elif current is not None:
            meanings[current].append(stripped)
    return {name: " ".join(" ".join(parts).split()) for name, parts in meanings.items()}


def _annotation_text(annotation: Any) -> str:
    if annotation is inspect.Parameter.empty:
        return ""
    if isinstance(annotation, str):
        return annotation
    return getattr(annotation, "__name__", None) or str(annotation)


def _constructor_parameters(cls: type) -> tuple[list[inspect.Parameter], bool]:
    """The keyword parameters of ``cls.__init__`` and whether it also takes ``**kwargs``."""
    if cls.__init__ is object.__init__:  # no constructor of its own: no options
        return [], False
    parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]  # drop self
    keywords = [
        p
        for p in parameters
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    ]
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
    return keywords, takes_any


def accepts_any_option(cls: type) -> bool:
    """Whether the family's constructor takes ``**kwargs`` (then no option is unknown)."""
    return _constructor_parameters(cls)[1]


def family_options(cls: type, config: Mapping[str, Any] | None = None) -> list[RuleOption]:
    """The options of the family ``cls``, in constructor order, with ``config`` as defaults.

    Meanings come from the ``Args:`` section of the class docstring, then of ``__init__``'s
    docstring, searching the class's bases too (a subclass inherits its family's documentation).
    """
    config = dict(config or {})
    meanings: dict[str, str] = {}
    for klass in reversed(cls.__mro__):  # a subclass's documentation wins over its base's
        init = klass.__dict__.get("__init__")
        if init is not None:
            meanings.update(parse_args_section(init.__doc__))
        meanings.update(parse_args_section(klass.__dict__.get("__doc__")))
    options = []
    for parameter in _constructor_parameters(cls)[0]:
        has_default = parameter.default is not inspect.Parameter.empty
        family_default = parameter.default if has_default else None
        options.append(
            RuleOption(
                name=parameter.name,
                default=config.get(parameter.name, family_default),
                family_default=family_default,
                annotation=_annotation_text(parameter.annotation),
                meaning=meanings.get(parameter.name, ""),
                required=not has_default and parameter.name not in config,
            )
        )
    return options


def unknown_option_message(
    rule_name: str, unknown: Sequence[str], options: Sequence[RuleOption]
) -> str:
    """The error for options a rule does not have, listing the options it does have.

    Example: ``rule 'hebb_decay' has no option 'scale'; its options are:`` followed by one line
    per option, ``decay (default 0.9): ...``.
    """
    names = [option.name for option in options]
    parts = []
    for key in unknown:
        close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
        parts.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    plural = "s" if len(unknown) > 1 else ""
    head = f"rule {rule_name!r} has no option{plural} {', '.join(parts)}"
    if not options:
        return f"{head}; it takes no options"
    listing = "\n".join(f"  {option.describe()}" for option in options)
    return f"{head}; its options are:\n{listing}"
