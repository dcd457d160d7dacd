"""What ``fwp paint`` writes: a trained generator's images, a grid, painting strips and an
animation of the painting process, into the run's ``paintings/`` folder; for a painter with the
U-Net refiner (FPA/U-Net) also the grid of its unrefined paintings beside the refined one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from .checkpoint import load_generator
from .data import to_uint8
from .generators import TrainedGenerator
from .rundir import RunDir
from .viz import save_image_grid, save_painting_gif, save_painting_strip


@dataclass
class Paintings:
    """Where :func:`paint_run` wrote its files."""

    folder: Path
    num: int
    files: tuple[str, ...] = ("grid.png", "strip.png", "painting.gif")


def write_paintings(
    generator: TrainedGenerator, out: Path, num: int, seed: int, strips: int, device: torch.device
) -> Paintings:
    """``out``/images/NNNNN.png, grid.png, strip.png (rank-1 updates above, partial images below,
    for the first ``strips`` latents) and painting.gif, from latents drawn with ``seed``.

    With a refiner, images/ and grid.png hold the refined images, and painter_grid.png the
    painter's own images of the same latents, in the same places; the strip and the animation
    show the painting before refinement. The conv generator's strip is a one-step painting."""
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
    files: tuple[str, ...] = ("grid.png",)
    if getattr(generator, "refiner", None) is not None:
        painted = generator.painter.sample(num, seed=seed)  # the same latents, unrefined
        save_image_grid(painted, out / "painter_grid.png", scale=2)
        files += ("painter_grid.png",)
    latents = generator.sample_latents(min(strips, num), torch.Generator().manual_seed(seed))
    with torch.no_grad():
        result = generator.paint(latents.to(device), frames=True)
    updates, partials = result.updates.float().cpu(), result.partials.float().cpu()
    save_painting_strip(updates, partials, out / "strip.png")
    save_painting_gif(partials, out / "painting.gif")
    return Paintings(out, num, (*files, "strip.png", "painting.gif"))


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
