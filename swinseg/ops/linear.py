"""Linear layers, optionally followed by exact GELU, in inference on a CPU: ``aten``
(``F.linear``, which copies the bias into the output before adding the product; GELU as a
separate pass) or ``onednn`` (oneDNN's matmul on weights reordered once into its blocked layout,
with the bias and GELU applied as it writes its output: the form PyTorch's inductor emits).
Chosen by :mod:`swinseg.ops.tuning` per layer shape and dtype (float32, bfloat16). With
gradients, under tracing, in other dtypes and off the CPU: ``F.linear``."""

from __future__ import annotations

import weakref

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .tuning import choose, register

__all__ = ["KERNELS", "linear"]

KERNELS = ("aten", "onednn")
register("linear", KERNELS)

_ONEDNN = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


def _aten(x: Tensor, weight: Tensor, bias: Tensor | None, gelu: bool) -> Tensor:
    y = F.linear(x, weight, bias)
    return F.gelu(y) if gelu else y


# id(weight) -> (its version, data pointer and dtype when reordered, the reordered copy); an
# entry goes with its weight
_reordered: dict[int, tuple[tuple[int, int, torch.dtype], Tensor]] = {}


def _reordered_weight(weight: Tensor, rows: int) -> Tensor:
    """``weight`` in oneDNN's blocked layout, made again whenever the weight changes (an
    optimizer step, a load, a cast)."""
    state = (weight._version, weight.data_ptr(), weight.dtype)
    hit = _reordered.get(id(weight))
    if hit is None:
        weakref.finalize(weight, _reordered.pop, id(weight), None)
    if hit is None or hit[0] != state:
        hit = (state, torch.ops.mkldnn._reorder_linear_weight(weight.detach(), rows))
        _reordered[id(weight)] = hit
    return hit[1]


def _onednn(x: Tensor, weight: Tensor, bias: Tensor | None, gelu: bool) -> Tensor:
    packed = _reordered_weight(weight, x.numel() // x.shape[-1])
    return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "gelu" if gelu else "none", [], "none" if gelu else "")


def linear(x: Tensor, layer: nn.Linear, gelu: bool = False) -> Tensor:
    """``layer(x)``, then exact GELU when ``gelu``: (..., in_features) -> (..., out_features)."""
    weight, bias = layer.weight, layer.bias
    if (not _ONEDNN or x.device.type != "cpu" or torch.is_grad_enabled() or torch.compiler.is_compiling()
            or x.dtype != weight.dtype or x.dtype not in (torch.float32, torch.bfloat16)):
        return _aten(x, weight, bias, gelu)
    kernels = {"aten": _aten, "onednn": _onednn}
    candidates = {name: (lambda fn=fn: fn(x, weight, bias, gelu)) for name, fn in kernels.items()}
    shape = f"{layer.in_features}-{layer.out_features}" + ("-gelu" if gelu else "")
    return kernels[choose("linear", shape, x.dtype, x.device, candidates, default="onednn")](x, weight, bias, gelu)
