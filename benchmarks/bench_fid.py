"""FID/KID floor, ceiling and a blur probe on the emoji dataset, plus feature throughput.

For each resolution, the real images (all, or ``--num-real`` drawn at random) are split at random
into halves A and B, and A's statistics are compared with:

- B (the floor: two samples of the same data),
- uniform-noise uint8 images at the same resolution (the ceiling; as many as B),
- B blurred with a Gaussian of sigma ``--blur-sigma`` pixels at the training resolution.

Run by hand (not in CI)::

    python benchmarks/bench_fid.py                      # all 4009 emoji, 32x32 and 64x64
    python benchmarks/bench_fid.py --num-real 1000      # quicker
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms.functional as TF

from fwp.gan.data import load_images
from fwp.gan.metrics import (
    FeatureStats,
    InceptionFeatures,
    compare_stats,
    feature_stats,
    save_stats,
)


def gaussian_blur_u8(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur uint8 ``(N, C, H, W)`` with a Gaussian of ``sigma`` pixels (kernel 2*ceil(3 sigma)+1,
    reflect padding); returns uint8 of the same shape."""
    k = 2 * math.ceil(3 * sigma) + 1
    blurred = TF.gaussian_blur(images.float(), kernel_size=[k, k], sigma=[sigma, sigma])
    return blurred.round().clamp(0, 255).to(torch.uint8)


def timed_stats(
    images: torch.Tensor, model: InceptionFeatures, batch_size: int
) -> tuple[FeatureStats, float]:
    start = time.perf_counter()
    stats = feature_stats(images, model, batch_size, progress=True)
    return stats, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="emoji")
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--num-real", type=int, default=None, help="default: all images")
    parser.add_argument("--blur-sigma", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--inception-weights", default=None)
    parser.add_argument("--fid-method", choices=["sqrtm", "eigh"], default="sqrtm")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--kid-subset-size",
        type=int,
        default=None,
        help="default min(1000, n // 2), so that the std over subsets means something",
    )
    parser.add_argument("--save-stats", default=None, help="folder to save each set's .npz")
    args = parser.parse_args()

    model = InceptionFeatures(args.inception_weights, device=args.device)
    print(
        f"Inception weights: {model.weights_origin}; device {model.device}, "
        f"torch threads {torch.get_num_threads()}",
        flush=True,
    )
    rows, speeds = [], []
    for side in args.sizes:
        images = load_images(args.dataset, (side, side), 3)
        perm = torch.randperm(images.shape[0], generator=torch.Generator().manual_seed(args.seed))
        if args.num_real is not None:
            perm = perm[: args.num_real]
        half = perm.shape[0] // 2
        a, b = images[perm[:half]], images[perm[half : 2 * half]]
        noise = torch.randint(
            0, 256, b.shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(args.seed)
        )
        blurred = gaussian_blur_u8(b, args.blur_sigma)
        done, seconds = 0, 0.0
        stats = {}
        for name, batch in (("A", a), ("B", b), ("noise", noise), ("blur", blurred)):
            stats[name], sec = timed_stats(batch, model, args.batch_size)
            done, seconds = done + batch.shape[0], seconds + sec
        speeds.append((side, done, seconds))
        if args.save_stats:
            for name, st in stats.items():
                save_stats(st, Path(args.save_stats) / f"{args.dataset}-{side}-{name}.npz")
        for label, other in (
            ("floor: half A vs half B", "B"),
            ("ceiling: A vs uniform noise", "noise"),
            (f"A vs B blurred (sigma {args.blur_sigma:g} px)", "blur"),
        ):
            start = time.perf_counter()
            subset = args.kid_subset_size or min(1000, half // 2)
            r = compare_stats(
                stats["A"], stats[other], subset_size=subset, fid_method=args.fid_method
            )
            rows.append((side, label, r, time.perf_counter() - start))
            print(f"{side}x{side} {label}: FID {r.fid:.2f} KID {r.kid:.4f}", flush=True)

    print()
    print("| size | comparison | real | other | FID | KID (x1e3) ± std |")
    print("|---|---|---|---|---|---|")
    for side, label, r, _ in rows:
        print(
            f"| {side}x{side} | {label} | {r.num_real} | {r.num_fake} | {r.fid:.2f} | "
            f"{1e3 * r.kid:.2f} ± {1e3 * r.kid_std:.2f} |"
        )
    print()
    for side, done, seconds in speeds:
        print(
            f"features {side}x{side}: {done} images in {seconds:.0f} s = {done / seconds:.2f} "
            f"images/s on {model.device} (batch {args.batch_size})"
        )
    comp = sum(sec for *_, sec in rows)
    print(f"FID+KID computation ({args.fid_method}): {comp:.0f} s for {len(rows)} comparisons")
    print(
        f"KID: 100 subsets of {args.kid_subset_size or 'min(1000, n // 2)'} images per side; "
        f"seed {args.seed}; "
        f"numpy {np.__version__}, torch {torch.__version__}"
    )


if __name__ == "__main__":
    main()
