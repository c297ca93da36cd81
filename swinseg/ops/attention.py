"""Window attention kernels: ``softmax(scale * q k^T + mask) v`` over (B, windows, heads, N, d).

- ``sdpa``: PyTorch's ``scaled_dot_product_attention`` on (B x windows, heads, N, d) views of the
  qkv output, a one-window mask broadcast (the fused flash kernel on CPUs and GPUs; the only form
  under ``torch.compile`` and ONNX export);
- ``bmm``: ``baddbmm`` (scale and mask in one pass), softmax, ``bmm`` over (B x windows x heads);
- ``bmm_f32``: the same with the softmax computed in float32 and rounded once (bf16/fp16 only).

Which one runs is chosen by :mod:`swinseg.ops.tuning`, per dtype and shape class.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .tuning import choose, register

__all__ = ["KERNELS", "window_attention"]

KERNELS = ("sdpa", "bmm", "bmm_f32")
register("attention", KERNELS)


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


def window_attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor, scale: float, dropout: float = 0.0) -> Tensor:
    """(B, windows, heads, N, d) queries, keys, values and a (1 or windows, heads, N, N) additive
    mask -> (B, windows, heads, N, d)."""
    if torch.compiler.is_compiling():
        return _sdpa(q, k, v, mask, scale, dropout)
    kernels = {
        "sdpa": lambda q, k, v, m: _sdpa(q, k, v, m, scale, dropout),
        "bmm": lambda q, k, v, m: _bmm(q, k, v, m, scale, dropout),
    }
    if q.dtype in (torch.bfloat16, torch.float16):
        kernels["bmm_f32"] = lambda q, k, v, m: _bmm(q, k, v, m, scale, dropout, float32_softmax=True)
    B, nW, heads, N, d = q.shape
    grad = torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v, mask))
    shape = f"N{N}-d{d}-h{heads}-w{nW}" + ("-grad" if grad else "")
    candidates = {name: (lambda fn=fn: fn(q, k, v, mask)) for name, fn in kernels.items()}
    name = choose("attention", shape, q.dtype, q.device, candidates, default="sdpa", timeable=not grad)
    return kernels[name](q, k, v, mask)
