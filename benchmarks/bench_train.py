"""Training-step and generation speed: fwp's reference mode against its fast mode, in one run.

Reference mode: the painting is the step-by-step scan of the rule, eager, fp32, plain Adam.
Fast mode (the default of ``fwp train``): the rule's parallel path, one discriminator pass over
real and fake images, foreach/fused Adam, and on CUDA TF32 matmuls and a channels-last
discriminator. Compile mode: fast mode plus torch.compile of
the generator and the discriminator (``--run-compile default``). All train the same model with the
same loss. Coop: fast mode with the cooperative objective (CoopNets, Xie et al., TPAMI 2018) of the
``coop`` preset (``coop-quick`` with ``--quick``): the same painter taught by a descriptor's
Langevin revision instead of a discriminator; its row also shows the share of the step spent in
the descriptor's Langevin dynamics.

    python benchmarks/bench_train.py                 # the paper's configuration (GPU)
    python benchmarks/bench_train.py --quick         # a small configuration that runs on a CPU
    python benchmarks/bench_train.py --modes reference fast compile --compile-mode max-autotune
    python benchmarks/bench_train.py --quick --modes fast coop

Prints: device, configuration, batch, median ms/step over the timed steps (after warm-up, which
includes compilation), training images/s, peak GPU memory, aten operations per step (the average
over ``gp_every`` consecutive steps, counted eagerly: each non-view operation is at least one
kernel launch on a GPU, so this count times the per-launch cost is a floor that only compilation
or CUDA graphs lower), the speed-up over the reference mode, and for the coop row the share of the
step spent in Langevin revision; then generation throughput (painter only, no grad).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from collections import Counter

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from fwp.gan.compiled import maybe_compile
from fwp.gan.config import build_config
from fwp.gan.runtime import set_cuda_math
from fwp.gan.trainer import Trainer


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_memory_gib(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / 2**30


#: aten operations that only make views (no kernel launch)
VIEW_OPS = frozenset(
    {
        *("view", "_unsafe_view", "_reshape_alias", "reshape", "view_as", "as_strided", "alias"),
        *("expand", "permute", "transpose", "t", "unsqueeze", "squeeze", "unflatten", "flatten"),
        *("slice", "select", "narrow", "diagonal", "split", "split_with_sizes", "unbind", "chunk"),
        "detach",
    }
)


class OperationCount(TorchDispatchMode):
    """Counts the aten operations that run inside it, views excepted."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if name not in VIEW_OPS:
            self.counts[name] += 1
        return func(*args, **(kwargs or {}))


class LangevinTimer:
    """Times every call of a cooperative objective's ``revise`` (its Langevin dynamics), with the
    device synchronised around it; ``seconds`` is the running total."""

    def __init__(self, objective, device: torch.device) -> None:
        self.seconds = 0.0
        revise = objective.revise

        def timed(*args, **kwargs):
            _sync(device)
            start = time.perf_counter()
            result = revise(*args, **kwargs)
            _sync(device)
            self.seconds += time.perf_counter() - start
            return result

        objective.revise = timed


def time_training(preset: str, options: dict, warmup: int, steps: int) -> dict:
    """Median seconds per full training step (D step, G step, EMA update) on random data; for the
    cooperative objective also the share of the timed steps spent in Langevin revision."""
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
        cooperative = config.objective.name == "coop"
        langevin = LangevinTimer(trainer.objective, device) if cooperative else None
        times, langevin_seconds = [], 0.0
        for index in range(warmup + steps):
            if index == warmup and langevin is not None:
                langevin.seconds = 0.0
            _sync(device)
            start = time.perf_counter()
            trainer.train_step()
            _sync(device)
            if index >= warmup:
                times.append(time.perf_counter() - start)
        if langevin is not None:
            langevin_seconds = langevin.seconds
        median = statistics.median(times)
        gp_every = config.objective.gp_every
        operations = None
        if config.run.compile == "off":  # compiled graphs hide their operations from the count
            counter = OperationCount()
            with counter:
                for _ in range(gp_every):
                    trainer.train_step()
            operations = sum(counter.counts.values()) / gp_every
        return {
            "device": str(device),
            "batch": batch,
            "ms": median * 1e3,
            "img_s": batch / median,
            "peak_gib": _peak_memory_gib(device),
            "operations": operations,
            "langevin_share": langevin_seconds / sum(times) if langevin is not None else None,
            "generator": trainer.ema,
        }


