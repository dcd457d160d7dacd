"""The training loop: data, EMA, checkpoints, logging, samples, painting strips and FID.

One :class:`Trainer` drives any :class:`~fwp.gan.objectives.Objective` and writes everything
into a :class:`~fwp.gan.rundir.RunDir`. It never synchronises with the device inside a step:
losses stay on the device and are summed, and are read (and checked for NaN/Inf) only every
``run.log_every`` steps and before each checkpoint. :meth:`Trainer.train_step` is one step of the
loop, callable from outside (the benchmarks time it); :meth:`Trainer.run` is the whole loop.

Data parallel (several ranks, see :mod:`fwp.gan.distributed`): every rank builds the same
networks from the run's seed, reads its shard of each epoch, draws latents from its own seed
(:func:`~fwp.gan.distributed.rank_seed`) and averages gradients with the others (the objective's
:meth:`~fwp.gan.objectives.Objective.distribute`), so parameters, and with them the EMA, are
identical on every rank after every step. Losses are averaged over ranks where they are read, so
every rank takes the same NaN decision. Only rank 0 writes the run directory; every rank's RNG
state is gathered into rank 0's checkpoint (``rng_ranks``), from which every rank resumes exactly.
"""

from __future__ import annotations

import copy
import math
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from . import distributed
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .config import ConfigError, TrainConfig
from .data import DataStream, load_images
from .ema import EMASchedule, ema_reset, ema_update
from .generators import TrainedGenerator, build_generator
from .metrics_log import MetricsLog
from .objectives import LinearDecay, Objective, build_objective
from .progress import ProgressDisplay, format_seconds
from .rundir import RunDir
from .runtime import rng_state, seed_everything, set_cuda_math, set_rng_state


class TrainingError(RuntimeError):
    """Training cannot continue (e.g. the loss kept becoming NaN after every rollback)."""


@dataclass
class TrainResult:
    """What :meth:`Trainer.run` reached: the run, its step, the last logged losses, best FID."""

    run_dir: Path
    step: int
    last_losses: dict[str, float]
    best_fid: float | None


