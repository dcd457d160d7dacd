"""Painting speed: the reference scan over ``step`` against each rule's parallel fast path.

For each rule and batch size the script times, in float32 at the paper's size (C = 3 channels,
T = 64 steps, 64 x 64 images):

- ``fwd``: painting W_T without autograd (sampling, FID);
- ``fwd+bwd``: painting with autograd and back-propagating a random cotangent into K, V and LR
  (one generator training step's share of the rule).

Each entry is the median over ``--repeats`` runs after warm-up runs; on CUDA every run ends with
``torch.cuda.synchronize()``. The last column is scan time / fast time (> 1: the fast path wins).
Run by hand (not in CI)::

    python benchmarks/bench_paint.py                    # CPU, or CUDA when available
    python benchmarks/bench_paint.py --quick --device cpu
    python benchmarks/bench_paint.py --device cuda --batch 20 --batch 512

On a CPU shared with other jobs, ``--threads 1`` gives steadier numbers: an oversubscribed
thread pool slows the fast paths' larger kernels far more than the scan's small ones.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from fwp.gan.runtime import pick_device
from fwp.gan.tables import format_table
from fwp.rules import LearningRule, get_rule

DEFAULT_RULES = ("delta", "delta_rowlr", "delta_gated", "hebb")
DEFAULT_BATCHES = (20, 128)


@dataclass(frozen=True)
class Case:
    """One benchmark configuration."""

    rule: str
    batch: int
    channels: int
    steps: int
    size: int


def make_inputs(
    rule: LearningRule, case: Case, device: torch.device, seed: int = 0
) -> tuple[Tensor, Tensor, Tensor]:
    """Activated K (B, C, T, Wd), V (B, C, T, H), LR (B, C, T, L) from random logits, float32."""
    gen = torch.Generator().manual_seed(seed)
    B, C, T, H = case.batch, case.channels, case.steps, case.size
    logits = (
        torch.randn(B, C, T, H, generator=gen) * 3,
        torch.randn(B, C, T, H, generator=gen),
        torch.randn(B, C, T, rule.lr_size(H), generator=gen),
    )
    K, V, LR = rule.activate_sequence(*logits)
    return K.to(device), V.to(device), LR.to(device)


def median_ms(fn: Callable[[], object], device: torch.device, warmup: int, repeats: int) -> float:
    """Median wall time of ``fn()`` in milliseconds, after ``warmup`` untimed calls."""

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def time_case(
    case: Case, device: torch.device, warmup: int, repeats: int
) -> dict[str, tuple[float, float]]:
    """{"fwd" | "fwd+bwd": (scan ms, fast ms)} for one case."""
    rule = get_rule(case.rule)
    if not rule.has_fast_path:
        raise SystemExit(f"rule {case.rule!r} has no fast path to compare with the scan")
    K, V, LR = make_inputs(rule, case, device)
    leaves = [t.detach().clone().requires_grad_(True) for t in (K, V, LR)]
    G = torch.randn(case.batch, case.channels, case.size, case.size, device=device)

    def forward(paint: Callable[..., Tensor]) -> Callable[[], object]:
        def run() -> Tensor:
            with torch.no_grad():
                return paint(K, V, LR)

        return run

    def forward_backward(paint: Callable[..., Tensor]) -> Callable[[], object]:
        def run() -> tuple[Tensor, ...]:
            return torch.autograd.grad(paint(*leaves), leaves, grad_outputs=G)

        return run

    results = {}
    for mode, wrap in (("fwd", forward), ("fwd+bwd", forward_backward)):
        scan = median_ms(wrap(rule.scan), device, warmup, repeats)
        fast = median_ms(wrap(rule.paint), device, warmup, repeats)
        results[mode] = (scan, fast)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    parser.add_argument("--quick", action="store_true", help="1 warm-up and 3 timed runs")
    parser.add_argument("--rule", dest="rules", action="append", help="repeatable")
    parser.add_argument("--batch", dest="batches", type=int, action="append", help="repeatable")
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--size", type=int, default=64, help="image height = width")
    parser.add_argument("--warmup", type=int, default=None, help="default: 3 (1 with --quick)")
    parser.add_argument("--repeats", type=int, default=None, help="default: 10 (3 with --quick)")
    parser.add_argument(
        "--threads", type=int, default=None, help="CPU intra-op threads (default: torch's choice)"
    )
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    try:
        device = pick_device(args.device)
    except ValueError as err:
        raise SystemExit(str(err)) from None
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 3)
    repeats = args.repeats if args.repeats is not None else (3 if args.quick else 10)
    rules = args.rules or list(DEFAULT_RULES)
    batches = args.batches or list(DEFAULT_BATCHES)
    where = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"CPU, {torch.get_num_threads()} threads"
    )
    print(
        f"bench_paint: {where}, torch {torch.__version__}, float32, C={args.channels}, "
        f"T={args.steps}, {args.size}x{args.size}; median of {repeats} after {warmup} warm-up"
    )
    rows = []
    for rule in rules:
        for batch in batches:
            case = Case(rule, batch, args.channels, args.steps, args.size)
            for mode, (scan, fast) in time_case(case, device, warmup, repeats).items():
                rows.append(
                    [rule, str(batch), mode, f"{scan:.2f}", f"{fast:.2f}", f"{scan / fast:.1f}x"]
                )
                print(
                    f"  {rule} B={batch} {mode}: scan {scan:.2f} ms, fast {fast:.2f} ms", flush=True
                )
    print()
    print(format_table(["rule", "B", "pass", "scan ms", "fast ms", "scan/fast"], rows, True))


if __name__ == "__main__":
    main()
