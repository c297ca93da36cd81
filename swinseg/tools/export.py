"""ONNX export with dynamic batch, height and width, checked against PyTorch with onnxruntime.

The exported graph takes RGB images in 0..255 as float32 (B, 3, H, W), normalizes them, and
returns logits: (B, num_classes, H, W) from a segmentor's whole-image inference, or
(B, num_classes) from a classifier. Resizing to the test scale (and back) stays outside.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ..files import atomic_write
from ..models.segmentor import EncoderDecoder
from ..models.swin import SwinTransformer
from ..progress import working

__all__ = ["Deployable", "size_range", "trace_side", "export_onnx", "compare_onnx", "export_and_check"]

MAX_SIDE = 8192


class Deployable(nn.Module):
    """RGB (B, 3, H, W) in 0..255 -> logits of a segmentor (whole inference) or a classifier."""

    def __init__(self, model: EncoderDecoder | SwinTransformer) -> None:
        super().__init__()
        self.model = model
        if not isinstance(model, EncoderDecoder) and getattr(model, "num_classes", 0) <= 0:
            raise ValueError("only a segmentor or a classifier (num_classes > 0) can be exported")
        mean, std = model.preprocessing.mean, model.preprocessing.std
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: Tensor) -> Tensor:
        x = (images - self.mean) / self.std
        return self.model.encode_decode(x) if isinstance(self.model, EncoderDecoder) else self.model(x)


def size_range(backbone: SwinTransformer, side: int, max_side: int = MAX_SIDE) -> tuple[int, int]:
    """The image sides around ``side`` for which every stage keeps the same window and shift.

    A segmentation backbone partitions at every size (the whole range). The official classifier
    attends over a whole map once it is no larger than the window, so its graph changes where a
    stage's map crosses the window size: 113..224 share the graph of 224 for Swin-T.
    """
    patch = backbone.patch_embed.patch_size

    def windows(length: int) -> tuple[tuple[int, int], ...]:
        sides = [-(-length // (patch * 2**i)) for i in range(len(backbone.stages))]
        return tuple(stage.window_and_shift(s, s) for stage, s in zip(backbone.stages, sides, strict=True))

    ref = windows(side)
    low, high = side, side
    while low > 1 and windows(low - 1) == ref:
        low -= 1
    while high < max_side and windows(high + 1) == ref:
        high += 1
    return low, high


def _backbone(model: nn.Module) -> SwinTransformer:
    return model.backbone if isinstance(model, EncoderDecoder) else model


def trace_side(model: EncoderDecoder | SwinTransformer, side: int | None = None) -> int:
    """The image side to trace at: a classifier's own input side (its window rule depends on
    it); for a segmentor, one large enough that every stage has several windows per axis, so
    that the exporter meets no size-1 dimension it could bake into the graph."""
    backbone = _backbone(model)
    if isinstance(model, EncoderDecoder):
        stride = backbone.patch_embed.patch_size * 2 ** (len(backbone.stages) - 1)
        return max(side or 0, 2 * backbone.stages[0].window_size * stride + 1)
    return side or model.preprocessing.size[0]


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Without the exporter's noise about things swinseg never uses: one warning per torchvision
    op when torchvision is absent, and a FutureWarning of torch's own pytree internals."""
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*LeafSpec.*", category=FutureWarning)
            yield
    finally:
        registration.setLevel(level)


def export_onnx(
    model: EncoderDecoder | SwinTransformer, path: str | os.PathLike, side: int | None = None, opset: int = 18
) -> tuple[int, int]:
    """Write ``model`` as ONNX to ``path`` (atomically) with dynamic batch, height and width,
    traced at :func:`trace_side`. Returns the range of heights and widths in which the graph
    equals the model (:func:`size_range`)."""
    try:
        import onnxscript  # noqa: F401  (the exporter needs it)
    except ImportError:
        raise ImportError("ONNX export needs onnx and onnxscript: pip install 'swinseg[export]'") from None
    side = trace_side(model, side)
    net = Deployable(model).eval()
    dynamic = {0: torch.export.Dim.DYNAMIC, 2: torch.export.Dim.DYNAMIC, 3: torch.export.Dim.DYNAMIC}
    example = torch.rand(2, 3, side, side) * 255

    def write(tmp: Path) -> None:
        with torch.no_grad(), _quiet_exporter():
            program = torch.onnx.export(
                net,
                (example,),
                dynamo=True,
                dynamic_shapes={"images": dynamic},
                opset_version=opset,
                input_names=["images"],
                output_names=["logits"],
                verbose=False,
            )
        program.save(str(tmp))

    atomic_write(Path(path), write)
    return size_range(_backbone(model), side)


def compare_onnx(
    path: str | os.PathLike, model: EncoderDecoder | SwinTransformer, shapes: Sequence[Sequence[int]], seed: int = 0
) -> list[float]:
    """Max |onnxruntime - PyTorch| of the logits for random images of each (B, H, W) in ``shapes``."""
    try:
        import onnxruntime
    except ImportError:
        raise ImportError("checking an export needs onnxruntime: pip install 'swinseg[export]'") from None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    net = Deployable(model).eval()
    generator = torch.Generator().manual_seed(seed)
    diffs = []
    for batch, height, width in shapes:
        images = torch.rand(batch, 3, height, width, generator=generator) * 255
        with torch.no_grad():
            expected = net(images).numpy()
        (logits,) = session.run(None, {"images": images.numpy()})
        if logits.shape != expected.shape:
            raise ValueError(f"{path}: ONNX logits have shape {logits.shape}, PyTorch {expected.shape}")
        diffs.append(float(np.abs(logits - expected).max()))
    return diffs


def export_and_check(
    model: EncoderDecoder | SwinTransformer,
    path: str | os.PathLike,
    side: int | None = None,
    opset: int = 18,
    tolerance: float | None = 1e-4,
) -> None:
    """``swinseg export``: :func:`export_onnx`, then (unless ``tolerance`` is None)
    :func:`compare_onnx` at two other sizes; an error when they differ by more than ``tolerance``."""
    kind = "segmentor" if isinstance(model, EncoderDecoder) else "classifier"
    start = time.perf_counter()
    with working(f"exporting the {kind} to {path}"):
        low, high = export_onnx(model, path, side=side, opset=opset)
    print(
        f"exported the {kind} to {path} in {time.perf_counter() - start:.0f} s (opset {opset}): input 'images' "
        f"(batch, 3, height, width) RGB 0..255, output 'logits'; height and width {low}..{high}"
    )
    if tolerance is None:
        return
    shapes = [(1, high, low), (2, low, high)] if high - low < 256 else [(1, 301, 397), (2, 160, 241)]
    with working(f"checking {path} with onnxruntime"):
        diffs = compare_onnx(path, model, shapes)
    report = ", ".join(f"{b}x{h}x{w}: {d:.1e}" for (b, h, w), d in zip(shapes, diffs, strict=True))
    if max(diffs) > tolerance:
        raise ValueError(f"{path} disagrees with PyTorch: max |logits difference| {report} (tolerance {tolerance})")
    print(f"onnxruntime matches PyTorch, max |logits difference| {report}")
