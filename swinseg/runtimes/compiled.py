"""``torch.compile`` of a segmentor's decode: dynamic shapes (one trace serves every keep-ratio
size), Inductor's freezing (weights folded into the graph as constants, which inference allows),
and Inductor's on-disk caches under ``SWINSEG_HOME`` so that a second process compiles faster."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import torch
from torch import Tensor, nn

from ..files import home
from ..progress import working
from .base import Runtime, SegmentorInfo

__all__ = ["compiled_runtime"]


def compiled_runtime(model: nn.Module, options: Any) -> Runtime:
    """A :class:`Runtime` whose decode is ``torch.compile(model.decode, dynamic=True)`` with
    freezing, in the model's dtype; the first call compiles, and says how long it took."""
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(home() / "inductor"))
    model.eval()
    compiled = torch.compile(model.decode, dynamic=True, options={"freezing": True})
    weight = next(model.parameters())
    first = [True]

    def decode(inputs: Tensor) -> Tensor:
        with torch.no_grad():
            if not first[0]:
                return compiled(inputs)
            start = time.perf_counter()
            with working(f"compiling the segmentor with torch.compile (dynamic shapes, freezing, {weight.dtype})"):
                out = compiled(inputs)
            first[0] = False
            print(f"compiled in {time.perf_counter() - start:.0f} s (cache: {os.environ['TORCHINDUCTOR_CACHE_DIR']})", file=sys.stderr)
            return out

    precision = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[weight.dtype]
    return Runtime(SegmentorInfo.of(model), decode, "compile", precision, weight.device, weight.dtype)
