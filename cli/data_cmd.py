"""``fwp data``: list the built-in datasets and look at real samples of any source."""

from __future__ import annotations

from pathlib import Path

import click
import torch

from fwp.gan.data import list_datasets, load_images, to_float
from fwp.gan.naming import slug
from fwp.gan.viz import save_image_grid

from .common import SIZE, user_errors

__all__ = ["data"]


@click.group()
def data() -> None:
    """Datasets: list the built-in ones, look at samples of any of them or of a folder."""


@data.command("list")
def list_cmd() -> None:
    """List the built-in datasets and whether each is available here."""
    infos = list_datasets()
    name_w = max(len("NAME"), *(len(i.name) for i in infos))
    click.echo(f"{'NAME':<{name_w}}  AVAILABLE  DESCRIPTION")
    for info in infos:
        line = f"{info.name:<{name_w}}  {'yes' if info.available else 'no':<9}  {info.description}"
        if not info.available:
            line += f"  [install: {info.how_to_install}]"
        click.echo(line)
    click.echo("\nAny folder of images (jpg, jpeg, png, webp, bmp) works too: give its path.")


@data.command("show")
@click.argument("source", metavar="NAME_OR_FOLDER")
@click.option("--size", type=SIZE, default="64", show_default=True, help="64 or HxW.")
@click.option(
    "--num",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    help="How many samples to show.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="PNG to write [default: ./<source>-<size>-samples.png].",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Which random samples.")
@click.option("--channels", type=click.Choice(["1", "3"]), default="3", show_default=True)
@click.option(
    "--scale",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Nearest-neighbour upscaling of the PNG.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=None,
    help="Only read the first LIMIT images (quicker for big folders).",
)
@click.option("--quiet", is_flag=True, help="No progress messages on stderr.")
def show_cmd(
    source: str,
    size: tuple[int, int],
    num: int,
    out: Path | None,
    seed: int,
    channels: str,
    scale: int,
    limit: int | None,
    quiet: bool,
) -> None:
    """Write a PNG grid of NUM random real samples of NAME_OR_FOLDER and print its path."""
    with user_errors():
        images = load_images(source, size, int(channels), limit=limit, progress=not quiet)
    gen = torch.Generator().manual_seed(seed)
    pick = torch.randperm(images.shape[0], generator=gen)[:num]
    if out is None:
        name = slug(Path(source).name or source, limit=100)
        out = Path(f"{name}-{size[0]}x{size[1]}-samples.png")
    path = save_image_grid(to_float(images[pick]), out, scale=scale)
    click.echo(str(path))
