"""What ``fwp paint`` writes: a trained generator's images, a grid, painting strips and an
animation of the painting process, into the run's ``paintings/`` folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from fwp.painters import Generator

from .checkpoint import load_generator
from .data import to_uint8
from .rundir import RunDir
from .viz import save_image_grid, save_painting_gif, save_painting_strip


@dataclass
class Paintings:
    """Where :func:`paint_run` wrote its files."""

    folder: Path
    num: int


def write_paintings(
    generator: Generator, out: Path, num: int, seed: int, strips: int, device: torch.device
) -> Paintings:
    """``out``/images/NNNNN.png, grid.png, strip.png (rank-1 updates above, partial images below,
    for the first ``strips`` latents) and painting.gif, from latents drawn with ``seed``."""
    if num < 1 or strips < 1:
        raise ValueError("--num and --strips must be at least 1")
    (out / "images").mkdir(parents=True, exist_ok=True)
    images = generator.sample(num, seed=seed)
    for index, image in enumerate(to_uint8(images)):
        array = image.permute(1, 2, 0).numpy()
        Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(
            out / "images" / f"{index:05d}.png"
        )
    save_image_grid(images, out / "grid.png", scale=2)
    latents = generator.sample_latents(min(strips, num), torch.Generator().manual_seed(seed))
    with torch.no_grad():
        result = generator.paint(latents.to(device), frames=True)
    updates, partials = result.updates.float().cpu(), result.partials.float().cpu()
    save_painting_strip(updates, partials, out / "strip.png")
    save_painting_gif(partials, out / "painting.gif")
    return Paintings(out, num)


def paint_run(
    source: str | Path,
    *,
    num: int = 64,
    seed: int = 0,
    strips: int = 4,
    raw: bool = False,
    best: bool = False,
    device: torch.device,
    out: str | Path | None = None,
) -> Paintings:
    """Paint with a run directory or checkpoint file: the EMA weights (or the raw ones), into
    ``RUN/paintings/seed-SEED`` (``raw-seed-SEED`` for raw weights) unless ``out`` is given."""
    generator, _ = load_generator(source, ema=not raw, device=device, best=best)
    source = Path(source)
    run = RunDir(source) if source.is_dir() else RunDir.of_checkpoint(source)
    folder = Path(out) if out is not None else run.paintings_dir(seed, raw=raw)
    return write_paintings(generator, folder, num, seed, strips, device)
