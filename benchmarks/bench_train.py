"""Training-step and generation speed: fwp's reference mode against its fast mode, in one run.

Reference mode: the painting is the step-by-step scan of the rule, eager, fp32, plain Adam.
Fast mode (the default of ``fwp train``): the rule's parallel path, foreach/fused Adam, and on
CUDA TF32 matmuls and a channels-last discriminator. Both train the same model with the same loss.

    python benchmarks/bench_train.py                 # the paper's configuration (GPU)
    python benchmarks/bench_train.py --quick         # a small configuration that runs on a CPU

Prints: device, configuration, batch, median ms/step over the timed steps (after warm-up),
training images/s, peak GPU memory, and the fast/reference ratio; then generation throughput
(painter only, no grad).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from fwp.gan.config import build_config
from fwp.gan.trainer import Trainer, ema_update


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_memory_gib(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / 2**30


def time_training(preset: str, options: dict, warmup: int, steps: int) -> dict:
    """Median seconds per full training step (D step, G step, EMA update) on random data."""
    config = build_config(preset, options=options)
    batch = config.optim.batch_size
    size = tuple(config.data.size)
    images = torch.randint(
        0, 256, (max(4 * batch, 64), config.data.channels, *size), dtype=torch.uint8
    )
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(config, run_dir, images=images, progress=False)
        device = trainer.device
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        times = []
        for index in range(warmup + steps):
            _sync(device)
            start = time.perf_counter()
            trainer.objective.train_step(trainer.stream.next_batch(), index)
            ema_update(trainer.ema, trainer.objective.generator, config.optim.ema_decay)
            _sync(device)
            if index >= warmup:
                times.append(time.perf_counter() - start)
        median = statistics.median(times)
        return {
            "device": str(device),
            "batch": batch,
            "ms": median * 1e3,
            "img_s": batch / median,
            "peak_gib": _peak_memory_gib(device),
            "generator": trainer.ema,
        }


@torch.no_grad()
def time_generation(generator: torch.nn.Module, batch: int, repeats: int) -> float:
    """Images per second of the painter alone (no grad) at ``batch``."""
    device = next(generator.parameters()).device
    z = torch.randn(batch, generator.latent_dim, device=device)
    generator(z)
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        generator(z)
        _sync(device)
        times.append(time.perf_counter() - start)
    return batch / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small configuration for a CPU")
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--batch",
        type=int,
        nargs="*",
        default=None,
        help="batch sizes (default: 20 for the paper, 32 with --quick)",
    )
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 50 / 5)")
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--generation-batch", type=int, default=256)
    args = parser.parse_args()

    preset = "quick" if args.quick else "paper"
    batches = args.batch or ([32] if args.quick else [20, 64, 256])
    steps = args.steps or (5 if args.quick else 50)
    warmup = args.warmup if args.warmup is not None else (2 if args.quick else 10)
    base = {"run.device": args.device, "run.tensorboard": False}

    header = (
        f"{'mode':<10} {'device':<8} {'config':<7} {'batch':>5} {'ms/step':>9} "
        f"{'img/s':>9} {'peak GiB':>9} {'speed-up':>9}"
    )
    print(header)
    print("-" * len(header))
    generators = {}
    for batch in batches:
        results = {}
        for mode in ("reference", "fast"):
            options = {**base, "optim.batch_size": batch, "run.reference": mode == "reference"}
            results[mode] = time_training(preset, options, warmup, steps)
            generators[mode] = results[mode].pop("generator")
        for mode, r in results.items():
            ratio = results["reference"]["ms"] / r["ms"]
            peak = f"{r['peak_gib']:.2f}" if r["peak_gib"] is not None else "-"
            print(
                f"{mode:<10} {r['device']:<8} {preset:<7} {batch:>5} {r['ms']:>9.1f} "
                f"{r['img_s']:>9.1f} {peak:>9} {ratio:>8.2f}x"
            )

    print()
    print(f"generation (painter only, no grad, batch {args.generation_batch})")
    rates = {
        mode: time_generation(g, args.generation_batch, 5 if args.quick else 20)
        for mode, g in generators.items()
    }
    for mode, rate in rates.items():
        print(f"{mode:<10} {rate:>12.1f} img/s {rate / rates['reference']:>8.2f}x")


if __name__ == "__main__":
    main()
