"""Rank and world size under ``torchrun`` (torch.distributed), and the samples each rank draws.

``torchrun --nproc-per-node N -m samplekit ...`` sets RANK / WORLD_SIZE / LOCAL_RANK; ``world()`` then
joins the process group (nccl when every local rank has its own GPU, else gloo) and returns
(rank, size); a plain process is (0, 1) and starts nothing.  The group is used only for ``barrier()``
between whole runs, never inside a solve (adaptive solvers spend different NFE on each rank).
"""

from __future__ import annotations

import datetime
import os


def launched() -> bool:
    """True under torchrun (or any launcher that sets WORLD_SIZE > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def backend() -> str:
    """nccl when CUDA gives each local rank its own device, else gloo (SAMPLEKIT_DIST_BACKEND overrides)."""
    import torch

    chosen = os.environ.get("SAMPLEKIT_DIST_BACKEND")
    if chosen:
        return chosen
    local = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", "1")))
    return "nccl" if torch.cuda.is_available() and torch.cuda.device_count() >= local else "gloo"


def world() -> tuple[int, int]:
    """(rank, world size); joins the process group under torchrun, else (0, 1)."""
    if not launched():
        return 0, 1
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        name = backend()
        if name == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(name, timeout=datetime.timedelta(hours=12))
    return dist.get_rank(), dist.get_world_size()


def barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        if dist.get_backend() == "nccl":
            import torch

            dist.barrier(device_ids=[torch.cuda.current_device()])
        else:
            dist.barrier()


def finish() -> None:
    """Leave the process group (if joined)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def shard(num_samples: int, rank: int, size: int) -> tuple[int, int]:
    """Rank ``rank``'s samples [a, b) of [0, num_samples): contiguous, disjoint, sizes differing by at most 1."""
    return num_samples * rank // size, num_samples * (rank + 1) // size


def device():
    """This process's device: cuda:LOCAL_RANK when CUDA is available (one GPU a rank; ranks share a GPU
    when there are fewer GPUs than ranks), else cpu.  SAMPLEKIT_DEVICE overrides (e.g. ``cpu``)."""
    import torch

    chosen = os.environ.get("SAMPLEKIT_DEVICE")
    if chosen:
        return torch.device(chosen)
    if not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
