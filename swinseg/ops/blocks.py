"""How a Swin block runs; what it computes is the block's own ``steps`` (the plain reference).

- windows: ``gather`` puts the tokens into windows (pad, cyclic shift, partition) and back
  (reverse, unshift, crop) with two precomputed gathers (:func:`~swinseg.ops.windows.window_order`)
  instead of four copies; ``steps`` runs the block's ``steps`` as written. Never timed.
- chunk: without gradients on a CPU, the attention and the MLP may work on runs of whole windows
  and rows of about 2048 or 8192 tokens of one image at a time, whose intermediates stay in the
  caches. Timed per width and tokens per image (a power-of-two class: what decides whether a map
  fits in the caches; never the batch), by timing the block itself.
- recomputation: in a training step, the block keeps for its backward pass only its input and the
  outputs of its widening linear layers (qkv, fc1), and recomputes the rest (norms, padding,
  shifts, attention, GELU, the attention's output projection); ``with_cp`` keeps only its input.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Protocol

import torch
import torch.utils.checkpoint as cp
from torch import Tensor, nn

from .dispatch import Call, Kernel, Operation
from .windows import cached_window_order, padded, window_order

__all__ = ["Block", "swin_block"]


class Block(Protocol):
    """What :func:`swin_block` uses of a Swin block."""

    norm1: nn.Module
    norm2: nn.Module
    attn: nn.Module  # attn(windows, mask), attn.attention_mask(window, shift_mask)
    mlp: nn.Module
    drop_path: nn.Module
    with_cp: bool
    training: bool

    def steps(self, x: Tensor, window: int, shift: int, mask: Tensor | None) -> Tensor: ...

    def parameters(self) -> Any: ...


def _attend(block: Block, windows: Tensor, mask: Tensor, tokens: int | None) -> Tensor:
    """Attention over (B, num_windows, N, C) windows; with ``tokens``, over runs of whole windows
    of one image at a time (contiguous slices)."""
    B, nW, N, _ = windows.shape
    per = max((tokens or 0) // N, 1)
    if tokens is None or (B == 1 and nW <= per):
        return block.attn(windows, mask)
    out = torch.empty_like(windows)
    for b in range(B):
        for i in range(0, nW, per):
            part = mask if mask.shape[0] == 1 else mask[i : i + per]
            out[b : b + 1, i : i + per] = block.attn(windows[b : b + 1, i : i + per], part)
    return out


def _gathered(block: Block, x: Tensor, window: int, shift: int, shift_mask: Tensor | None, tokens: int | None) -> Tensor:
    """The block with its windows by gathers, on chunks of ``tokens`` (None: whole maps)."""
    B, H, W, C = x.shape
    Hp, Wp = padded(H, window), padded(W, window)
    traced = torch.compiler.is_compiling()
    y = block.norm1(x)
    if traced or (Hp, Wp) != (H, W):  # no branch on a traced size
        y = torch.nn.functional.pad(y, (0, 0, 0, Wp - W, 0, Hp - H))
    order, inverse = (window_order if traced else cached_window_order)(H, W, window, shift, x.device)
    windows = y.reshape(B, Hp * Wp, C).index_select(1, order).view(B, -1, window * window, C)
    attended = _attend(block, windows, block.attn.attention_mask(window, shift_mask), tokens)
    x = x + block.drop_path(attended.view(B, Hp * Wp, C).index_select(1, inverse).view(B, H, W, C))
    if tokens is None:
        return x + block.drop_path(block.mlp(block.norm2(x)))
    for image in x:
        flat = image.view(-1, C)
        for i in range(0, flat.shape[0], tokens):
            rows = flat[i : i + tokens]
            rows += block.mlp(block.norm2(rows))
    return x


def _chunks_may_run(call: Call) -> bool:
    return call.device.type == "cpu" and not call.training and not call.traced


CHUNK = Operation(
    "chunk",
    "Swin block chunking",
    (
        Kernel("whole", partial(_gathered, tokens=None), "whole maps"),
        Kernel("2048", partial(_gathered, tokens=2048), "runs of 2048 tokens of one image: whole windows, MLP rows", _chunks_may_run),
        Kernel("8192", partial(_gathered, tokens=8192), "the same by 8192", _chunks_may_run),
    ),
    default="2048",
    per="width and tokens per image",
)
CHUNKS = tuple(k.name for k in CHUNK.kernels)


def _gather(call: Call, block: Block, x: Tensor, window: int, shift: int, mask: Tensor | None) -> Tensor:
    _, H, W, C = x.shape
    return CHUNK(call, lambda: f"C{C}-tokens{1 << (H * W).bit_length()}", block, x, window, shift, mask)


def _steps(call: Call, block: Block, x: Tensor, window: int, shift: int, mask: Tensor | None) -> Tensor:
    return block.steps(x, window, shift, mask)


WINDOWS = Operation(
    "windows",
    "Swin block windows",
    (
        Kernel("gather", _gather, "pad, shift and partition, and their reverse, as two gathers"),
        Kernel("steps", _steps, "the block's steps as written: the reference"),
    ),
    default="gather",
    per=None,
)


_MATMULS = (torch.ops.aten.mm.default, torch.ops.aten.addmm.default)


def _keep_widening_matmuls(ctx: Any, op: Any, *args: Any, **kwargs: Any) -> cp.CheckpointPolicy:
    if op in _MATMULS:
        a, b = args[-2:]
        if b.shape[1] > a.shape[1]:
            return cp.CheckpointPolicy.MUST_SAVE
    return cp.CheckpointPolicy.PREFER_RECOMPUTE


# fc2 is never recomputed: recomputation stops once fc2's input is rebuilt.
keep_widening_matmuls = partial(cp.create_selective_checkpoint_contexts, _keep_widening_matmuls)


def swin_block(block: Block, x: Tensor, window: int, shift: int, mask: Tensor | None) -> Tensor:
    """``block.steps(x, window, shift, mask)`` computed the chosen way: (B, H, W, C) -> same shape.
    The way is chosen before the forward pass, so that its recomputation does the same."""
    call = Call(x.device, x.dtype, training=block.training or torch.is_grad_enabled(), traced=torch.compiler.is_compiling())
    run = WINDOWS.pick(call).run
    if not torch.is_grad_enabled() or not (x.requires_grad or any(p.requires_grad for p in block.parameters())):
        return run(call, block, x, window, shift, mask)
    context = {} if block.with_cp else {"context_fn": keep_widening_matmuls}
    return cp.checkpoint(run, call, block, x, window, shift, mask, use_reentrant=False, **context)
