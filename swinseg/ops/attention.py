"""Window attention kernels: ``softmax(scale * q k^T + mask) v`` over (B, windows, heads, N, d).

- ``sdpa``: PyTorch's ``scaled_dot_product_attention`` on (B x windows, heads, N, d) views of the
  qkv output, a one-window mask broadcast (the fused flash kernel on CPUs and GPUs; the only form
  under ``torch.compile`` and ONNX export);
- ``bmm``: ``baddbmm`` (scale and mask in one pass), softmax, ``bmm`` over (B x windows x heads);
- ``bmm_f32``: the same with the softmax computed in float32 and rounded once (bf16/fp16 only).

Which one runs is chosen by :mod:`swinseg.ops.tuning`, per dtype and shape class.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor

from .dispatch import Call, Kernel, Operation

__all__ = ["KERNELS", "window_attention"]


def _sdpa(q: Tensor, k: Tensor, v: Tensor, mask: Tensor, scale: float, dropout: float) -> Tensor:
    """Over (B x windows, heads, N, d): views of the qkv projection's output (no copies), a
    one-window mask broadcast, a per-window mask repeated for each image only when B > 1."""
    B, nW, heads, N, d = q.shape
    if mask.shape[0] > 1 and B > 1:
        mask = mask.expand(B, -1, -1, -1, -1).reshape(B * nW, heads, N, N)
    q, k, v = (t.reshape(B * nW, heads, N, d) for t in (q, k, v))
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout, scale=scale)
    return out.view(B, nW, heads, N, d)


def _bmm(q: Tensor, k: Tensor, v: Tensor, mask: Tensor, scale: float, dropout: float, float32_softmax: bool = False) -> Tensor:
    B, nW, heads, N, d = q.shape
    n = B * nW * heads
    mask = mask.expand(B, nW, -1, -1, -1).reshape(n, N, N)
    scores = torch.baddbmm(mask, q.reshape(n, N, d), k.reshape(n, N, d).transpose(1, 2), alpha=scale)
    probs = scores.softmax(-1, dtype=torch.float32).to(scores.dtype) if float32_softmax else scores.softmax(-1)
    return torch.bmm(F.dropout(probs, dropout), v.reshape(n, N, d)).view(B, nW, heads, N, d)


ATTENTION = Operation(
    "attention",
    "window attention",
    (
        Kernel("sdpa", _sdpa, "PyTorch's fused kernel over (B x windows, heads, N, d) views of the qkv output"),
        Kernel("bmm", _bmm, "`baddbmm` + softmax + `bmm`", lambda call: not call.traced),
        Kernel(
            "bmm_f32",
            partial(_bmm, float32_softmax=True),
            "softmax in fp32; bf16/fp16 only",
            lambda call: not call.traced and call.dtype in (torch.bfloat16, torch.float16),
        ),
    ),
    default="sdpa",
    per="heads, windows per image, dtype",
)
KERNELS = tuple(k.name for k in ATTENTION.kernels)


def window_attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor, scale: float, dropout: float = 0.0) -> Tensor:
    """(B, windows, heads, N, d) queries, keys, values and a (1 or windows, heads, N, N) additive
    mask -> (B, windows, heads, N, d)."""
    B, nW, heads, N, d = q.shape
    grad = torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v, mask))
    call = Call(q.device, q.dtype, training=grad, traced=torch.compiler.is_compiling())
    return ATTENTION(call, lambda: f"N{N}-d{d}-h{heads}-w{nW}", q, k, v, mask, scale, dropout)
