"""Inference dtypes. A model cast to bf16/fp16 keeps its weights in that dtype (no autocast
re-casting each weight on every call); the segmentor then feeds inputs in that dtype and takes
its logits back to float32 before resizing, softmax and argmax, where rounding would move class
boundaries."""

from __future__ import annotations

import torch

__all__ = ["DTYPES", "dtype_name", "parse_dtype"]

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def dtype_name(dtype: torch.dtype) -> str:
    """A torch floating dtype's name in :data:`DTYPES`: ``torch.bfloat16`` -> ``"bf16"``."""
    return next(name for name, value in DTYPES.items() if value == dtype)


def parse_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """``"fp32"``/``"bf16"``/``"fp16"`` (or a torch floating dtype) -> the torch dtype."""
    if isinstance(dtype, torch.dtype):
        if dtype not in DTYPES.values():
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype}")
        return dtype
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return DTYPES[dtype]
