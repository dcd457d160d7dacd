"""The training loop: data, EMA, checkpoints, logging, samples, painting strips and FID.

One :class:`Trainer` drives any :class:`~fwp.gan.objectives.Objective`. It never synchronises
with the device inside a step: losses stay on the device and are summed, and are read (and checked
for NaN/Inf) only every ``run.log_every`` steps and before each checkpoint.

A run directory holds::

    config.json            the resolved configuration
    checkpoints/last.pt    the whole training state (atomic), and best.pt (lowest FID)
    samples/               EMA sample grids and painting strips at fixed latents
    metrics.csv            losses, img/s, learning rates, FID/KID
    tb/                    TensorBoard scalars
"""

from __future__ import annotations

import copy
import csv
import json
import math
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from fwp.painters import Generator, count_parameters

from .checkpoint import (
    BEST,
    CHECKPOINT_DIR,
    CONFIG_FILE,
    LAST,
    atomic_save,
    atomic_write_text,
    build_generator,
    load_checkpoint,
)
from .config import ConfigError, TrainConfig
from .data import DataStream, load_images
from .objectives import Objective, build_objective


class TrainingError(RuntimeError):
    """Training cannot continue (e.g. the loss kept becoming NaN after every rollback)."""


def pick_device(name: str) -> torch.device:
    """``auto`` picks CUDA when available, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("run.device is cuda but no CUDA device is available; use --device cpu")
    return device


def set_cuda_math(device: torch.device, fast: bool, deterministic: bool = False) -> None:
    """On CUDA, TF32 matmuls and convolutions and cuDNN autotuning in fast mode, strict float32
    without autotuning otherwise (these switches are process-wide, so they are set both ways)."""
    if device.type != "cuda":
        return
    torch.backends.cuda.matmul.allow_tf32 = fast
    torch.backends.cudnn.allow_tf32 = fast
    torch.backends.cudnn.benchmark = fast and not deterministic


def rng_state() -> dict[str, Any]:
    state = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model for parameters; buffers are copied."""
    ema_params = [p for p in ema.parameters()]
    model_params = [p.detach() for p in model.parameters()]
    torch._foreach_lerp_(ema_params, model_params, 1.0 - decay)
    for ema_buffer, buffer in zip(ema.buffers(), model.buffers(), strict=True):
        ema_buffer.copy_(buffer)


