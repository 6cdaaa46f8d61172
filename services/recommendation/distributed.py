"""Training on several processes: the process group ``torchrun`` sets up, and each rank's share of a batch.

Run any training under ``torchrun --nproc_per_node N`` (several machines: ``--nnodes``,
``--rdzv-endpoint``); ``start_distributed`` joins the process group torchrun describes in the
environment, over NCCL when CUDA is present (one GPU per local rank) and gloo otherwise. Without
torchrun it returns a world of one process, and the same training code runs unchanged: the
trainer splits each global batch into per-rank shares and weights each share's loss so that the
averaged gradient is the whole batch's (see ``trainer.train_multvae``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    """This process's rank among ``size`` training processes (rank 0 of 1 without torchrun)."""

    rank: int = 0
    size: int = 1

    @classmethod
    def current(cls) -> World:
        """The world of the initialised process group, or a world of one process."""
        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size())
        return cls()

    @property
    def is_main(self) -> bool:
        """True on the rank that writes files and shows progress."""
        return self.rank == 0

    def share(self, rows: int) -> slice:
        """This rank's rows of a batch of ``rows``: contiguous, the first ranks one longer (some may be empty)."""
        base, extra = divmod(rows, self.size)
        start = self.rank * base + min(self.rank, extra)
        return slice(start, start + base + (1 if self.rank < extra else 0))

    def sum(self, value: torch.Tensor) -> torch.Tensor:
        """``value`` summed over every rank (itself in a world of one)."""
        if self.size == 1:
            return value
        # NCCL reduces only tensors on the rank's GPU.
        device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
        reduced = value.to(device, copy=True)
        dist.all_reduce(reduced, op=dist.ReduceOp.SUM)
        return reduced.to(value.device)


def training_device(world: World) -> torch.device:
    """Where this rank trains: its local GPU under torchrun with CUDA, the GPU or the CPU otherwise."""
    if not torch.cuda.is_available():
        return torch.device("cpu")
    if world.size > 1:
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cuda")


def start_distributed() -> World:
    """Join the process group ``torchrun`` described in the environment; a world of one without it.

    NCCL with one GPU per local rank when CUDA is present, gloo on CPUs.
    """
    if dist.is_initialized():
        return World.current()
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return World()
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl")
    else:
        dist.init_process_group("gloo")
    return World.current()


def stop_distributed() -> None:
    """Leave the process group, if one was joined."""
    if dist.is_initialized():
        dist.destroy_process_group()
