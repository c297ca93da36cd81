"""Distributed helpers that work unchanged in one process: torchrun set-up, rank queries and
SyncBatchNorm (PyTorch's on GPUs, an all-reduce one on CPUs)."""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import Iterator

import torch
import torch.distributed as dist
import torch.distributed._functional_collectives as funcol
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

__all__ = [
    "BACKENDS",
    "init_distributed",
    "close_distributed",
    "get_rank",
    "get_world_size",
    "rank_zero_first",
    "CPUSyncBatchNorm",
    "sync_batchnorm",
    "wrap_ddp",
]

# The process group's backend per device type. On GPUs, NCCL reduces CUDA tensors and gloo the
# CPU ones (metric counts, objects, barriers): NCCL alone has no CPU backend.
BACKENDS = {"cuda": "cpu:gloo,cuda:nccl", "cpu": "gloo"}


def init_distributed(device: str | None = None) -> torch.device:
    """Join the process group that ``torchrun`` describes in the environment (:data:`BACKENDS`)
    and return this process's device; in a plain run, just the device."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        if dev.type == "cuda":
            dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(dev)
        if dev.type not in BACKENDS:
            raise ValueError(f"device={device!r}: several processes train on {', '.join(BACKENDS)} devices only")
        dist.init_process_group(BACKENDS[dev.type])
    return dev


def close_distributed() -> None:
    """Leave the process group, if this process joined one (at the end of a command)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def get_rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def get_world_size() -> int:
    """Processes in the default group; 1 without one."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


@contextlib.contextmanager
def rank_zero_first() -> Iterator[None]:
    """Run the block on rank 0 before the other ranks (e.g. one download fills the cache for all)."""
    if get_world_size() > 1 and get_rank() != 0:
        dist.barrier()
    yield
    if get_world_size() > 1 and get_rank() == 0:
        dist.barrier()


class CPUSyncBatchNorm(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics span every process of the group, for CPU runs
    (PyTorch's SyncBatchNorm needs GPUs). The sums for the mean, then the squared deviations for
    the variance, are all-reduced with a differentiable all-reduce, so gradients flow through the
    shared statistics as they do in SyncBatchNorm."""

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or get_world_size() == 1:
            return super().forward(x)
        channels, shape = x.shape[1], (1, x.shape[1], 1, 1)
        sums = _all_reduce(torch.cat([x.sum((0, 2, 3)), x.new_full((1,), x.numel() / channels)]))
        total = sums[-1]
        mean = sums[:channels] / total
        centered = x - mean.view(shape)
        var = _all_reduce(centered.square().sum((0, 2, 3))) / total  # two passes: no E[x^2] - E[x]^2 cancellation
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * (total / (total - 1)), alpha=m)
        y = centered * torch.rsqrt(var.view(shape) + self.eps)
        return y * self.weight.view(shape) + self.bias.view(shape) if self.affine else y


def _all_reduce(x: Tensor) -> Tensor:
    """Differentiable sum over processes (the backward pass sums the gradients likewise)."""
    return funcol.wait_tensor(funcol.all_reduce(x, "sum", dist.group.WORLD))


def sync_batchnorm(model: nn.Module, device: torch.device | str) -> nn.Module:
    """BatchNorm -> synchronized BatchNorm when several processes train (the reference configs'
    ``SyncBN``): PyTorch's SyncBatchNorm on GPUs, :class:`CPUSyncBatchNorm` on CPUs; unchanged in
    one process, so no config ever needs editing for it."""
    if get_world_size() == 1:
        return model
    if torch.device(device).type != "cpu":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for name, child in model.named_children():
        if type(child) is nn.BatchNorm2d:
            sync = CPUSyncBatchNorm(child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats)
            sync.load_state_dict(child.state_dict())
            setattr(model, name, sync)
        else:
            sync_batchnorm(child, device)
    return model


def wrap_ddp(model: nn.Module, device: torch.device) -> DistributedDataParallel:
    """DistributedDataParallel without a buffer broadcast before each forward pass, as MMEngine
    wraps: synchronized BatchNorm already gives every rank the same statistics. (PyTorch 2.13
    renames the switch ``forward_sync_buffers``; the buffers are still synced once at the start.)"""
    ids = [device] if device.type == "cuda" else None
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters:
        return DistributedDataParallel(model, device_ids=ids, forward_sync_buffers=False)
    return DistributedDataParallel(model, device_ids=ids, broadcast_buffers=False)
