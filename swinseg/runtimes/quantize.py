"""INT8 OpenVINO graphs: NNCF's post-training quantization of a segmentor's f32 IR, calibrated on
real images through the segmentor's own test preprocessing.

Calibration takes up to :data:`SUBSET` images (NNCF's default subset size), evenly spread over
a folder of images (searched recursively) or a config's training split. The quantized graph is
kept beside the f32 one, keyed by the calibration images' bytes and NNCF's version, so a later
run with the same weights and images loads it. NNCF's default preset is used: its transformer
preset stops on UPerNet's concatenations of differently scaled inputs ("QConfigs for unified
scale group ... are not equal", NNCF 3.4).
"""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path
from typing import Any

from torch import nn

from ..configs import load_config
from ..data.dataset import build_dataset
from ..data.io import IMAGE_SUFFIXES, read_image
from ..progress import working
from .sessions import need, save_ir

__all__ = ["SUBSET", "calibration_files", "is_quantized", "quantize", "quantized_graph"]

SUBSET = 300


def calibration_files(source: str, num_classes: int) -> list[Path]:
    """Up to :data:`SUBSET` image files, evenly spread, from ``source``: a folder of images, or a
    config (file or shipped name) whose training images are taken."""
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    else:
        try:
            config = load_config(source)
        except (FileNotFoundError, ValueError) as e:
            raise ValueError(f"calibrate {source!r} is neither a folder of images nor a config: {e}") from None
        files = [image for image, _ in build_dataset(config["data"], "train", num_classes).samples]
    if not files:
        raise FileNotFoundError(f"calibrate {source}: no images found")
    count = min(SUBSET, len(files))
    return [files[i * len(files) // count] for i in range(count)]


def quantize(model: nn.Module, xml: Path, files: list[Path], source: str, target: Path) -> Path:
    """NNCF's INT8 graph of ``model``'s f32 IR ``xml``, calibrated on ``files`` (from ``source``,
    :func:`calibration_files`) and written to ``target`` with the f32 graph's metadata."""
    nncf, ov = need("nncf"), need("openvino")
    start = time.perf_counter()
    graph = ov.Core().read_model(str(xml))
    samples = nncf.Dataset(files, lambda file: model.preprocessing(read_image(file), None)[None].numpy())
    with working(f"quantizing {xml.name} to INT8 with NNCF on {len(files)} images from {source}"):
        quantized = nncf.quantize(graph, samples, subset_size=len(files))
    quantized.set_rt_info(str(graph.get_rt_info("swinseg").astype(str)), "swinseg")
    save_ir(quantized, target)
    print(f"quantized the segmentor to INT8 in {time.perf_counter() - start:.0f} s: {target}", file=sys.stderr)
    return target


def quantized_graph(model: nn.Module, xml: Path, source: str) -> Path:
    """The INT8 graph of ``model`` beside its f32 IR ``xml``, quantized (:func:`quantize`) on the
    first use of these weights and calibration images."""
    nncf = need("nncf")
    files = calibration_files(source, model.num_classes)
    digest = hashlib.sha256(nncf.__version__.encode())
    for file in files:
        digest.update(file.read_bytes())
    target = xml.with_name(f"{xml.stem}-int8-{digest.hexdigest()[:12]}.xml")
    return target if target.is_file() else quantize(model, xml, files, source, target)


def is_quantized(graph: Any) -> bool:
    """Whether an OpenVINO model holds NNCF's FakeQuantize nodes (an INT8 graph)."""
    return any(op.get_type_name() == "FakeQuantize" for op in graph.get_ops())