@torch.inference_mode()
def time_generation(
    generator, latent_dim: int, device: torch.device, batch: int, repeats: int, amp: bool
) -> float:
    """Images per second of ``generator`` (latents -> images, no grad) at ``batch``; ``amp``:
    under bf16 autocast (the painting itself stays float32)."""
    z = torch.randn(batch, latent_dim, device=device)
    precision = (
        torch.autocast(device_type=device.type, dtype=torch.bfloat16)
        if amp
        else contextlib.nullcontext()
    )
    with precision:
        for _ in range(2):  # warm-up (and compilation)
            generator(z)
        times = []
        for _ in range(repeats):
            _sync(device)
            start = time.perf_counter()
            generator(z)
            _sync(device)
            times.append(time.perf_counter() - start)
    return batch / statistics.median(times)


def mode_options(mode: str, compile_mode: str) -> dict:
    """The configuration options of a benchmark mode."""
    return {
        "reference": {"run.reference": True},
        "fast": {"run.reference": False},
        "amp": {"run.reference": False, "optim.amp": True},
        "compile": {"run.reference": False, "run.compile": compile_mode},
        "coop": {"run.reference": False},
    }[mode]


def mode_preset(mode: str, quick: bool) -> str:
    """The preset a mode starts from: the cooperative presets for "coop", else the GAN's."""
    if mode == "coop":
        return "coop-quick" if quick else "coop"
    return "quick" if quick else "paper"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small configuration for a CPU")
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--batch",
        type=int,
        nargs="*",
        default=None,
        help="batch sizes (default: 20 64 256 for the paper, 32 with --quick)",
    )
    parser.add_argument(
        "--modes",
        nargs="*",
        default=["reference", "fast", "compile", "coop"],
        choices=["reference", "fast", "amp", "compile", "coop"],
        help="modes to time (reference first: the speed-up column is relative to it)",
    )
    parser.add_argument("--compile-mode", default="default", help="torch.compile mode of 'compile'")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 50 / 5)")
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--generation-batch", type=int, default=256)
    args = parser.parse_args()

    batches = args.batch or ([32] if args.quick else [20, 64, 256])
    steps = args.steps or (5 if args.quick else 50)
    warmup = args.warmup if args.warmup is not None else (3 if args.quick else 10)
    base = {"run.device": args.device, "run.tensorboard": False}

    header = (
        f"{'mode':<10} {'device':<8} {'config':<10} {'batch':>5} {'ms/step':>9} "
        f"{'img/s':>9} {'peak GiB':>9} {'ops/step':>9} {'speed-up':>9} {'Langevin':>9}"
    )
    print(header)
    print("-" * len(header))
    generators = {}
    for batch in batches:
        results = {}
        for mode in args.modes:
            options = {**base, "optim.batch_size": batch, **mode_options(mode, args.compile_mode)}
            preset = mode_preset(mode, args.quick)
            results[mode] = time_training(preset, options, warmup, steps)
            generators[mode] = results[mode].pop("generator")
            r = results[mode]
            baseline = results[args.modes[0]]["ms"]
            peak = f"{r['peak_gib']:.2f}" if r["peak_gib"] is not None else "-"
            operations = f"{r['operations']:.0f}" if r["operations"] is not None else "-"
            share = r["langevin_share"]
            langevin = f"{100 * share:.0f}%" if share is not None else "-"
            print(
                f"{mode:<10} {r['device']:<8} {preset:<10} {batch:>5} {r['ms']:>9.1f} "
                f"{r['img_s']:>9.1f} {peak:>9} {operations:>9} {baseline / r['ms']:>8.2f}x "
                f"{langevin:>9}",
                flush=True,
            )

    print()
    print(f"generation (EMA generator only, no grad, batch {args.generation_batch})")
    rates = {}
    for mode, generator in generators.items():
        device = next(generator.parameters()).device
        set_cuda_math(device, fast=mode != "reference")
        if mode == "compile":
            generator = maybe_compile(generator, args.compile_mode, device, "generator")
        rates[mode] = time_generation(
            generator,
            generators[mode].latent_dim,
            device,
            args.generation_batch,
            5 if args.quick else 20,
            amp=mode == "amp",
        )
        first = rates[args.modes[0]]
        print(f"{mode:<10} {rates[mode]:>12.1f} img/s {rates[mode] / first:>8.2f}x", flush=True)


if __name__ == "__main__":
    main()
