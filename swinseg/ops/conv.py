"""3x3 convolution kernels (stride 1, padding 1, no bias): ``direct`` (``F.conv2d``: oneDNN on a
CPU, cuDNN on a GPU), ``direct_nhwc`` (the same on a channels-last copy of the input, whose output
stays channels-last: oneDNN's bf16/AMX kernels prefer it) or ``winograd``
(:func:`~swinseg.ops.winograd.winograd_conv3x3`). The last two on a CPU only.
Chosen by :mod:`swinseg.ops.tuning` per channels, dtype and pixels per image (a power-of-two
class), never per batch, so that an image's result does not depend on its batch."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .dispatch import Call, Kernel, Operation
from .winograd import winograd_conv3x3

__all__ = ["KERNELS", "WINOGRAD_MIN_PIXELS", "conv3x3"]

# With timing off: below this many output pixels per image, transforming the filters costs more
# than Winograd saves.
WINOGRAD_MIN_PIXELS = 2048


def _direct(x: Tensor, weight: Tensor) -> Tensor:
    return F.conv2d(x, weight, padding=1)


def _direct_nhwc(x: Tensor, weight: Tensor) -> Tensor:
    return F.conv2d(x.contiguous(memory_format=torch.channels_last), weight, padding=1)


def _winograd(x: Tensor, weight: Tensor) -> Tensor:
    return winograd_conv3x3(x, weight)


def _eager_cpu(call: Call) -> bool:
    return call.device.type == "cpu" and not call.traced


CONV3X3 = Operation(
    "conv3x3",
    "heads' 3x3 convolutions",
    (
        Kernel("winograd", _winograd, "F(2x2, 3x3)", _eager_cpu),
        Kernel("direct", _direct, "`F.conv2d`: oneDNN, cuDNN"),
        Kernel("direct_nhwc", _direct_nhwc, "oneDNN on a channels-last copy", _eager_cpu),
    ),
    default="winograd",
    per="channels and pixels per image",
    default_doc=f"`winograd` from {WINOGRAD_MIN_PIXELS} pixels per image, else `direct`",
)
KERNELS = tuple(k.name for k in CONV3X3.kernels)


def conv3x3(x: Tensor, weight: Tensor) -> Tensor:
    """``F.conv2d(x, weight, padding=1)`` for (B, C, H, W) ``x`` and (K, C, 3, 3) ``weight``, by
    the chosen kernel (traced graphs keep the standard operator for export and compilation)."""
    H, W = x.shape[-2:]
    grad = torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)
    call = Call(x.device, x.dtype, training=grad, traced=torch.compiler.is_compiling())
    return CONV3X3(
        call,
        lambda: f"C{x.shape[1]}-K{weight.shape[0]}-px{1 << (H * W).bit_length()}",
        x,
        weight,
        default=lambda: "winograd" if H * W >= WINOGRAD_MIN_PIXELS else "direct",
    )
