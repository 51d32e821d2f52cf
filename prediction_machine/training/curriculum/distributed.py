"""Scale-out: the same training step on N processes, with DistributedDataParallel.

Under `torchrun --nproc_per_node=N -m prediction_machine pretrain ...` every process draws the
same global batch (the batches are seeded by step), takes its own slice of it, and computes
the loss of that slice. DDP averages the gradients over the processes during backward (gloo
on CPU, nccl on GPU), and the mean of N equal slices' mean gradients is the full batch's mean
gradient: every process makes the same update one process would make.

    global batch (B, T) --rank 0--> rows 0 .. B/N-1      --+
                        --rank 1--> rows B/N .. 2B/N-1   --+--> all-reduce the gradients --> same step

Without torchrun (WORLD_SIZE unset) this is all a no-op: one process, no process group.

Reference: PyTorch's "Getting Started with Distributed Data Parallel"; nanoGPT's train.py (DDP).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass
class Dist:
    rank: int = 0  # this process, 0 .. world-1
    world: int = 1  # how many processes train together

    @property
    def main(self) -> bool:
        """The process that reports events and writes checkpoints."""
        return self.rank == 0


def setup_distributed() -> Dist:
    """Join the process group torchrun set up (WORLD_SIZE > 1), else a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Dist()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size())


def wrap(model: torch.nn.Module, d: Dist) -> torch.nn.Module:
    """The module to compute the loss with: DDP (which averages gradients) under torchrun, else the model."""
    if d.world == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model)


def my_slice(x: torch.Tensor, d: Dist) -> torch.Tensor:
    """This process's rows of a global batch: (B, ...) -> (B / world, ...)."""
    local = x.shape[0] // d.world
    return x[d.rank * local : (d.rank + 1) * local]


def all_mean(x: float, d: Dist) -> float:
    """The mean of a number over all processes (each process's loss is that of its slice only)."""
    if d.world == 1:
        return x
    import torch.distributed as dist

    t = torch.tensor([x], dtype=torch.float64)
    dist.all_reduce(t)
    return t.item() / d.world


def finish(d: Dist) -> None:
    """Leave together: rank 0 has written the checkpoint when every process passes the barrier."""
    if d.world == 1:
        return
    import torch.distributed as dist

    dist.barrier()
    dist.destroy_process_group()
