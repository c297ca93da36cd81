"""Running an exported graph: an ONNX Runtime session or an OpenVINO compiled model, each as a
function from a normalized batch to the graph's logits, and the ONNX -> OpenVINO IR conversion.
The libraries are imported on first use; a missing one is a one-line error naming the extra."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..files import atomic_write, home

__all__ = ["need", "onnx_metadata", "save_ir", "session", "to_openvino"]

EXTRAS = {"onnxruntime": "export", "onnx": "export", "openvino": "openvino", "nncf": "int8"}


def need(module: str) -> Any:
    try:
        return __import__(module)
    except ImportError:
        raise ImportError(f"this needs {module}: pip install 'swinseg[{EXTRAS.get(module, 'export')}]'") from None


def to_openvino(onnx_path: Path, xml_path: Path) -> Path:
    """OpenVINO IR (``.xml`` + ``.bin``, f32 weights) of an exported ONNX graph, with its metadata."""
    ov = need("openvino")
    graph = ov.convert_model(str(onnx_path))
    graph.set_rt_info(onnx_metadata(onnx_path), "swinseg")
    return save_ir(graph, xml_path)


def save_ir(graph: Any, xml_path: Path) -> Path:
    """Write an OpenVINO model as IR (``.xml`` + ``.bin``, weights as they are) so that a reader
    never sees half of it: the ``.bin`` first, the ``.xml`` last and complete."""
    ov = need("openvino")
    bin_path = xml_path.with_suffix(".bin")

    def write(tmp: Path) -> None:
        ov.save_model(graph, str(tmp), compress_to_fp16=False)
        os.replace(tmp.with_suffix(".bin"), bin_path)

    atomic_write(xml_path, write, keep_suffix=True)
    return xml_path


def onnx_metadata(path: Path) -> str:
    """The ``swinseg`` metadata (JSON text) of an exported ONNX graph."""
    onnx = need("onnx")
    props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    if "swinseg" not in props:
        raise ValueError(f"{path} was not exported by swinseg (no 'swinseg' metadata): export it with swinseg export")
    return props["swinseg"]


def _onnxruntime(path: Path, precision: str) -> Any:
    if precision != "fp32":
        raise ValueError(f"onnxruntime runs fp32 here, not {precision} (bf16: backend 'openvino' on a CPU with bf16, or 'torch')")
    ort = need("onnxruntime")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def decode(inputs: Tensor) -> Tensor:
        (logits,) = session.run(None, {"images": np.ascontiguousarray(inputs.detach().float().cpu().numpy())})
        return torch.from_numpy(logits)

    return decode


def _openvino(path: Path, precision: str) -> Any:
    ov = need("openvino")
    core = ov.Core()
    if precision == "fp16":
        raise ValueError("openvino on a CPU runs f32 or bf16, not fp16")
    if precision == "bf16" and "BF16" not in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        capabilities = ", ".join(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
        raise ValueError(f"this CPU has no bf16 for OpenVINO (its capabilities: {capabilities}); use fp32")
    core.set_property({"CACHE_DIR": str(home() / "graphs" / "openvino-cache")})
    hint = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}[precision]  # int8: the quantized graph; what it leaves float, in f32
    compiled = core.compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": hint})
    request = compiled.create_infer_request()

    def decode(inputs: Tensor) -> Tensor:
        result = request.infer({0: np.ascontiguousarray(inputs.detach().float().cpu().numpy())})
        return torch.from_numpy(np.array(result[compiled.output(0)]))

    return decode


def session(path: Path, backend: str, precision: str = "fp32") -> Callable[[Tensor], Tensor]:
    """The graph at ``path`` run by ``backend`` (onnxruntime or openvino) in ``precision`` (int8:
    a graph NNCF quantized): a function from a normalized (B, 3, H, W) batch to its logits, on the
    CPU."""
    return _onnxruntime(path, precision) if backend == "onnxruntime" else _openvino(path, precision)
