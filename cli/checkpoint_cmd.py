"""``fwp checkpoint``: work on checkpoint files (converting those of fwp before format 2)."""

from __future__ import annotations

from pathlib import Path

import click

from .common import user_errors


@click.group("checkpoint")
def checkpoint() -> None:
    """Checkpoint files: fwp reads them as data and never runs code from them."""


@checkpoint.command("convert")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the converted file here [default: over SOURCE, atomically].",
)
@click.option(
    "--trust-checkpoint",
    is_flag=True,
    help="Allow unpickling SOURCE, which RUNS ANY CODE IT HOLDS: only for files that you made "
    "or that come from a source you trust (needed for checkpoints of fwp before format 2).",
)
def convert(source: Path, out: Path | None, trust_checkpoint: bool) -> None:
    """Rewrite the checkpoint SOURCE (a file, or a run directory: its last and best
    checkpoints) in the current format, which loads without unpickling."""
    from fwp.gan.checkpoint import CHECKPOINT_VERSION
    from fwp.gan.checkpoint_convert import convert_checkpoint

    with user_errors():
        results = convert_checkpoint(source, out, trust_checkpoint=trust_checkpoint)
    for result in results:
        if result.converted:
            click.echo(
                f"converted {result.source} (step {result.step}) to checkpoint format "
                f"{CHECKPOINT_VERSION}: {result.destination}"
            )
        elif result.destination != result.source:
            click.echo(f"{result.source} is already current; copied to {result.destination}")
        else:
            click.echo(f"{result.source} is already in checkpoint format {CHECKPOINT_VERSION}")
