"""Data-parallel training over several processes: process-group set-up and teardown, rank
information and the few collectives the trainer and objectives use.

One run trains on ``world_size`` processes (ranks) at once. Every rank holds the same networks,
reads its own shard of each epoch (:class:`~fwp.gan.data.DataStream`), draws its own latents and
averages its gradients with the other ranks, so the parameters stay identical on every rank after
every step; rank 0 alone writes the run directory. Launch it with torchrun or under Slurm::

    torchrun --nproc-per-node 4 -m fwp.cli train ...    # one machine, four processes
    srun --ntasks 8 --gpus-per-task 1 fwp train ...     # Slurm: one process per task

torchrun sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``;
without them, a Slurm job step of several tasks is recognised by ``SLURM_PROCID``,
``SLURM_STEP_NUM_TASKS`` and ``SLURM_LOCALID`` (rendezvous at the step's first node, port
``MASTER_PORT`` or 20000 + job id % 20000). Anything else is one process.

The backend is nccl when the run's device is a GPU (each rank on the GPU of its local rank), gloo
on CPUs. A collective waits at most ``FWP_DIST_TIMEOUT`` seconds (default 1800) for the other
ranks, so a run whose rank died fails instead of hanging.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor, nn

from .config import ConfigError
from .runtime import pick_device

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "TIMEOUT_ENV",
    "DistInfo",
    "DistributedError",
    "all_reduce_mean",
    "average_gradients_before_step",
    "barrier",
    "broadcast_module",
    "broadcast_object",
    "current",
    "detect",
    "gather_to_main",
    "on_main",
    "rank_device",
    "rank_seed",
    "session",
    "timeout_from_env",
]

#: the environment variable that sets how long a collective waits for the other ranks (seconds)
TIMEOUT_ENV = "FWP_DIST_TIMEOUT"
#: the default of :data:`TIMEOUT_ENV`: long enough for rank 0 to measure FID while others wait
DEFAULT_TIMEOUT_S = 1800.0

T = TypeVar("T")


class DistributedError(RuntimeError):
    """A distributed launch that cannot work, or a failure on another rank."""


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands among the ranks of one run.

    Attributes:
        rank: this process's rank, 0 .. world_size - 1 (0 writes the run directory).
        world_size: how many processes train the run together.
        local_rank: this process's index on its machine (picks its GPU).
        launcher: ``"torchrun"``, ``"slurm"`` or ``"none"`` (one process).
        init_method: where the ranks meet (``env://`` or ``tcp://HOST:PORT``); None alone.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    launcher: str = "none"
    init_method: str | None = None

    @property
    def is_main(self) -> bool:
        """True on rank 0, the rank that writes checkpoints, samples, metrics and FID."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when more than one process trains the run."""
        return self.world_size > 1


def _int_env(env: Mapping[str, str], name: str) -> int:
    try:
        return int(env[name])
    except ValueError:
        raise DistributedError(f"{name}={env[name]!r} is not an integer") from None


def _first_host(nodelist: str) -> str:
    """The first host of a Slurm node list (``node[01-04],gpu7`` -> ``node01``)."""
    if "[" not in nodelist:
        return nodelist.split(",")[0]
    scontrol = shutil.which("scontrol")
    if scontrol is None:
        raise DistributedError(
            f"cannot expand the Slurm node list {nodelist!r} without scontrol; set MASTER_ADDR"
        )
    result = subprocess.run(
        [scontrol, "show", "hostnames", nodelist], capture_output=True, text=True, check=False
    )
    hosts = result.stdout.split()
    if result.returncode != 0 or not hosts:
        raise DistributedError(
            f"scontrol could not expand the Slurm node list {nodelist!r} ({result.stderr.strip()})"
            f"; set MASTER_ADDR"
        )
    return hosts[0]


