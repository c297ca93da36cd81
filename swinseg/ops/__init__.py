"""Kernel choice in one place: window attention (and its softmax dtype), linear layers (with
GELU fused or not), the heads' 3x3 convolutions, chunking of Swin blocks. Each operation has
candidate kernels that compute the same thing to round-off; :mod:`~swinseg.ops.tuning` picks one
per device, machine, dtype and shape class, by timing them on first use (kept per machine), and
records what it picked.

>>> from swinseg import ops
>>> ops.configure(attention="bmm")        # force a kernel (or SWINSEG_KERNELS=attention=bmm)
>>> ops.configure(tune=False)             # no timing: the static defaults (SWINSEG_KERNELS=tune=off)
>>> ops.choices()                          # {"attention/cpu/float32/N49-d32-h3-w64": "sdpa", ...}
"""

from .attention import window_attention
from .chunking import chunk_tokens
from .conv import conv3x3
from .linear import linear
from .machine import cpu_info, machine_info, signature
from .precision import DTYPES, parse_dtype
from .tuning import ENV, choices, configure, forced, restore
from .windows import relative_position_index

__all__ = [
    "DTYPES",
    "ENV",
    "choices",
    "chunk_tokens",
    "configure",
    "conv3x3",
    "cpu_info",
    "forced",
    "linear",
    "machine_info",
    "parse_dtype",
    "relative_position_index",
    "restore",
    "signature",
    "window_attention",
]
