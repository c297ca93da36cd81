"""ONNX Runtime and OpenVINO behind :class:`~swinseg.runtimes.Runtime`.

A segmentor's graph (:mod:`.export`) is exported once per weights (the SHA-256 of its tensors
and architecture), backend and precision, and kept under ``SWINSEG_HOME/graphs``; a later run
with the same weights loads it. An exported ``.onnx`` or OpenVINO ``.xml`` carries the
segmentor's description in its metadata, so it runs alone (:func:`load_graph`).

Precision: ONNX Runtime runs fp32. OpenVINO runs f32, or bf16 where the CPU has it
(``INFERENCE_PRECISION_HINT``; OpenVINO lists ``BF16`` in the CPU's
``OPTIMIZATION_CAPABILITIES``), or int8 (the graph quantized by NNCF, kept beside the f32 one): a
request it cannot honour is refused, never silently run in another precision.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data.transforms import Preprocessing
from ..files import home
from ..progress import working
from .base import Runtime, SegmentorInfo
from .sessions import need, onnx_metadata, session, to_openvino

__all__ = ["GRAPH_SUFFIXES", "cached_graph", "graph_runtime", "load_graph", "weights_digest"]

GRAPH_SUFFIXES = (".onnx", ".xml")


def weights_digest(model: nn.Module) -> str:
    """SHA-256 of a model's architecture and every tensor of its state (names, dtypes, shapes,
    bytes): the key of its exported graphs."""
    digest = hashlib.sha256()
    digest.update(json.dumps(getattr(model, "config", {}), sort_keys=True, default=str).encode())
    for name, tensor in model.state_dict().items():
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{value.dtype}:{tuple(value.shape)}".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes() if value.numel() else b"")
    return digest.hexdigest()


def cached_graph(model: nn.Module, backend: str) -> Path:
    """The graph of ``model`` for ``backend`` (an ``.onnx``, or OpenVINO's ``.xml`` + ``.bin``),
    exported on first use into ``SWINSEG_HOME/graphs`` from a float32 copy of the model."""
    from .export import export_onnx

    folder = home() / "graphs"
    stem = weights_digest(model)[:20]
    onnx_path = folder / f"{stem}.onnx"
    target = onnx_path if backend == "onnxruntime" else folder / f"{stem}.xml"
    if target.is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    if not onnx_path.is_file():
        with working(f"exporting the segmentor for {backend} (once for these weights) to {onnx_path}"):
            export_onnx(copy.deepcopy(model).float().cpu().eval(), onnx_path)
    if backend == "openvino":
        with working(f"converting {onnx_path.name} to OpenVINO IR"):
            to_openvino(onnx_path, target)
    print(f"exported the segmentor for {backend} in {time.perf_counter() - start:.0f} s: {target}", file=sys.stderr)
    return target


def _info(text: str, path: Path) -> SegmentorInfo:
    meta = json.loads(text)
    if meta.get("kind") != "segmentor":
        raise ValueError(f"{path} is a {meta.get('kind', 'unknown')} graph; prediction needs a segmentor's")
    pre = meta["preprocessing"]
    size = tuple(pre["size"]) if isinstance(pre["size"], list) else pre["size"]
    return SegmentorInfo(
        num_classes=meta["num_classes"],
        preprocessing=Preprocessing(pre["resize"], size, pre["interpolation"], tuple(pre["mean"]), tuple(pre["std"])),
        test_cfg=meta["test_cfg"],
        dataset_meta=meta["dataset_meta"],
        align_corners=meta["align_corners"],
    )


def graph_runtime(model: nn.Module, options: Any) -> Runtime:
    """``model`` run by ``options.backend`` (onnxruntime or openvino) in ``options.dtype``; int8
    quantizes OpenVINO's graph on ``options.calibrate`` (:mod:`.quantize`)."""
    precision = options.dtype or "fp32"
    need(options.backend)
    path = cached_graph(model, options.backend)
    if precision == "int8":
        from .quantize import quantized_graph

        path = quantized_graph(model, path, options.calibrate)
    return Runtime(SegmentorInfo.of(model), session(path, options.backend, precision), options.backend, precision)


def load_graph(path: str | os.PathLike, options: Any) -> Runtime:
    """An exported ``.onnx`` (onnxruntime, or openvino with ``options.backend``) or ``.xml``
    (openvino) as a :class:`Runtime`, described by its metadata."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"graph {path} does not exist")
    quantized = False
    if path.suffix == ".xml":
        from .quantize import is_quantized

        if options.backend not in ("torch", "openvino"):
            raise ValueError(f"{path} is an OpenVINO graph: it runs with backend openvino, not {options.backend}")
        ov = need("openvino")
        graph = ov.Core().read_model(str(path))
        if not graph.has_rt_info("swinseg"):
            raise ValueError(f"{path} was not exported by swinseg (no 'swinseg' metadata): export it with swinseg export")
        text, backend = str(graph.get_rt_info("swinseg").astype(str)), "openvino"
        quantized = is_quantized(graph)
    elif path.suffix == ".onnx":
        if options.backend not in ("torch", "onnxruntime", "openvino"):
            raise ValueError(f"{path} is an ONNX graph: it runs with backend onnxruntime or openvino, not {options.backend}")
        text, backend = onnx_metadata(path), "openvino" if options.backend == "openvino" else "onnxruntime"
    else:
        raise ValueError(f"{path}: a graph is a .onnx or an OpenVINO .xml file")
    if quantized and options.dtype is not None:
        raise ValueError(f"{path} is an INT8 graph (quantized by NNCF): it runs as it was quantized, not in dtype {options.dtype}")
    if options.dtype == "int8":
        raise ValueError(
            f"{path} is an exported graph: dtype int8 quantizes the graph swinseg exports from a checkpoint; give the checkpoint"
            " (or swinseg export --dtype int8)"
        )
    precision = "int8" if quantized else options.dtype or "fp32"
    return Runtime(_info(text, path), session(path, backend, precision), backend, precision)