def detect(env: Mapping[str, str] | None = None) -> DistInfo:
    """The ranks this process was launched as, from torchrun's environment or else a Slurm job
    step's (see the module docstring); one process when neither says more than one.

    Raises:
        DistributedError: an inconsistent launch environment (a rank outside the world, ...).
    """
    env = os.environ if env is None else env
    if "RANK" in env and "WORLD_SIZE" in env:
        rank, world = _int_env(env, "RANK"), _int_env(env, "WORLD_SIZE")
        local = _int_env(env, "LOCAL_RANK") if "LOCAL_RANK" in env else 0
        launcher, init_method = "torchrun", "env://"
        if world > 1 and not ("MASTER_ADDR" in env and "MASTER_PORT" in env):
            raise DistributedError(
                f"RANK and WORLD_SIZE={world} are set but MASTER_ADDR/MASTER_PORT are not: launch "
                f"with torchrun, or set all four"
            )
    elif "SLURM_PROCID" in env and "SLURM_STEP_NUM_TASKS" in env:
        rank, world = _int_env(env, "SLURM_PROCID"), _int_env(env, "SLURM_STEP_NUM_TASKS")
        local = _int_env(env, "SLURM_LOCALID") if "SLURM_LOCALID" in env else 0
        launcher, init_method = "slurm", None
        if world > 1:
            host = env.get("MASTER_ADDR") or _first_host(
                env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST") or "localhost"
            )
            if "MASTER_PORT" in env:
                port = _int_env(env, "MASTER_PORT")
            else:
                port = (
                    20000 + _int_env(env, "SLURM_JOB_ID") % 20000
                    if "SLURM_JOB_ID" in env
                    else 29500
                )
            init_method = f"tcp://{host}:{port}"
    else:
        return DistInfo()
    if world < 1 or not 0 <= rank < world:
        raise DistributedError(f"rank {rank} does not fit a world of {world} processes")
    if world == 1:
        return DistInfo(launcher=launcher)
    return DistInfo(rank, world, local, launcher, init_method)


def current() -> DistInfo:
    """The ranks of the initialised process group (one process when there is none)."""
    if not (dist.is_available() and dist.is_initialized()):
        return DistInfo()
    launched = detect()
    return DistInfo(
        dist.get_rank(),
        dist.get_world_size(),
        launched.local_rank,
        launched.launcher,
        launched.init_method,
    )


def timeout_from_env(env: Mapping[str, str] | None = None) -> timedelta:
    """How long a collective waits for the other ranks: ``FWP_DIST_TIMEOUT`` seconds, or
    :data:`DEFAULT_TIMEOUT_S`.

    Raises:
        ConfigError: the variable is not a positive number of seconds.
    """
    env = os.environ if env is None else env
    text = env.get(TIMEOUT_ENV, "")
    if not text:
        return timedelta(seconds=DEFAULT_TIMEOUT_S)
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise ConfigError(f"{TIMEOUT_ENV} must be a positive number of seconds; got {text!r}")
    return timedelta(seconds=seconds)


def rank_device(name: str, info: DistInfo) -> torch.device:
    """The device of this rank for ``run.device`` ``name``: :func:`~fwp.gan.runtime.pick_device`
    alone; with several ranks a GPU device becomes the GPU of the local rank (modulo the GPUs
    this process sees, so that Slurm's one-GPU-per-task binding works too).

    Raises:
        ConfigError: several ranks asked for one numbered GPU (``cuda:1``).
    """
    device = pick_device(name)
    if not info.distributed or device.type != "cuda":
        return device
    if device.index is not None:
        raise ConfigError(
            f"--device {name}: with {info.world_size} ranks each rank trains on the GPU of its "
            f"local rank; give --device cuda (or auto)"
        )
    return torch.device("cuda", info.local_rank % torch.cuda.device_count())


@contextlib.contextmanager
def session(device: str = "auto", env: Mapping[str, str] | None = None) -> Iterator[DistInfo]:
    """Join the other ranks for the duration of the block: initialise the process group when
    this process was launched as one of several ranks (:func:`detect`) and none exists yet, and
    destroy it at the end if this call created it. Yields the ranks (one process: nothing is
    initialised).

    Args:
        device: ``run.device``: a GPU picks the nccl backend (and this rank's GPU), else gloo.
        env: the launch environment (default: ``os.environ``).

    Raises:
        DistributedError: torch.distributed is unavailable, or the ranks cannot meet.
    """
    if dist.is_available() and dist.is_initialized():
        yield current()
        return
    info = detect(env)
    if not info.distributed:
        yield info
        return
    if not dist.is_available():
        raise DistributedError(
            f"launched as rank {info.rank} of {info.world_size}, but this torch has no "
            f"torch.distributed"
        )
    target = rank_device(device, info)
    if target.type == "cuda":
        torch.cuda.set_device(target)
    backend = "nccl" if target.type == "cuda" else "gloo"
    dist.init_process_group(
        backend,
        init_method=info.init_method,
        rank=info.rank,
        world_size=info.world_size,
        timeout=timeout_from_env(env),
    )
    try:
        yield info
        # every rank done before any tears down: a rank that exits while another still writes
        # its last checkpoint can make gloo abort the process at exit
        dist.barrier()
    finally:
        dist.destroy_process_group()


