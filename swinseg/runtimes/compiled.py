"""``torch.compile`` of a segmentor's decode: static shapes, one compile per input size (each
reported), Inductor's freezing (weights folded into the graph as constants, which inference
allows), and Inductor's on-disk caches under ``SWINSEG_HOME`` so that a second process compiles
faster.

Why static: with symbolic sizes, Inductor's C++ vectorizer spends minutes of ``sympy.simplify``
on the index expressions of the fused pad + cyclic shift + window partition (over 15 minutes for
one Swin-T compile on 2 cores; BENCHMARKS.md, "torch.compile: the first compile"), while a static
compile takes about 90 s. Slide windows, fixed camera sizes and a served model's inputs have one
size; beyond ``torch._dynamo.config.recompile_limit`` sizes, new sizes run eager, and it is said."""

from __future__ import annotations

import os
import sys
import time
import types
from typing import Any

import torch
from torch import Tensor, nn

from ..files import home
from ..ops import dtype_name
from ..ops.tuning import read_environment
from ..progress import working
from .base import Runtime, SegmentorInfo

__all__ = ["compiled_runtime"]


def _own_decode(model: nn.Module) -> Any:
    """``model.decode`` bound to a copy of its code object. Dynamo keeps graphs and counts the
    recompile limit per code object, which every segmentor's ``decode`` shares: without the copy,
    two compiled runtimes (fp32 and bf16, say) would share one limit, and the second would run
    eager while this module reports it compiled."""
    func = type(model).decode
    code = func.__code__.replace()
    return types.MethodType(types.FunctionType(code, func.__globals__, func.__name__, func.__defaults__, func.__closure__), model)


def compiled_runtime(model: nn.Module, options: Any) -> Runtime:
    """A :class:`Runtime` whose decode is ``torch.compile(model.decode, dynamic=False)`` with
    freezing, in the model's dtype; the first batch of each size compiles, and says how long it
    took."""
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(home() / "inductor"))
    model.eval()
    read_environment()
    compiled = torch.compile(_own_decode(model), dynamic=False, options={"freezing": True})
    weight = next(model.parameters())
    limit = torch._dynamo.config.recompile_limit
    sizes: set[tuple[int, ...]] = set()
    told = False

    def decode(inputs: Tensor) -> Tensor:
        nonlocal told
        size = tuple(inputs.shape)
        with torch.no_grad():
            if size in sizes:
                return compiled(inputs)
            if len(sizes) >= limit:
                if not told:
                    told = True
                    print(
                        f"compile: {limit} input sizes compiled (torch._dynamo.config.recompile_limit); new sizes run eager",
                        file=sys.stderr,
                    )
                return model.decode(inputs)
            start = time.perf_counter()
            with working(f"compiling the segmentor with torch.compile for a {'x'.join(map(str, size))} batch ({weight.dtype}, freezing)"):
                out = compiled(inputs)
            sizes.add(size)
            cache = os.environ["TORCHINDUCTOR_CACHE_DIR"]
            print(f"compiled for {'x'.join(map(str, size))} in {time.perf_counter() - start:.0f} s (cache: {cache})", file=sys.stderr)
            return out

    return Runtime(SegmentorInfo.of(model), decode, "compile", dtype_name(weight.dtype), weight.device, weight.dtype)
