"""A tiny distributed "trainer" for the torchrun executor test: gloo, one all-reduce."""

from __future__ import annotations

from typing import Any


def allreduce(fail_rank: int = -1) -> dict[str, Any]:
    """Every rank contributes rank+1; rank 0's return value is the job's result."""
    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    if rank == fail_rank:  # the others then fail on the broken connection, later
        raise RuntimeError(f"rank {rank} failed on purpose")
    t = torch.tensor([float(rank + 1)])
    dist.all_reduce(t)
    dist.destroy_process_group()
    return {"sum": float(t.item()), "world_size": world}
