"""Graph export with dynamic batch, height and width (ONNX; OpenVINO IR from it), checked against
PyTorch with onnxruntime.

The graph is what a runtime computes (:mod:`swinseg.runtimes`): it takes normalized images
(B, 3, H, W) float32 (``(rgb - mean) / std``, the mean and std in its metadata) and returns a
segmentor's decode logits (B, num_classes, H/4, W/4) float32, or a classifier's
(B, num_classes). The resize to the test scale, slide windows, the resize back and argmax stay
in swinseg. The metadata (key ``swinseg``, JSON) describes the model: classes, palette,
preprocessing and test windows, so that ``swinseg predict model.onnx images/`` needs nothing else.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.metadata
import json
import logging
import os
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..files import atomic_write
from ..models.segmentor import EncoderDecoder
from ..models.swin import SwinTransformer
from ..progress import working
from .sessions import need, session, to_openvino

__all__ = ["Graph", "compare_graph", "describe", "export_and_check", "export_graph", "export_onnx", "size_range", "trace_side"]

MAX_SIDE = 8192


class Graph(nn.Module):
    """Normalized (B, 3, H, W) -> a segmentor's decode logits (B, C, H/4, W/4) or a classifier's (B, C)."""

    def __init__(self, model: EncoderDecoder | SwinTransformer) -> None:
        super().__init__()
        self.model = model
        if not isinstance(model, EncoderDecoder) and getattr(model, "num_classes", 0) <= 0:
            raise ValueError("only a segmentor or a classifier (num_classes > 0) can be exported")

    def forward(self, images: Tensor) -> Tensor:
        return self.model.decode(images) if isinstance(self.model, EncoderDecoder) else self.model(images).float()


def _version() -> str:
    try:
        return importlib.metadata.version("swinseg")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def describe(model: EncoderDecoder | SwinTransformer) -> dict[str, Any]:
    """What the graph's metadata says of the model (JSON): enough to predict with the graph alone."""
    info: dict[str, Any] = {
        "swinseg": _version(),
        "kind": "segmentor" if isinstance(model, EncoderDecoder) else "classifier",
        "num_classes": model.num_classes,
        "preprocessing": dataclasses.asdict(model.preprocessing),
        "input": "images: normalized (batch, 3, height, width) float32, (rgb - mean) / std",
    }
    if isinstance(model, EncoderDecoder):
        info |= {"test_cfg": model.test_cfg, "dataset_meta": model.dataset_meta, "align_corners": model.align_corners}
        info["output"] = "logits: (batch, classes, height / 4, width / 4) float32 decode-head logits"
    else:
        info["output"] = "logits: (batch, classes) float32"
    return json.loads(json.dumps(info, default=list))


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
    model: EncoderDecoder | SwinTransformer, path: str | os.PathLike, *, side: int | None = None, opset: int = 18
) -> tuple[int, int]:
    """Write ``model`` as ONNX to ``path`` (atomically) with dynamic batch, height and width,
    traced at :func:`trace_side`. Returns the range of heights and widths in which the graph
    equals the model (:func:`size_range`)."""
    try:
        import onnxscript  # noqa: F401  (the exporter needs it)
    except ImportError:
        raise ImportError("ONNX export needs onnx and onnxscript: pip install 'swinseg[export]'") from None
    side = trace_side(model, side)
    net = Graph(model).eval()
    dynamic = {0: torch.export.Dim.DYNAMIC, 2: torch.export.Dim.DYNAMIC, 3: torch.export.Dim.DYNAMIC}
    example = torch.randn(2, 3, side, side)

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
        import onnx

        graph = onnx.load(str(tmp), load_external_data=False)
        onnx.helper.set_model_props(graph, {"swinseg": json.dumps(describe(model))})
        onnx.save(graph, str(tmp))

    atomic_write(Path(path), write)
    return size_range(_backbone(model), side)


def compare_graph(
    path: str | os.PathLike, model: EncoderDecoder | SwinTransformer, shapes: Sequence[Sequence[int]], seed: int = 0
) -> list[float]:
    """Max |graph - PyTorch| of the logits for random normalized images of each (B, H, W) in
    ``shapes``; an ``.onnx`` runs in onnxruntime, an ``.xml`` in OpenVINO (f32)."""
    path = Path(path)
    run = session(path, "openvino" if path.suffix == ".xml" else "onnxruntime")
    net = Graph(model).eval()
    generator = torch.Generator().manual_seed(seed)
    diffs = []
    for batch, height, width in shapes:
        images = torch.randn(batch, 3, height, width, generator=generator)
        with torch.no_grad():
            expected = net(images)
        logits = run(images)
        if logits.shape != expected.shape:
            raise ValueError(f"{path}: the graph's logits have shape {tuple(logits.shape)}, PyTorch's {tuple(expected.shape)}")
        diffs.append(float((logits - expected).abs().max()))
    return diffs


