"""``fwp paint``: images, a grid, painting strips and an animation from a trained run."""

from __future__ import annotations

from pathlib import Path

import click
import torch

from .common import user_errors


@click.command()
@click.argument("source", type=click.Path(exists=True))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Output folder [default: SOURCE_RUN/paintings/seed-SEED].",
)
@click.option("--num", default=64, show_default=True, help="Number of images.")
@click.option("--seed", default=0, show_default=True, help="Seed of the latents.")
@click.option("--raw", is_flag=True, help="Use the raw generator weights instead of the EMA.")
@click.option("--best", is_flag=True, help="Use the best (lowest FID) checkpoint of a run.")
@click.option("--strips", default=4, show_default=True, help="Latents shown in the painting strip.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda[:N].")
def paint(
    source: str,
    out_dir: str | None,
    num: int,
    seed: int,
    raw: bool,
    best: bool,
    strips: int,
    device: str,
) -> None:
    """Paint with a trained run directory or checkpoint SOURCE.

    Writes images/NNNNN.png, grid.png, strip.png (rank-1 updates above, partial images below,
    for the first --strips latents) and painting.gif (the painting process).
    """
    from fwp.gan.checkpoint import load_generator
    from fwp.gan.data import to_uint8
    from fwp.gan.runtime import pick_device
    from fwp.gan.viz import save_image_grid, save_painting_gif, save_painting_strip

    with user_errors():
        if num < 1 or strips < 1:
            raise ValueError("--num and --strips must be at least 1")
        target = pick_device(device)
        generator, _ = load_generator(source, ema=not raw, device=target, best=best)
    src = Path(source)
    run_dir = src if src.is_dir() else src.parent.parent
    out = Path(out_dir) if out_dir else run_dir / "paintings" / f"seed-{seed}"
    (out / "images").mkdir(parents=True, exist_ok=True)
    images = generator.sample(num, seed=seed)
    from PIL import Image

    for index, image in enumerate(to_uint8(images)):
        array = image.permute(1, 2, 0).numpy()
        Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(
            out / "images" / f"{index:05d}.png"
        )
    save_image_grid(images, out / "grid.png", scale=2)
    latents = generator.sample_latents(min(strips, num), torch.Generator().manual_seed(seed))
    with torch.no_grad():
        result = generator.paint(latents.to(target), frames=True)
    updates, partials = result.updates.float().cpu(), result.partials.float().cpu()
    save_painting_strip(updates, partials, out / "strip.png")
    save_painting_gif(partials, out / "painting.gif")
    click.echo(f"wrote {num} images, grid.png, strip.png and painting.gif to {out}")
