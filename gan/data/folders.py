"""Image files on disk as a data source: scanning a folder, fingerprinting its files, decoding
many files on threads (skipping unreadable ones with one warning), and :class:`Source`, the
resolved form of every data source (a folder here; the built-in datasets in
:mod:`fwp.gan.data.datasets`)."""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fwp.gan.progress import ProgressDisplay, report

from .errors import DataError
from .images import decode_image

__all__ = [
    "IMAGE_EXTENSIONS",
    "BuildImages",
    "Source",
    "decode_files",
    "folder_source",
    "report_bad_files",
    "scan_folder",
    "workers",
]

#: File extensions (lower case) that a folder dataset reads.
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp"})

_BAD_FILES_SHOWN = 5
_DECODE_CHUNK = 256

#: ``build(size, channels, limit, progress)`` -> uint8 ``(N, channels, H, W)``.
BuildImages = Callable[[tuple[int, int], int, int | None, bool], torch.Tensor]


@dataclass(frozen=True)
class Source:
    """A resolved data source: what it is (for the cache key) and how to build its images.

    Attributes:
        name: a short label for cache file names and messages.
        identity: everything that determines the raw input data (files, package versions, ...).
        build: ``build((H, W), channels, limit, progress)`` -> uint8 ``(N, channels, H, W)``,
            the first ``limit`` images (all if ``None``) in a fixed order.
    """

    name: str
    identity: str
    build: BuildImages


def workers() -> int:
    """Threads for decoding and resizing (PIL releases the GIL): the CPU count, at most 8."""
    return max(1, min(8, os.cpu_count() or 1))


def scan_folder(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursive, case-insensitive extensions), sorted by path."""
    files = [p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()]
    return sorted(files, key=lambda p: p.relative_to(folder).as_posix())


def _files_fingerprint(root: Path, files: Sequence[Path]) -> str:
    """Count and a digest of the files' relative names, sizes and modification times."""
    digest = hashlib.sha256()
    for p in files:
        st = p.stat()
        digest.update(
            f"{p.relative_to(root).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode()
        )
    return f"{len(files)}files-{digest.hexdigest()[:16]}"


def decode_files(
    files: Sequence[Path],
    size: tuple[int, int],
    channels: int,
    limit: int | None,
    progress: bool,
    what: str,
) -> tuple[torch.Tensor, list[tuple[Path, str]]]:
    """Decode files in order (on threads), skipping bad ones, until ``limit`` good images are had.

    Returns:
        uint8 ``(N, channels, H, W)`` of the good images, and ``(path, reason)`` of each bad file.
    """
    want = len(files) if limit is None else min(limit, len(files))
    good: list[np.ndarray] = []
    bad: list[tuple[Path, str]] = []
    display = ProgressDisplay(want, f"fwp data: {what}", enabled=progress, log_every_s=2.0)

    def decode(path: Path) -> np.ndarray | str:
        try:
            return decode_image(path, size, channels)
        except Exception as err:  # any failure of one file means: skip that file
            return f"{type(err).__name__}: {err}"

    with ThreadPoolExecutor(max_workers=workers()) as pool:
        start = 0
        while start < len(files) and len(good) < want:
            need = want - len(good)
            batch = files[start : start + min(_DECODE_CHUNK, need)]
            start += len(batch)
            for path, result in zip(batch, pool.map(decode, batch), strict=True):
                if isinstance(result, str):
                    bad.append((path, result))
                elif len(good) < want:
                    good.append(result)
            display.update(len(good))
    display.close()
    if not good:
        return torch.empty((0, channels, *size), dtype=torch.uint8), bad
    return torch.from_numpy(np.stack(good)), bad


def report_bad_files(bad: list[tuple[Path, str]], root: Path, total: int) -> None:
    """One warning naming the first few unreadable files (none if ``bad`` is empty)."""
    if not bad:
        return
    shown = ", ".join(
        f"{p.relative_to(root).as_posix() if p.is_relative_to(root) else p} ({why})"
        for p, why in bad[:_BAD_FILES_SHOWN]
    )
    more = f" and {len(bad) - _BAD_FILES_SHOWN} more" if len(bad) > _BAD_FILES_SHOWN else ""
    warnings.warn(
        f"skipped {len(bad)} of {total} image files under {root} that could not be read: "
        f"{shown}{more}. Delete or re-save those files to use them.",
        UserWarning,
        stacklevel=4,  # report_bad_files <- build <- load_images <- the caller
    )


def folder_source(folder: Path) -> Source:
    """A folder of images (searched recursively) as a :class:`Source`.

    Raises:
        DataError: the folder holds no image file.
    """
    folder = folder.expanduser().resolve()
    files = scan_folder(folder)
    if not files:
        raise DataError(
            f"no image files in folder {folder} (looked recursively for "
            f"{', '.join(sorted(IMAGE_EXTENSIONS))}, any letter case). Put images there or point "
            "to another folder."
        )

    def build(
        size: tuple[int, int], channels: int, limit: int | None, progress: bool
    ) -> torch.Tensor:
        report(progress, f"fwp data: reading {len(files)} image files under {folder}")
        images, bad = decode_files(files, size, channels, limit, progress, str(folder))
        report_bad_files(bad, folder, len(files))
        if images.shape[0] == 0:
            raise DataError(
                f"none of the {len(bad)} image files tried under {folder} could be read "
                "(all corrupt or not really images). Check the files, or use another folder."
            )
        return images

    return Source(
        folder.name or "root", f"folder:{folder}:{_files_fingerprint(folder, files)}", build
    )
