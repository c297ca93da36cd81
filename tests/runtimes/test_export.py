"""Graph export (ONNX, OpenVINO IR) with dynamic batch, height and width, checked with onnxruntime and OpenVINO."""

from __future__ import annotations

import importlib.util
import json
import sys
import warnings

import numpy as np
import pytest
import torch

import swinseg
from swinseg import SwinTransformer
from swinseg.cli import main
from swinseg.models.segmentor import EncoderDecoder
from swinseg.predict import preprocess
from swinseg.runtimes.export import Graph, compare_graph, export_onnx, size_range, trace_side

from ..helpers import DEMO_CONFIG, randomize_

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

SMALL = dict(embed_dims=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4))


def _input_dims(path):
    model = onnx.load(str(path))
    (images,) = model.graph.input
    return [d.dim_param or d.dim_value for d in images.type.tensor_type.shape.dim], model.opset_import[0].version


def test_segmentor_exports_with_dynamic_sizes_and_matches_pytorch(tmp_path, capsys, caplog, monkeypatch):
    find_spec = importlib.util.find_spec  # the default install has no torchvision: the exporter then warns per torchvision op
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torchvision" else find_spec(name, *a))
    model = randomize_(
        EncoderDecoder(backbone=SMALL, decode_head=dict(channels=16, num_classes=5), auxiliary_head=dict(channels=8, num_classes=5))
    )
    ckpt = swinseg.save_checkpoint(model.eval(), tmp_path / "seg.safetensors")
    out = tmp_path / "seg.onnx"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["export", str(ckpt), "--onnx", str(out)]) == 0
    printed = capsys.readouterr()
    assert "height and width 1..8192" in printed.out and "onnxruntime matches PyTorch" in printed.out
    assert f"exporting the segmentor to {out} ..." in printed.err  # said before the long step, wherever the output goes
    assert not [r for r in caplog.records if "torchvision" in r.getMessage()]
    assert not [w for w in caught if issubclass(w.category, FutureWarning)], [str(w.message) for w in caught]
    dims, opset = _input_dims(out)
    assert opset >= 17 and dims[1] == 3 and all(isinstance(d, str) for d in (dims[0], dims[2], dims[3]))
    side = trace_side(model)
    # sizes the trace never saw: odd, tiny, non-square, smaller than one window, several images
    shapes = [(1, 5, 7), (3, 173, 301), (1, 1, 1), (2, 97, 64)]
    assert side not in {s for _, h, w in shapes for s in (h, w)}
    assert max(compare_graph(out, model, shapes)) < 1e-4


def test_classifier_exports_for_its_window_range(tmp_path):
    model = randomize_(SwinTransformer(**SMALL, num_classes=7)).eval()
    out = tmp_path / "cls.onnx"
    assert export_onnx(model, out) == (193, 224)
    dims, _ = _input_dims(out)
    assert all(isinstance(d, str) for d in (dims[0], dims[2], dims[3]))
    assert max(compare_graph(out, model, [(1, 193, 211), (3, 224, 200)])) < 1e-4


def test_size_range_follows_the_window_rule():
    # Swin-T, window 7, patch 4: stage i attends over its whole map while ceil(side / (4 * 2^i)) <= 7
    tiny = SwinTransformer(num_classes=10)
    assert size_range(tiny, 224) == (193, 224)  # last stage exactly 7 x 7
    assert size_range(tiny, 256) == (225, 8192)  # every stage partitions
    assert size_range(tiny, 100) == (97, 112)  # stage 2 at 7, stage 3 at 4
    base384 = SwinTransformer(window_size=12, embed_dims=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32), num_classes=10)
    assert size_range(base384, 384) == (353, 384)
    assert size_range(SwinTransformer(), 512) == (1, 8192)  # a backbone partitions at every size
    for side in (224, 100):
        low, high = size_range(tiny, side)
        stages = [lambda s, i=i: tiny.stages[i].window_and_shift(*(2 * [-(-s // (4 * 2**i))])) for i in range(4)]
        assert [f(low - 1) for f in stages] != [f(low) for f in stages]
        assert [f(high + 1) for f in stages] != [f(high) for f in stages]


def test_the_graph_is_the_decode_head_of_normalized_images_and_describes_the_model(tmp_path):
    model = randomize_(EncoderDecoder(backbone=SMALL, decode_head=dict(channels=16, num_classes=5), auxiliary_head=None)).eval()
    rgb = np.random.default_rng(0).integers(0, 256, (45, 61, 3)).astype(np.uint8)
    # MMSegmentation's data_preprocessor of the Swin configs, written out: the graph takes its output
    mean, std = torch.tensor([123.675, 116.28, 103.53]), torch.tensor([58.395, 57.12, 57.375])
    normalized = (torch.from_numpy(rgb).permute(2, 0, 1)[None].float() - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)
    with torch.no_grad():
        assert torch.equal(Graph(model)(normalized), model.decode(normalized))
        assert torch.allclose(preprocess(model, rgb, scale=1.0), normalized, atol=1e-6)
    export_onnx(model, tmp_path / "seg.onnx")
    meta = json.loads({p.key: p.value for p in onnx.load(str(tmp_path / "seg.onnx")).metadata_props}["swinseg"])
    assert meta["kind"] == "segmentor" and meta["num_classes"] == 5
    assert meta["preprocessing"]["mean"] == [123.675, 116.28, 103.53] and meta["test_cfg"] == model.test_cfg
    assert meta["dataset_meta"]["classes"] == list(model.dataset_meta["classes"])
    with pytest.raises(ValueError, match="segmentor or a classifier"):
        Graph(SwinTransformer(**SMALL))


def test_export_errors_are_clear(tmp_path, capsys, monkeypatch):
    assert main(["export", DEMO_CONFIG, "--onnx", str(tmp_path / "m.onnx")]) == 1
    assert "needs a CHECKPOINT" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    with pytest.raises(ImportError, match=r"pip install 'swinseg\[export\]'"):
        export_onnx(SwinTransformer(**SMALL, num_classes=3), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
