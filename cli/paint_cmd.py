"""``fwp paint``: images, a grid, painting strips and an animation from a trained run."""

from __future__ import annotations

import click

from .common import plugin_option, user_errors


@click.command()
@click.argument("source", type=click.Path(exists=True))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Output folder [default: RUN/paintings/seed-SEED, or raw-seed-SEED with --raw].",
)
@click.option("--num", default=64, show_default=True, help="Number of images.")
@click.option("--seed", default=0, show_default=True, help="Seed of the latents.")
@click.option("--raw", is_flag=True, help="Use the raw generator weights instead of the EMA.")
@click.option(
    "--best",
    is_flag=True,
    help="Use the best (lowest FID) checkpoint; it exists when the run measured FID "
    "(fwp train --fid-every N).",
)
@click.option("--strips", default=4, show_default=True, help="Latents shown in the painting strip.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda[:N].")
@plugin_option
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
    for the first --strips latents) and painting.gif (the painting process). For a painter with
    a refiner, images/ and grid.png are refined and painter_grid.png shows the same latents
    painted before refinement.
    """
    from fwp.gan.paintings import paint_run
    from fwp.gan.runtime import pick_device

    with user_errors():
        paintings = paint_run(
            source,
            num=num,
            seed=seed,
            strips=strips,
            raw=raw,
            best=best,
            device=pick_device(device),
            out=out_dir,
        )
    files = ", ".join(paintings.files[:-1]) + f" and {paintings.files[-1]}"
    click.echo(f"wrote {paintings.num} images, {files} to {paintings.folder}")