def export_graph(
    model: EncoderDecoder | SwinTransformer, path: str | os.PathLike, *, side: int | None = None, opset: int = 18
) -> tuple[int, int]:
    """:func:`export_onnx` to a ``.onnx`` path, or through it to OpenVINO IR at an ``.xml`` path
    (the ONNX file is not kept). Returns the sizes the graph is exact for (:func:`size_range`)."""
    path = Path(path)
    if path.suffix == ".onnx":
        return export_onnx(model, path, side=side, opset=opset)
    if path.suffix != ".xml":
        raise ValueError(f"{path}: the graph's file must end in .onnx (ONNX) or .xml (OpenVINO IR)")
    need("openvino")
    onnx_path = path.with_name(f".{path.stem}.export.onnx")
    try:
        sizes = export_onnx(model, onnx_path, side=side, opset=opset)
        to_openvino(onnx_path, path)
    finally:
        onnx_path.unlink(missing_ok=True)
    return sizes


def export_and_check(
    model: EncoderDecoder | SwinTransformer,
    path: str | os.PathLike,
    *,
    side: int | None = None,
    opset: int = 18,
    tolerance: float | None = 1e-4,
    calibrate: str | None = None,
) -> None:
    """``swinseg export``: :func:`export_graph`, then (unless ``tolerance`` is None)
    :func:`compare_graph` at two other sizes; an error when they differ by more than ``tolerance``.
    With ``calibrate`` (a segmentor to an ``.xml``), the checked f32 graph is then quantized to
    INT8 by NNCF on those images (:func:`~swinseg.runtimes.quantize.quantize`) and only that is kept."""
    path = Path(path)
    kind = "segmentor" if isinstance(model, EncoderDecoder) else "classifier"
    if calibrate is not None and kind != "segmentor":
        raise ValueError("INT8 quantizes segmentors (calibrated on segmentation images), not a classifier")
    if calibrate is not None and path.suffix != ".xml":
        raise ValueError(f"INT8 is OpenVINO's quantized graph: the output must be an .xml file, not {path.name}")
    graph = path if calibrate is None else path.with_name(f".{path.stem}.f32.xml")
    try:
        _export_and_check(model, graph, kind, side, opset, tolerance)
        if calibrate is not None:
            from .quantize import calibration_files, quantize

            quantize(model, graph, calibration_files(calibrate, model.num_classes), calibrate, path)
    finally:
        if graph != path:
            graph.unlink(missing_ok=True)
            graph.with_suffix(".bin").unlink(missing_ok=True)


def _export_and_check(model: nn.Module, path: Path, kind: str, side: int | None, opset: int, tolerance: float | None) -> None:
    engine = "OpenVINO" if path.suffix == ".xml" else "onnxruntime"
    start = time.perf_counter()
    with working(f"exporting the {kind} to {path}"):
        low, high = export_graph(model, path, side=side, opset=opset)
    print(
        f"exported the {kind} to {path} in {time.perf_counter() - start:.0f} s (opset {opset}): input 'images' "
        f"(batch, 3, height, width) normalized, output 'logits' ({'1/4 size decode logits' if kind == 'segmentor' else 'classes'}); "
        f"height and width {low}..{high}; classes, palette and preprocessing in the metadata"
    )
    if tolerance is None:
        return
    shapes = [(1, high, low), (2, low, high)] if high - low < 256 else [(1, 301, 397), (2, 160, 241)]
    with working(f"checking {path} with {engine}"):
        diffs = compare_graph(path, model, shapes)
    report = ", ".join(f"{b}x{h}x{w}: {d:.1e}" for (b, h, w), d in zip(shapes, diffs, strict=True))
    if max(diffs) > tolerance:
        raise ValueError(f"{path} disagrees with PyTorch: max |logits difference| {report} (tolerance {tolerance})")
    print(f"{engine} matches PyTorch, max |logits difference| {report}")