class MetricsLog:
    """metrics.csv (append-only, truncated on rollback/resume) plus optional TensorBoard."""

    def __init__(self, path: Path, columns: list[str], tensorboard_dir: Path | None) -> None:
        self.path = path
        self.columns = columns
        self.writer = None
        if tensorboard_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(tensorboard_dir))
            except ImportError as err:  # tensorboard is a dependency, but stay usable without it
                print(f"fwp: TensorBoard logging disabled ({err})", file=sys.stderr)

    def truncate_after(self, step: int) -> None:
        """Drop rows logged after ``step`` (they will be logged again after a rollback)."""
        if not self.path.is_file():
            return
        with self.path.open(newline="") as handle:
            rows = [row for row in csv.DictReader(handle) if int(row["step"]) <= step]
        self._write(rows)

    def _write(self, rows: list[dict[str, Any]]) -> None:
        text_rows = [",".join(self.columns)]
        for row in rows:
            text_rows.append(",".join(str(row.get(c, "")) for c in self.columns))
        atomic_write_text("\n".join(text_rows) + "\n", self.path)

    def append(self, row: dict[str, Any]) -> None:
        new_file = not self.path.is_file()
        with self.path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.columns, extrasaction="ignore")
            if new_file:
                writer.writeheader()
            writer.writerow(row)
        if self.writer is not None:
            step = int(row["step"])
            for key, value in row.items():
                if key != "step" and isinstance(value, int | float) and math.isfinite(value):
                    self.writer.add_scalar(key, value, step)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class Progress:
    """A one-line progress display: step, losses, img/s and ETA (printed at log steps only)."""

    def __init__(self, total_steps: int, batch_size: int, enabled: bool) -> None:
        self.total = total_steps
        self.batch_size = batch_size
        self.enabled = enabled
        self.interactive = enabled and sys.stderr.isatty()

    def update(self, step: int, losses: dict[str, float], images_per_second: float) -> None:
        if not self.enabled:
            return
        remaining = (self.total - step) * self.batch_size / max(images_per_second, 1e-9)
        shown = " ".join(f"{k} {v:.3f}" for k, v in losses.items() if k in ("g_loss", "d_loss"))
        line = (
            f"step {step}/{self.total} | {shown} | {images_per_second:.1f} img/s | "
            f"ETA {format_seconds(remaining)}"
        )
        end = "\r" if self.interactive else "\n"
        print(line.ljust(100), end=end, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.interactive:
            print(file=sys.stderr)


def format_seconds(seconds: float) -> str:
    """A duration as '4m05s', or '1h07m' from an hour on."""
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    last_losses: dict[str, float]
    best_fid: float | None


def write_config(config: TrainConfig, run_dir: Path) -> Path:
    return atomic_write_text(json.dumps(config.to_dict(), indent=2) + "\n", run_dir / CONFIG_FILE)


def read_run_config(run_dir: Path) -> TrainConfig:
    """The resolved configuration saved in a run directory."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(f"{str(run_dir)!r} is not a run directory: it has no {CONFIG_FILE}")
    return TrainConfig.from_dict(json.loads(path.read_text()))


class Trainer:
    """Trains a generator with an objective, writing everything into ``run_dir``.

    Args:
        config: a validated :class:`TrainConfig`.
        run_dir: the run directory; an existing run there is resumed from its last checkpoint.
        images: optional uint8 images (N, C, H, W) to train on instead of ``config.data.source``.
        rank, world_size: the distributed seam: only rank 0 writes files and logs.
        step_hook: called after every step with (step, losses) (tests use it).
        progress: show the progress line on stderr.
    """

    def __init__(
        self,
        config: TrainConfig,
        run_dir: str | Path,
        *,
        images: Tensor | None = None,
        rank: int = 0,
        world_size: int = 1,
        step_hook: Callable[[int, dict[str, Tensor]], None] | None = None,
        progress: bool = True,
    ) -> None:
        self.config = config
        self.run_dir = Path(run_dir)
        self.rank = rank
        self.is_main = rank == 0
        self.step_hook = step_hook
        self.device = pick_device(config.run.device)
        run = config.run
        if run.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        set_cuda_math(self.device, fast=not run.reference, deterministic=run.deterministic)
        seed_everything(run.seed)

        if images is None:
            images = load_images(
                config.data.source,
                tuple(config.data.size),
                config.data.channels,
                limit=config.data.limit or None,
                progress=progress and self.is_main,
            )
        self.num_images = images.shape[0]
        if self.num_images < config.optim.batch_size:
            raise ConfigError(
                f"the dataset has {self.num_images} images, fewer than optim.batch_size "
                f"({config.optim.batch_size}); lower --batch-size or add images"
            )
        self.stream = DataStream(
            images,
            config.optim.batch_size,
            seed=run.seed,
            device=self.device,
            rank=rank,
            world_size=world_size,
        )
        generator = build_generator(config.to_dict())
        self.objective: Objective = build_objective(config, generator, self.device)
        self.ema: Generator = copy.deepcopy(self.objective.generator).eval()
        for p in self.ema.parameters():
            p.requires_grad_(False)

        latent_rng = torch.Generator().manual_seed(run.seed + 1)
        self.fixed_latents = self.ema.sample_latents(run.num_samples, latent_rng).to(self.device)
        self.step = 0
        self.elapsed = 0.0
        self.best_fid: float | None = None
        self.nan_retries = 0
        self.fid_evaluator = None

        self.checkpoint_path = self.run_dir / CHECKPOINT_DIR / LAST
        columns = (
            ["step", "elapsed_s", "img_per_s"]
            + [f"lr_{name}" for name in self.objective.optimizers]
            + list(self.objective.loss_names)
            + ["fid", "kid", "kid_std"]
        )
        self.metrics = None
        self.progress = Progress(run.steps, config.optim.batch_size, progress and self.is_main)
        if self.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            write_config(config, self.run_dir)
            self.metrics = MetricsLog(
                self.run_dir / "metrics.csv",
                columns,
                self.run_dir / "tb" if run.tensorboard else None,
            )
        if self.checkpoint_path.is_file():
            self.restore(self.checkpoint_path)
        elif self.is_main:
            self.save_checkpoint()  # step 0: a run is resumable from its first moment

    # -- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "config": self.config.to_dict(),
            "step": self.step,
            "elapsed": self.elapsed,
            "objective": self.objective.state_dict(),
            "ema": self.ema.state_dict(),
            "rng": rng_state(),
            "data": self.stream.state_dict(),
            "best_fid": self.best_fid,
            "nan_retries": self.nan_retries,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.objective.load_state_dict(state["objective"])
        self.ema.load_state_dict(state["ema"])
        self.stream.load_state_dict(state["data"])
        set_rng_state(state["rng"])
        self.step = state["step"]
        self.elapsed = state["elapsed"]
        self.best_fid = state["best_fid"]

    def restore(self, path: Path) -> None:
        self.load_state_dict(load_checkpoint(path, map_location=self.device))
        if self.metrics is not None:
            self.metrics.truncate_after(self.step)

    def save_checkpoint(self, best: bool = False) -> None:
        if not self.is_main:
            return
        state = self.state_dict()
        atomic_save(state, self.checkpoint_path)
        if best:
            atomic_save(state, self.checkpoint_path.with_name(BEST))

    # -- outputs -------------------------------------------------------------------------------
    @torch.no_grad()
    def save_samples(self) -> None:
        if not self.is_main:
            return
        from .viz import save_image_grid, save_painting_strip

        folder = self.run_dir / "samples"
        folder.mkdir(exist_ok=True)
        images = torch.cat([self.ema(z) for z in self.fixed_latents.split(64)])
        save_image_grid(images.float().cpu(), folder / f"samples_{self.step:07d}.png", scale=2)
        result = self.ema.paint(self.fixed_latents[: self.config.run.strip_latents], frames=True)
        save_painting_strip(
            result.updates.float().cpu(),
            result.partials.float().cpu(),
            folder / f"strip_{self.step:07d}.png",
        )

    def evaluate_fid(self) -> dict[str, float]:
        """FID/KID of ``run.fid_num`` EMA samples against cached reference statistics."""
        from .metrics import InceptionFeatures, evaluate_painter, reference_stats

        cfg = self.config
        if self.fid_evaluator is None:
            model = InceptionFeatures(device=self.device)
            reference = reference_stats(
                cfg.data.source,
                tuple(cfg.data.size),
                cfg.data.channels,
                model=model,
                limit=cfg.data.limit or None,
            )
            self.fid_evaluator = (model, reference)
        model, reference = self.fid_evaluator
        result = evaluate_painter(
            self.ema,
            reference,
            model,
            num=cfg.run.fid_num,
            seed=cfg.run.seed + 2,
            progress=False,
            fid_method="eigh",
        )
        return {"fid": result.fid, "kid": result.kid, "kid_std": result.kid_std}

    # -- the loop ------------------------------------------------------------------------------
    def _finite_or_rollback(self, sums: dict[str, Tensor]) -> bool:
        """Read summed losses; on NaN/Inf roll back to the last checkpoint. True if finite."""
        values = {k: float(v) for k, v in sums.items()}
        if all(math.isfinite(v) for v in values.values()):
            return True
        self.nan_retries += 1
        bad = ", ".join(k for k, v in values.items() if not math.isfinite(v))
        if self.nan_retries > self.config.run.max_nan_retries:
            raise TrainingError(
                f"non-finite loss ({bad}) near step {self.step}; rolled back "
                f"{self.config.run.max_nan_retries} times (run.max_nan_retries) and it came back. "
                f"Lower the learning rates, enable a gradient penalty or check the data; "
                f"the last good state is {self.checkpoint_path}"
            )
        retries = self.nan_retries
        self.restore(self.checkpoint_path)
        self.nan_retries = retries
        # draw different latents than the run that diverged
        torch.manual_seed(self.config.run.seed + 7919 * retries + self.step)
        print(
            f"fwp: non-finite loss ({bad}); rolled back to step {self.step} "
            f"(retry {retries}/{self.config.run.max_nan_retries})",
            file=sys.stderr,
        )
        return False

    def run(self) -> TrainResult:
        """Train until ``run.steps`` steps or ``run.minutes`` of training time, whichever first."""
        run = self.config.run
        objective = self.objective
        objective.train()
        budget = run.minutes * 60 if run.minutes > 0 else math.inf
        sums: dict[str, Tensor] = {}
        count = 0
        last_losses: dict[str, float] = {}
        window_start, window_steps = time.perf_counter(), 0
        session_start = time.perf_counter() - self.elapsed
        try:
            while self.step < run.steps and self.elapsed < budget:
                real = self.stream.next_batch()
                losses = objective.train_step(real, self.step)
                ema_update(self.ema, objective.generator, self.config.optim.ema_decay)
                self.step += 1
                count += 1
                window_steps += 1
                for name, value in losses.items():
                    sums[name] = sums[name] + value if name in sums else value.clone()
                if self.step_hook is not None:
                    self.step_hook(self.step, losses)
                self.elapsed = time.perf_counter() - session_start
                finish = self.step >= run.steps or self.elapsed >= budget
                checkpoint_due = self.step % run.checkpoint_every == 0 or finish
                if self.step % run.log_every == 0 or checkpoint_due:
                    if self.device.type == "cuda":
                        torch.cuda.synchronize(self.device)
                    if not self._finite_or_rollback(sums):
                        sums, count = {}, 0
                        session_start = time.perf_counter() - self.elapsed
                        window_start, window_steps = time.perf_counter(), 0
                        continue
                    last_losses = {k: float(v) / count for k, v in sums.items()}
                    now = time.perf_counter()
                    speed = window_steps * real.shape[0] / max(now - window_start, 1e-9)
                    self._log(last_losses, speed)
                    sums, count = {}, 0
                    window_start, window_steps = now, 0
                if self.step % run.sample_every == 0 or finish:
                    self.save_samples()
                fid_due = run.fid_every and (self.step % run.fid_every == 0 or finish)
                is_best = False
                if fid_due:
                    scores = self.evaluate_fid()
                    self._log_row({"step": self.step, **scores})
                    if self.best_fid is None or scores["fid"] < self.best_fid:
                        self.best_fid, is_best = scores["fid"], True
                if checkpoint_due or is_best:
                    self.save_checkpoint(best=is_best)
                    self.nan_retries = 0
        finally:
            self.progress.close()
            if self.metrics is not None:
                self.metrics.close()
        return TrainResult(self.run_dir, self.step, last_losses, self.best_fid)

    def _log_row(self, row: dict[str, Any]) -> None:
        if self.metrics is not None:
            self.metrics.append(row)

    def _log(self, losses: dict[str, float], images_per_second: float) -> None:
        row: dict[str, Any] = {
            "step": self.step,
            "elapsed_s": round(self.elapsed, 3),
            "img_per_s": round(images_per_second, 2),
            **{f"lr_{k}": v for k, v in self.objective.learning_rates().items()},
            **losses,
        }
        self._log_row(row)
        self.progress.update(self.step, losses, images_per_second)

    def describe(self) -> str:
        """One line: device, parameter counts, dataset size."""
        generator = count_parameters(self.objective.generator)
        others = {
            name: count_parameters(net)
            for name, net in self.objective.networks.items()
            if name != "generator"
        }
        parts = ", ".join(f"{name} {n:,}" for name, n in others.items())
        return (
            f"device {self.device}; generator {generator:,} parameters; {parts}; "
            f"{self.num_images:,} training images"
        )


def train(config: TrainConfig, run_dir: str | Path, **kwargs: Any) -> TrainResult:
    """Train (or resume) a run: the plain function behind ``fwp train``."""
    return Trainer(config, run_dir, **kwargs).run()
