"""What a data source string means: a built-in dataset name, ``textures:NAME``, or a folder of
images. A built-in name wins over a folder of the same name (write ``./emoji`` for the folder); a
:class:`os.PathLike` always means a folder. Unknown names get the closest built-in suggested."""

from __future__ import annotations

import os
from pathlib import Path

from .datasets import TEXTURE_NAMES, builtin_names, builtin_source, texture_source
from .errors import DataError, did_you_mean
from .folders import Source, folder_source

__all__ = ["resolve_source"]


def _looks_like_path(source: str) -> bool:
    return source.startswith((".", "~", "/")) or os.sep in source or "/" in source


def _builtin_summary() -> str:
    names = [n for n in builtin_names() if not n.startswith("textures:")]
    return ", ".join(names) + ", textures:NAME (NAME one of " + ", ".join(TEXTURE_NAMES) + ")"


def resolve_source(source: str | os.PathLike[str]) -> Source:
    """The :class:`~fwp.gan.data.folders.Source` that ``source`` names; nothing is decoded yet.

    Raises:
        DataError: an unknown name (with the closest built-in suggested and all of them listed),
            a missing folder, or a file where a folder is expected.
    """
    if isinstance(source, os.PathLike):  # a Path always means a folder, never a built-in name
        path = Path(source).expanduser()
        if path.is_dir():
            return folder_source(path)
        source = os.fspath(source)
    if not isinstance(source, str) or not source:
        raise DataError(f"source must be a dataset name or a folder path, got {source!r}")
    builtin = builtin_source(source)
    if builtin is not None:
        return builtin
    if source == "textures" or source.startswith("textures:"):
        return texture_source(source.partition(":")[2])
    path = Path(source).expanduser()
    if path.is_dir():
        return folder_source(path)
    names = _builtin_summary()
    if path.exists():
        raise DataError(f"{source} is a file, not a folder of images: give its folder instead")
    if _looks_like_path(source):
        raise DataError(
            f"folder {path} does not exist: check the path (built-in datasets are: {names})"
        )
    hint = did_you_mean(source, builtin_names())
    raise DataError(
        f"unknown dataset {source!r}{hint} and no folder of that name exists. Built-in datasets: "
        f"{names}. Or give the path of a folder of images."
    )
