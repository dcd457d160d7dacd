"""Reading the sweep's own JSON files (``sweep.json``, ``cell.json``) with errors that name the file
and what is wrong in it, never a traceback: they are files people open, edit and copy; and the
numbers of a run's ``metrics.csv``."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from ..config import ConfigError

__all__ = [
    "SweepFileError",
    "csv_number",
    "is_int",
    "is_list_of",
    "is_number",
    "is_optional",
    "is_str",
    "is_table",
    "read_object",
    "read_optional",
    "take",
]

_MISSING = object()
T = TypeVar("T")


class SweepFileError(ConfigError):
    """A sweep file (``sweep.json``, ``cell.json``) that cannot be used; the message names the
    file, what is wrong with it and how to go on."""


def read_object(path: Path, hint: str) -> dict[str, Any]:
    """The JSON object in ``path``; ``hint`` (how to repair it) ends every error message."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise SweepFileError(f"{path}: cannot be read ({err}); {hint}") from None
    try:
        values = json.loads(text)
    except ValueError as err:
        raise SweepFileError(f"{path}: not valid JSON ({err}); {hint}") from None
    if not isinstance(values, dict):
        raise SweepFileError(
            f"{path}: must hold a JSON object, not {type(values).__name__}; {hint}"
        )
    return values


def read_optional(path: Path, hint: str, parse: Callable[[dict[str, Any], Path], T]) -> T | None:
    """``parse`` of the JSON object in ``path``; ``None`` when there is no such file."""
    if not path.exists():
        return None
    return parse(read_object(path, hint), path)


def take(
    values: Mapping[str, Any],
    key: str,
    check: Callable[[Any], bool],
    expected: str,
    path: Path,
    hint: str,
    default: Any = _MISSING,
) -> Any:
    """``values[key]`` when ``check`` accepts it; ``default`` when the key is missing (if given).

    Raises:
        SweepFileError: the key is missing (without a default) or its value is not ``expected``.
    """
    if key not in values:
        if default is _MISSING:
            raise SweepFileError(f"{path}: the key {key!r} ({expected}) is missing; {hint}")
        return default
    value = values[key]
    if not check(value):
        shown = json.dumps(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise SweepFileError(f"{path}: {key!r} must be {expected}; got {shown}; {hint}")
    return value


def is_str(value: Any) -> bool:
    return isinstance(value, str)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_table(value: Any) -> bool:
    return isinstance(value, dict)


def is_list_of(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    """A check that accepts a list whose items all pass ``check``."""
    return lambda value: isinstance(value, list) and all(check(item) for item in value)


def is_optional(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    """A check that also accepts ``None`` (JSON null)."""
    return lambda value: value is None or check(value)


def csv_number(text: str | None) -> float | None:
    """A finite number from a CSV cell; ``None`` for an empty cell, text or NaN/Inf."""
    if text is None or text.strip() == "":
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
