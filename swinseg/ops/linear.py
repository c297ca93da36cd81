"""Linear layers, optionally followed by exact GELU, in inference on a CPU: ``aten``
(``F.linear``, which copies the bias into the output before adding the product; GELU as a
separate pass) or ``onednn`` (oneDNN's matmul with the bias and GELU applied as it writes its
output, the form PyTorch's inductor emits). The weights are not kept reordered into oneDNN's
blocked layout (5-15% faster products): an update by the fused AdamW leaves no trace
(``_version``) to tell a stale copy by, and a stale copy would be silently wrong.
Chosen by :mod:`swinseg.ops.tuning` per layer shape and dtype (float32; bfloat16 where oneDNN
has bf16 kernels: AVX512-BF16/AMX CPUs). With
gradients, under tracing, in other dtypes and off the CPU: ``F.linear``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .dispatch import Call, Kernel, Operation

__all__ = ["KERNELS", "linear"]

_ONEDNN = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")
# oneDNN's bf16 matmul needs AVX512-BF16/AMX (or AVX512 emulation): on AVX2 CPUs it has no primitive
_DTYPES = (torch.float32, torch.bfloat16) if _ONEDNN and torch.ops.mkldnn._is_mkldnn_bf16_supported() else (torch.float32,)


def _aten(x: Tensor, weight: Tensor, bias: Tensor | None, gelu: bool) -> Tensor:
    y = F.linear(x, weight, bias)
    return F.gelu(y) if gelu else y


def _onednn(x: Tensor, weight: Tensor, bias: Tensor | None, gelu: bool) -> Tensor:
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "gelu" if gelu else "none", [], "none" if gelu else "")


def _onednn_runs(call: Call) -> bool:
    return _ONEDNN and call.device.type == "cpu" and not call.training and not call.traced and call.dtype in _DTYPES


LINEAR = Operation(
    "linear",
    "linear layers (fc1 with its GELU)",
    (
        Kernel("aten", _aten, "`F.linear`, then GELU"),
        Kernel("onednn", _onednn, "oneDNN matmul, bias and GELU fused", _onednn_runs),
    ),
    default="onednn",
    per="layer shape, dtype",
)
KERNELS = tuple(k.name for k in LINEAR.kernels)


def linear(x: Tensor, layer: nn.Linear, gelu: bool = False) -> Tensor:
    """``layer(x)``, then exact GELU when ``gelu``: (..., in_features) -> (..., out_features)."""
    weight, bias = layer.weight, layer.bias
    call = Call(
        x.device,
        x.dtype if x.dtype == weight.dtype else None,
        training=torch.is_grad_enabled(),
        traced=torch.compiler.is_compiling(),
    )
    return LINEAR(call, lambda: f"{layer.in_features}-{layer.out_features}" + ("-gelu" if gelu else ""), x, weight, bias, gelu)
