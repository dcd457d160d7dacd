"""Where a training step's time goes: torch.profiler over a few full steps, as a table.

Runs ``--steps`` full training steps (D step, G step, EMA update; one of them with the gradient
penalty when ``--steps`` >= ``gp_every``) after warm-up and prints the operations with the most
self time on the device (CUDA) or the CPU, plus the number of kernel launches per step on CUDA.
Optionally writes a Chrome trace.

    python benchmarks/profile_step.py                          # paper configuration, fast mode
    python benchmarks/profile_step.py --reference
    python benchmarks/profile_step.py --quick --device cpu --trace step.json
"""

from __future__ import annotations

import argparse
import tempfile

import torch
from torch.profiler import ProfilerActivity, profile

from fwp.gan.config import build_config
from fwp.gan.trainer import Trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the quick preset (for a CPU)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch", type=int, default=None, help="default: the preset's")
    parser.add_argument("--reference", action="store_true", help="profile the reference mode")
    parser.add_argument("--compile", default="off", help="run.compile mode to profile")
    parser.add_argument("--amp", action="store_true", help="bf16 autocast (CUDA)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--rows", type=int, default=25)
    parser.add_argument("--trace", default=None, help="write a Chrome trace here")
    args = parser.parse_args()

    options = {
        "run.device": args.device,
        "run.tensorboard": False,
        "run.reference": args.reference,
        "run.compile": args.compile,
        "optim.amp": args.amp,
    }
    if args.batch:
        options["optim.batch_size"] = args.batch
    config = build_config("quick" if args.quick else "paper", options=options)
    batch = config.optim.batch_size
    images = torch.randint(
        0, 256, (max(4 * batch, 64), config.data.channels, *config.data.size), dtype=torch.uint8
    )
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(config, run_dir, images=images, progress=False)
        device = trainer.device

        for _ in range(args.warmup):
            trainer.train_step()
        activities = [ProfilerActivity.CPU]
        if device.type == "cuda":
            activities.append(ProfilerActivity.CUDA)
            torch.cuda.synchronize(device)
        with profile(activities=activities) as prof:
            for _ in range(args.steps):
                trainer.train_step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)

    sort = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    mode = "reference" if args.reference else f"fast (compile {args.compile}, amp {args.amp})"
    print(f"device {device}; {mode}; batch {batch}; {args.steps} steps profiled")
    print(prof.key_averages().table(sort_by=sort, row_limit=args.rows))
    if device.type == "cuda":
        launch_calls = ("cudaLaunchKernel", "cuLaunchKernel", "cudaGraphLaunch")
        launches = sum(e.count for e in prof.key_averages() if e.key.startswith(launch_calls))
        print(f"kernel launches per step: {launches / args.steps:.0f}")
    if args.trace:
        prof.export_chrome_trace(args.trace)
        print(f"trace written to {args.trace}")


if __name__ == "__main__":
    main()
