"""The discriminator's local 3x3 attention: shifted views against the F.unfold reference.

The paper's discriminator runs :class:`~fwp.painters.layers.LinearLocalAttention` (8 heads of 64)
on its 32x32 features; its local branch was written with ``F.unfold``, which on CUDA launches one
im2col kernel per image and copies every neighbourhood. This prints the median milliseconds of
both paths, forward and forward+backward, and their ratio.

    python benchmarks/bench_attention.py                   # the paper's shapes, batch 20 and 64
    python benchmarks/bench_attention.py --quick --device cpu
"""

from __future__ import annotations

import argparse
from functools import partial

import torch
from bench_paint import median_ms

from fwp.gan.runtime import pick_device
from fwp.gan.tables import format_table
from fwp.painters.layers import neighbourhood_attention, neighbourhood_attention_reference


def _forward(attention, q, k, v) -> None:
    with torch.no_grad():
        attention(q, k, v, 3)


def _forward_backward(attention, q, k, v) -> None:
    attention(q, k, v, 3).square().sum().backward()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch", type=int, nargs="*", default=[20, 64])
    parser.add_argument("--side", type=int, default=32, help="feature map side")
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--dim-head", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="small shapes for a CPU")
    args = parser.parse_args()
    device = pick_device(args.device)
    if args.quick:
        args.batch, args.side, args.dim_head, args.repeats = [4], 16, 16, 3
    rows = []
    for batch in args.batch:
        shape = (batch * args.heads, args.dim_head, args.side, args.side)
        q, k, v = (torch.randn(shape, device=device, requires_grad=True) for _ in range(3))
        timings = {}
        for name, attention in (
            ("unfold", neighbourhood_attention_reference),
            ("shifted", neighbourhood_attention),
        ):
            timings[name] = (
                median_ms(partial(_forward, attention, q, k, v), device, 2, args.repeats),
                median_ms(partial(_forward_backward, attention, q, k, v), device, 2, args.repeats),
            )
        for index, label in enumerate(("fwd", "fwd+bwd")):
            unfold, shifted = timings["unfold"][index], timings["shifted"][index]
            rows.append(
                [batch, label, f"{unfold:.2f}", f"{shifted:.2f}", f"{unfold / shifted:.1f}x"]
            )
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(
        f"local attention, {name}, torch {torch.__version__}, {args.heads} heads of "
        f"{args.dim_head}, {args.side}x{args.side}; median of {args.repeats}"
    )
    print(format_table(["B", "pass", "unfold ms", "shifted ms", "unfold/shifted"], rows, True))


if __name__ == "__main__":
    main()
