"""Atomic files: every file fwp writes (checkpoints, configurations, metrics, statistics, caches,
pictures) is written to a temporary file beside its target, flushed to disk and renamed over it,
so a kill at any moment leaves either the old file or the whole new one, never a torn one."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import torch


def _temporary_beside(path: Path) -> tuple[int, str]:
    """A temporary file in ``path``'s folder with the permissions a plain ``open`` would give."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)
    return fd, name


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort: some file systems refuse it)."""
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Write ``path`` atomically: ``write`` fills a binary temporary file beside it, which is
    flushed, fsynced and renamed over ``path``. Readers see the old file or the whole new one;
    on any failure the temporary file is removed and ``path`` is untouched."""
    path = Path(path)
    fd, tmp_name = _temporary_beside(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def atomic_save(payload: Any, path: str | Path) -> Path:
    """``torch.save`` to ``path`` atomically (see :func:`atomic_write`), then an fsync of the
    folder so that the rename itself is durable."""
    path = atomic_write(path, lambda handle: torch.save(payload, handle))
    _fsync_folder(path.parent)
    return path


def atomic_write_text(text: str, path: str | Path) -> Path:
    """Write a UTF-8 text file atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def atomic_write_json(payload: Any, path: str | Path) -> Path:
    """Write ``payload`` as indented JSON, atomically."""
    return atomic_write_text(json.dumps(payload, indent=2) + "\n", path)
