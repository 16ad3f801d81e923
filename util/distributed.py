"""Data-parallel training under torchrun (NCCL on GPUs, gloo on CPU).

Gradients are averaged by explicit all-reduces after each backward instead of wrapping the networks
in DistributedDataParallel: sequential mini-batch training calls each generator several times per
update, on sub-batches that differ between ranks, and a rank whose instance group is empty must still
join the same collectives without computing anything. A parameter that got no gradient on any rank
keeps ``grad = None``, so Adam skips it exactly as it would in a single process.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(opt: argparse.Namespace) -> DistContext:
    """Join the process group torchrun describes in the environment; a plain run gets a 1-process context.
    Each rank uses GPU ``LOCAL_RANK`` when GPUs are in use."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistContext()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = bool(opt.gpu_ids) and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(local_rank)
        opt.gpu_ids = [local_rank]
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank)


def shutdown_distributed(context: DistContext) -> None:
    if context.enabled and dist.is_initialized():
        dist.destroy_process_group()


def is_main_process() -> bool:
    """Rank 0 of a torchrun job (also before the process group exists), or a plain run."""
    return os.environ.get("RANK", "0") == "0"


def _enabled() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def average_gradients(parameters: Iterable[nn.Parameter]) -> None:
    """Average ``.grad`` over ranks in one flat all-reduce; missing gradients count as zero, and a
    parameter with no gradient on any rank keeps ``None``."""
    if not _enabled():
        return
    params = [p for p in parameters if p.requires_grad]
    if not params:
        return
    device = params[0].device
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).float() for p in params])
    has_grad = torch.tensor([p.grad is not None for p in params], dtype=torch.float32, device=device)
    dist.all_reduce(flat)
    dist.all_reduce(has_grad)
    flat /= dist.get_world_size()
    offset = 0
    for param, count in zip(params, has_grad.tolist(), strict=True):
        size = param.numel()
        if count > 0:
            param.grad = flat[offset:offset + size].view_as(param).to(param.dtype)
        offset += size


def any_rank(flag: bool, device: torch.device | str = "cpu") -> bool:
    """True on every rank when ``flag`` is true on at least one (keeps ranks in lock-step)."""
    if not _enabled():
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value)
    return bool(value.item() > 0)


def max_over_ranks(value: int, device: torch.device | str = "cpu") -> int:
    """The largest ``value`` of all ranks, on every rank."""
    if not _enabled():
        return value
    tensor = torch.tensor([value], dtype=torch.int64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return int(tensor.item())


def mean_over_ranks(values: dict[str, float], device: torch.device | str = "cpu") -> dict[str, float]:
    """Average logged scalars over ranks (every rank must call this at the same point)."""
    if not _enabled() or not values:
        return values
    tensor = torch.tensor(list(values.values()), dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    tensor /= dist.get_world_size()
    return dict(zip(values, tensor.tolist(), strict=True))


def broadcast_parameters(nets: Iterable[nn.Module]) -> None:
    """Start every rank from rank 0's weights and buffers (spectral-norm vectors included)."""
    if not _enabled():
        return
    for net in nets:
        for tensor in list(net.parameters()) + list(net.buffers()):
            dist.broadcast(tensor.data, src=0)


def broadcast_buffers(nets: Iterable[nn.Module]) -> None:
    """Copy rank 0's buffers to every rank: spectral-norm power iterations (and batch-norm statistics) run
    once per forward call, and ranks make different numbers of calls when their instance groups differ."""
    if not _enabled():
        return
    for net in nets:
        for buffer in net.buffers():
            dist.broadcast(buffer.data, src=0)


def barrier() -> None:
    if _enabled():
        dist.barrier()