class Trainer:
    """Trains a generator with an objective, writing everything into ``run_dir``.

    Args:
        config: a validated :class:`TrainConfig`.
        run_dir: the run directory; an existing run there is resumed from its last checkpoint.
        images: optional uint8 images (N, C, H, W) to train on instead of ``config.data.source``.
        step_hook: called after every step with (step, losses) (tests use it).
        progress: show the progress display on stderr (on rank 0 only).

    With several ranks (a process group set up by :func:`fwp.gan.distributed.session`, as
    :func:`fwp.gan.run.train_run` does) every rank constructs a Trainer for the same run; only
    rank 0 writes into ``run_dir``.
    """

    def __init__(
        self,
        config: TrainConfig,
        run_dir: str | Path,
        *,
        images: Tensor | None = None,
        step_hook: Callable[[int, dict[str, Tensor]], None] | None = None,
        progress: bool = True,
    ) -> None:
        self.config = config
        self.run_dir = RunDir(run_dir)
        self.step_hook = step_hook
        self.dist = distributed.current()
        self.is_main = self.dist.is_main
        self.device = distributed.rank_device(config.run.device, self.dist)
        run = config.run
        if run.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        set_cuda_math(self.device, fast=not run.reference, deterministic=run.deterministic)
        seed_everything(run.seed)  # the same networks on every rank

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
            rank=self.dist.rank,
            world_size=self.dist.world_size,
        )
        self.objective: Objective = build_objective(config, build_generator(config), self.device)
        if self.dist.distributed:
            self.objective.distribute()
        self.ema: TrainedGenerator = copy.deepcopy(self.objective.generator).eval()
        for p in self.ema.parameters():
            p.requires_grad_(False)
        optim = config.optim
        self.ema_schedule = EMASchedule(
            optim.ema_decay,
            start=optim.ema_start,
            every=optim.ema_every,
            reset_every=optim.ema_reset_every,
            reset_until=optim.ema_reset_until,
        )

        self.lr_decay = LinearDecay.from_fraction(run.steps, optim.lr_decay_start)

        latent_rng = torch.Generator().manual_seed(run.seed + 1)
        self.fixed_latents = self.ema.sample_latents(run.num_samples, latent_rng).to(self.device)
        if self.dist.distributed:  # each rank draws its own latents from here on
            seed_everything(distributed.rank_seed(run.seed, self.dist))
        self.step = 0
        self.elapsed = 0.0
        self.best_fid: float | None = None
        self.nan_retries = 0
        self.fid_evaluator: Any = None

        columns = (
            ["step", "elapsed_s", "img_per_s"]
            + [f"lr_{name}" for name in self.objective.optimizers]
            + list(self.objective.loss_names)
            + ["fid", "kid", "kid_std"]
        )
        self.progress = ProgressDisplay(
            run.steps, "step", enabled=progress and self.is_main, unit="step"
        )
        self.metrics: MetricsLog | None = None
        if self.is_main:
            self.run_dir.write_config(config)
            self.metrics = MetricsLog(
                self.run_dir.metrics_file,
                columns,
                self.run_dir.tensorboard_dir if run.tensorboard else None,
            )
        # every rank follows rank 0's view, taken before it writes the step-0 checkpoint
        if distributed.broadcast_object(self.run_dir.has_checkpoint()):
            self.restore(self.run_dir.last_checkpoint)
        else:
            if config.generator.init_from:  # a refinement stage: the painter of a trained run
                from .stages import read_init_source, start_stage

                source = read_init_source(config)
                start_stage(source, config, self.objective.generator, self.ema, self.objective)
            self.save_checkpoint()  # step 0: a run is resumable from its first moment

    # -- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The whole training state as plain data (the checkpoint format adds its marker); with
        several ranks, ``rng`` is this rank's RNG state (:meth:`save_checkpoint` adds every
        rank's)."""
        return {
            "config": self.config.to_dict(),
            "step": self.step,
            "elapsed": float(self.elapsed),
            "objective": self.objective.state_dict(),
            "ema": self.ema.state_dict(),
            "rng": rng_state(),
            "data": self.stream.state_dict(),
            "best_fid": None if self.best_fid is None else float(self.best_fid),
            "nan_retries": self.nan_retries,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.objective.load_state_dict(state["objective"])
        self.ema.load_state_dict(state["ema"])
        self.stream.load_state_dict(state["data"])
        self.step = state["step"]
        set_rng_state(self._rank_rng(state))
        self.elapsed = state["elapsed"]
        self.best_fid = state["best_fid"]

    def _rank_rng(self, state: dict[str, Any]) -> dict[str, Any]:
        """This rank's RNG state in a checkpoint: its own entry of ``rng_ranks`` when the
        checkpoint was written by as many ranks, else (another number of ranks) rank 0's state,
        with a fresh seed per rank derived from the step so that ranks still draw differently."""
        ranks = state.get("rng_ranks")
        if not self.dist.distributed:
            return state["rng"]
        if ranks is not None and len(ranks) == self.dist.world_size:
            return ranks[self.dist.rank]
        if self.is_main:
            saved = len(ranks) if ranks is not None else 1
            warnings.warn(
                f"resuming a checkpoint of {saved} rank(s) on {self.dist.world_size}: the random "
                f"draws (latents, augmentation) continue from new per-rank seeds",
                stacklevel=3,
            )
        seed_everything(distributed.rank_seed(self.config.run.seed + self.step, self.dist))
        return rng_state()

    def restore(self, path: Path) -> None:
        """Continue from the checkpoint at ``path`` (read by the one safe loader)."""
        state = load_checkpoint(path, map_location=self.device)
        try:
            self.load_state_dict(state)
        except (RuntimeError, KeyError, ValueError) as err:
            first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise CheckpointError(
                f"checkpoint {str(path)!r} does not fit this run ({first_line})"
            ) from err
        if self.metrics is not None:
            self.metrics.truncate_after(self.step)

    def save_checkpoint(self, best: bool = False) -> None:
        """Write ``last.pt`` (and ``best.pt`` when ``best``) on rank 0. With several ranks every
        rank must call it at the same step: it gathers every rank's RNG state into the
        checkpoint's ``rng_ranks``."""
        rng_ranks = distributed.gather_to_main(rng_state()) if self.dist.distributed else None
        if not self.is_main:
            return
        state = self.state_dict()
        if rng_ranks is not None:
            state["rng_ranks"] = rng_ranks
        save_checkpoint(state, self.run_dir.last_checkpoint)
        if best:
            save_checkpoint(state, self.run_dir.best_checkpoint)

    # -- outputs -------------------------------------------------------------------------------
    @torch.no_grad()
    def save_samples(self) -> None:
        """Sample grids of the EMA generator and of the raw (trained) generator at the fixed
        latents, the objective's own grids (:meth:`Objective.extra_sample_grids`), and a painting
        strip of the EMA generator. Early in a run the EMA has barely moved from its
        initialisation, so the raw grid shows what the painter learns first."""
        from .viz import save_image_grid, save_painting_strip

        generator = self.objective.generator
        was_training = generator.training
        generator.eval()
        grids = {
            kind: torch.cat([model(z) for z in self.fixed_latents.split(64)])
            for kind, model in (("samples", self.ema), ("raw", generator))
        }
        grids.update(self.objective.extra_sample_grids(self.fixed_latents))
        for kind, images in grids.items():
            path = self.run_dir.sample_grid(self.step, kind)
            save_image_grid(images.float().cpu(), path, scale=2)
        generator.train(was_training)
        result = self.ema.paint(self.fixed_latents[: self.config.run.strip_latents], frames=True)
        save_painting_strip(
            result.updates.float().cpu(),
            result.partials.float().cpu(),
            self.run_dir.painting_strip(self.step),
        )

    def evaluate_fid(self) -> dict[str, float]:
        """FID/KID of ``run.fid_num`` EMA samples against cached reference statistics.

        Runs on a fork of the random state: building the Inception network initialises layers
        from the global generator before its weights load, and that must not change the batches
        and latents the training draws next (nor differ between a run and its resumption, which
        builds the network again).
        """
        from .metrics import RunEvaluator

        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            if self.fid_evaluator is None:
                self.fid_evaluator = RunEvaluator(self.config, device=self.device)
            result = self.fid_evaluator.evaluate(
                self.ema,
                num=self.config.run.fid_num,
                seed=self.config.run.seed + 2,
                with_precision_recall=False,  # metrics.csv logs FID and KID only
            )
        return {"fid": result.fid, "kid": result.kid, "kid_std": result.kid_std}

    # -- the loop ------------------------------------------------------------------------------
    @property
    def global_batch(self) -> int:
        """Images per step over all ranks (``optim.batch_size`` is per rank)."""
        return self.config.optim.batch_size * self.dist.world_size

    def train_step(self) -> dict[str, Tensor]:
        """One step: the next batch, the learning rates of the step (``optim.lr_decay_start``),
        the objective's step, the EMA update or reset when the schedule (``optim.ema_*``) says
        so. Returns the step's losses as device tensors (not synchronised)."""
        real = self.stream.next_batch()
        if self.lr_decay.active:
            self.objective.scale_learning_rates(self.lr_decay.factor(self.step))
        losses = self.objective.train_step(real, self.step)
        schedule, generator = self.ema_schedule, self.objective.generator
        if schedule.updates_at(self.step):  # then a reset, in lightweight-gan's order
            ema_update(self.ema, generator, schedule.decay)
        if schedule.resets_at(self.step):
            ema_reset(self.ema, generator)
        self.step += 1
        return losses

    def _read_sums(self, sums: dict[str, Tensor]) -> dict[str, float]:
        """Summed losses as numbers: this rank's, or with several ranks their mean over ranks
        (one collective), so that every rank reads the same values."""
        names = list(sums)
        values = distributed.all_reduce_mean([sums[name] for name in names])
        return {name: float(value) for name, value in zip(names, values, strict=True)}

    def _finite_or_rollback(self, values: dict[str, float]) -> bool:
        """Check summed losses; on NaN/Inf roll back to the last checkpoint. True if finite."""
        if all(math.isfinite(v) for v in values.values()):
            return True
        self.nan_retries += 1
        bad = ", ".join(k for k, v in values.items() if not math.isfinite(v))
        if self.nan_retries > self.config.run.max_nan_retries:
            raise TrainingError(
                f"non-finite loss ({bad}) near step {self.step}; rolled back "
                f"{self.config.run.max_nan_retries} times (run.max_nan_retries) and it came back. "
                f"Lower the learning rates, enable a gradient penalty or check the data; "
                f"the last good state is {self.run_dir.last_checkpoint}"
            )
        retries = self.nan_retries
        self.restore(self.run_dir.last_checkpoint)
        self.nan_retries = retries
        # draw different latents than the run that diverged
        seed = self.config.run.seed + 7919 * retries + self.step
        torch.manual_seed(distributed.rank_seed(seed, self.dist))
        if self.is_main:
            print(
                f"fwp: non-finite loss ({bad}); rolled back to step {self.step} "
                f"(retry {retries}/{self.config.run.max_nan_retries})",
                file=sys.stderr,
            )
        return False

    def run(self) -> TrainResult:
        """Train until ``run.steps`` steps or ``run.minutes`` of training time, whichever first."""
        run = self.config.run
        self.objective.train()
        budget = run.minutes * 60 if run.minutes > 0 else math.inf
        sums: dict[str, Tensor] = {}
        count = 0
        last_losses: dict[str, float] = {}
        window_start, window_steps = time.perf_counter(), 0
        session_start = time.perf_counter() - self.elapsed
        try:
            while self.step < run.steps and self.elapsed < budget:
                losses = self.train_step()
                count += 1
                window_steps += 1
                for name, value in losses.items():
                    sums[name] = sums[name] + value if name in sums else value.clone()
                if self.step_hook is not None:
                    self.step_hook(self.step, losses)
                self.elapsed = time.perf_counter() - session_start
                if self.dist.distributed and run.minutes > 0:  # every rank stops at one step
                    self.elapsed = distributed.broadcast_object(self.elapsed)
                finish = self.step >= run.steps or self.elapsed >= budget
                checkpoint_due = self.step % run.checkpoint_every == 0 or finish
                row: dict[str, Any] = {}
                if self.step % run.log_every == 0 or checkpoint_due:
                    if self.device.type == "cuda":
                        torch.cuda.synchronize(self.device)
                    values = self._read_sums(sums)
                    if not self._finite_or_rollback(values):
                        sums, count = {}, 0
                        session_start = time.perf_counter() - self.elapsed
                        window_start, window_steps = time.perf_counter(), 0
                        continue
                    last_losses = {k: v / count for k, v in values.items()}
                    now = time.perf_counter()
                    speed = window_steps * self.global_batch / max(now - window_start, 1e-9)
                    row.update(self._loss_row(last_losses, speed))
                    sums, count = {}, 0
                    window_start, window_steps = now, 0
                if self.is_main and (self.step % run.sample_every == 0 or finish):
                    self.save_samples()
                is_best = False
                if run.fid_every and (self.step % run.fid_every == 0 or finish):
                    if self.is_main:  # the other ranks wait at the next collective
                        scores = self.evaluate_fid()
                        row.update(scores)
                        if self.best_fid is None or scores["fid"] < self.best_fid:
                            self.best_fid, is_best = scores["fid"], True
                    is_best = distributed.broadcast_object(is_best)
                if row and self.metrics is not None:
                    self.metrics.append({"step": self.step, **row})
                if checkpoint_due or is_best:
                    self.save_checkpoint(best=is_best)
                    self.nan_retries = 0
        finally:
            self.progress.close()
            if self.metrics is not None:
                self.metrics.close()
        return TrainResult(self.run_dir.path, self.step, last_losses, self.best_fid)

    def _loss_row(self, losses: dict[str, float], images_per_second: float) -> dict[str, Any]:
        """The metrics row of a log step (and the progress display's update)."""
        remaining = (self.config.run.steps - self.step) * self.global_batch
        eta = remaining / max(images_per_second, 1e-9)
        shown = " ".join(
            f"{k} {v:.3f}" for k, v in losses.items() if k in self.objective.progress_losses
        )
        self.progress.update(
            self.step, f"{shown} | {images_per_second:.1f} img/s | ETA {format_seconds(eta)}"
        )
        return {
            "elapsed_s": round(self.elapsed, 3),
            "img_per_s": round(images_per_second, 2),
            **{f"lr_{k}": v for k, v in self.objective.learning_rates().items()},
            **losses,
        }


def train(config: TrainConfig, run_dir: str | Path, **kwargs: Any) -> TrainResult:
    """Train (or resume) a run: the plain function behind ``fwp train``."""
    return Trainer(config, run_dir, **kwargs).run()