def _initialised() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def barrier() -> None:
    """Wait until every rank gets here (nothing with one process)."""
    if _initialised():
        dist.barrier()


def broadcast_object(value: T, src: int = 0) -> T:
    """Rank ``src``'s ``value`` on every rank (pickled between the run's own processes)."""
    if not _initialised():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def gather_to_main(value: T) -> list[T] | None:
    """Every rank's ``value`` in rank order on rank 0; None on the other ranks."""
    if not _initialised():
        return [value]
    gathered: list[Any] | None = None
    if dist.get_rank() == 0:
        gathered = [None] * dist.get_world_size()
    dist.gather_object(value, gathered, dst=0)
    return gathered


def on_main(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """Call ``fn`` on rank 0 only (e.g. to create the run directory) and let every rank know
    how it went: rank 0 returns its result, the others None.

    Raises:
        DistributedError: on the other ranks, when ``fn`` raised on rank 0 (which re-raises
            its own exception), with its type and message.
    """
    if not _initialised():
        return fn(*args, **kwargs)
    result: T | None = None
    failure: BaseException | None = None
    outcome = ""
    if dist.get_rank() == 0:
        try:
            result = fn(*args, **kwargs)
        except Exception as err:
            failure, outcome = err, f"{type(err).__name__}: {err}"
    outcome = broadcast_object(outcome)
    if failure is not None:
        raise failure
    if outcome:
        raise DistributedError(f"rank 0 failed: {outcome}")
    return result


def all_reduce_mean(tensors: list[Tensor]) -> list[Tensor]:
    """The mean over ranks of each tensor (one collective per dtype; inputs untouched)."""
    if not _initialised() or not tensors:
        return [t.clone() for t in tensors]
    world = dist.get_world_size()
    out: list[Tensor] = [t for t in tensors]
    by_dtype: dict[torch.dtype, list[int]] = {}
    for index, tensor in enumerate(tensors):
        by_dtype.setdefault(tensor.dtype, []).append(index)
    for indices in by_dtype.values():
        flat = torch.cat([tensors[i].detach().reshape(-1) for i in indices])
        dist.all_reduce(flat)
        flat.div_(world)
        offset = 0
        for i in indices:
            size = tensors[i].numel()
            out[i] = flat[offset : offset + size].view_as(tensors[i])
            offset += size
    return out


def _average_gradients(parameters: Iterable[nn.Parameter]) -> None:
    """Replace each gradient by its mean over ranks. Which parameters have a gradient depends on
    the graph, not the data, so it is the same set on every rank."""
    with_grad = [p for p in parameters if p.grad is not None]
    means = all_reduce_mean([p.grad for p in with_grad])  # type: ignore[misc]
    for parameter, mean in zip(with_grad, means, strict=True):
        parameter.grad.copy_(mean)  # type: ignore[union-attr]


def average_gradients_before_step(optimizer: torch.optim.Optimizer) -> None:
    """Make ``optimizer`` average its parameters' gradients over ranks right before every step
    (an explicit all-reduce in a step pre-hook).

    This is data parallelism for steps that DistributedDataParallel does not support: a double
    backward (a gradient penalty through ``autograd.grad(create_graph=True)``), a network called
    through methods other than ``forward``, several times before one backward, or frozen in
    another loss's backward. Every rank must step the optimizer at the same steps.
    """

    def hook(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        _average_gradients(p for group in opt.param_groups for p in group["params"])

    optimizer.register_step_pre_hook(hook)


@torch.no_grad()
def broadcast_module(module: nn.Module, src: int = 0) -> None:
    """Copy rank ``src``'s parameters and buffers into ``module`` on every rank."""
    if not _initialised():
        return
    for tensor in [*module.parameters(), *module.buffers()]:
        dist.broadcast(tensor.data, src=src)


def rank_seed(seed: int, info: DistInfo) -> int:
    """The seed of this rank's random draws (latents, augmentation): ``seed`` itself with one
    process, else a distinct seed per rank that no other (seed, rank) pair of a run shares."""
    if not info.distributed:
        return seed
    return (seed * 1_000_033 + 7_919 * (info.rank + 1)) % (2**63 - 1)
