"""Names derived from values: image sizes written as text, file-name slugs, cache keys and the
versions of installed packages (all of which end up in file names or cache identities)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from importlib import metadata

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_SIZE_TEXT = re.compile(r"(\d+)\s*(?:[x,]\s*(\d+))?")


def parse_size(value: str | int | Sequence[int]) -> tuple[int, int]:
    """An image size ``(H, W)`` from ``64`` (square), ``"48x64"`` (height x width), ``"48,64"``
    or a pair; raises ValueError naming the accepted forms."""
    if isinstance(value, bool):
        raise ValueError(f"expected a size N or HxW (such as 64 or 48x64); got {value!r}")
    if isinstance(value, int):
        sizes = [value]
    elif isinstance(value, str):
        match = _SIZE_TEXT.fullmatch(value.strip().lower())
        if match is None:
            raise ValueError(f"expected a size N or HxW (such as 64 or 48x64); got {value!r}")
        sizes = [int(g) for g in match.groups() if g is not None]
    else:
        try:
            sizes = [int(v) for v in value]
        except (TypeError, ValueError):
            raise ValueError(f"expected a size N or [H, W]; got {value!r}") from None
    if len(sizes) == 1:
        sizes = sizes * 2
    if len(sizes) != 2 or min(sizes) < 1:
        raise ValueError(f"expected a size N or HxW with positive sides; got {value!r}")
    return sizes[0], sizes[1]


def slug(text: str, limit: int = 40, fallback: str = "data") -> str:
    """``text`` reduced to file-name-safe characters (at most ``limit`` of them)."""
    return _UNSAFE.sub("-", text).strip("-")[:limit] or fallback


def digest(text: str, length: int = 20) -> str:
    """A short sha256 hex digest of ``text`` (for cache file names)."""
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def package_version(name: str) -> str:
    """The installed version of distribution ``name``, or ``"unknown"``."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"
