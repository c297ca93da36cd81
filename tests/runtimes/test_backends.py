"""ONNX Runtime and OpenVINO behind the one prediction path: the same labels as torch fp32 for whole
images, slide windows, TTA and streamed TIFFs, through the Python API and the command line; graphs
exported once per weights; exported files that run alone; precisions a backend cannot run refused."""

from __future__ import annotations

import copy
import shutil
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import swinseg
from swinseg.cli import main
from swinseg.ops import tuning
from swinseg.predict import PredictOptions, predict_outputs
from swinseg.runtimes import Runtime, load_runtime, runs_as
from swinseg.runtimes.graphs import cached_graph, load_graph, weights_digest

from ..helpers import tiny_segmentor

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
try:
    import openvino
except ImportError:  # the openvino extra is optional outside the test install
    openvino = None
BACKENDS = ["onnxruntime", *(["openvino"] if openvino else [])]


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    """One model and a graph home shared by the module: each backend's graph is exported once."""
    home = tmp_path_factory.mktemp("home")
    patch = pytest.MonkeyPatch()
    patch.setenv("SWINSEG_HOME", str(home))
    model = tiny_segmentor(5, test_cfg=dict(mode="whole", crop_size=[48, 48], stride=[32, 32]))
    yield model, home
    patch.undo()


@pytest.fixture
def same_home(graphs, monkeypatch):
    monkeypatch.setenv("SWINSEG_HOME", str(graphs[1]))
    return graphs


def _image(height: int = 61, width: int = 93, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_backend_labels_as_torch_fp32(same_home, backend):
    model, _ = same_home
    images = [_image(), _image(40, 130, seed=1)]
    runtime = load_runtime(model, PredictOptions(backend=backend))
    assert isinstance(runtime, Runtime) and runtime.num_classes == 5 and runtime.dataset_meta == model.dataset_meta
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        assert (runtime.decode(x) - model.decode(x)).abs().max() < 1e-4  # the fidelity: float32 round-off
    same = total = 0
    for fields in (dict(), dict(mode="slide"), dict(crop=40, stride=24), dict(tta=True, tta_ratios=(0.75, 1.25))):
        reference = predict_outputs(model, images, PredictOptions(confidence=True, **fields))
        for outputs in (
            predict_outputs(model, images, backend=backend, confidence=True, **fields),
            predict_outputs(runtime, images, **fields, confidence=True),
        ):
            for got, expected in zip(outputs, reference, strict=True):
                same, total = same + int((got.labels == expected.labels).sum()), total + expected.labels.numel()
                assert torch.allclose(got.confidence, expected.confidence, atol=1e-4), (backend, fields)
    assert same / total >= 0.999, same / total  # random weights make near-ties: a round-off flips a few
    assert swinseg.inference(model, images[0], backend=backend).shape == images[0].shape[:2]


def test_a_graph_is_exported_once_per_weights(same_home, capsys):
    model, home = same_home
    first = cached_graph(model, "onnxruntime")
    capsys.readouterr()
    again = cached_graph(copy.deepcopy(model), "onnxruntime")  # another object, the same weights
    assert again == first and "exporting" not in capsys.readouterr().err
    other = copy.deepcopy(model)
    with torch.no_grad():
        other.decode_head.conv_seg.bias.add_(1.0)
    assert weights_digest(other) != weights_digest(model)  # other weights, another graph


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_exported_graph_runs_alone_on_the_command_line(same_home, tmp_path, backend):
    model, _ = same_home
    graph = cached_graph(model, backend)
    alone = tmp_path / f"model{graph.suffix}"
    shutil.copy(graph, alone)
    if graph.suffix == ".xml":
        shutil.copy(graph.with_suffix(".bin"), alone.with_suffix(".bin"))
    checkpoint = swinseg.save_checkpoint(model, tmp_path / "m.safetensors")
    cv2.imwrite(str(tmp_path / "a.png"), _image())
    for source, name in ((checkpoint, "torch"), (alone, "graph")):
        args = ["predict", str(source), str(tmp_path / "a.png"), "--out", str(tmp_path / name), "--confidence", "--mode", "slide"]
        assert main([*args, "--workers", "0"]) == 0
    labels = {name: cv2.imread(str(tmp_path / name / "a.png"), cv2.IMREAD_UNCHANGED) for name in ("torch", "graph")}
    assert (labels["torch"] == labels["graph"]).mean() >= 0.999


def test_a_streamed_tiff_through_onnxruntime_equals_torch(same_home, tmp_path):
    tifffile = pytest.importorskip("tifffile")
    model, _ = same_home
    native = copy.deepcopy(model)
    native.test_pipeline["scale"] = 1.0
    image = _image(150, 170, seed=2)
    tifffile.imwrite(tmp_path / "scene.tif", image, tile=(64, 64), photometric="rgb")
    runtime = load_runtime(model, PredictOptions(backend="onnxruntime"))
    from swinseg.predict.tiled import predict_tiff

    for net, name in ((model, "torch"), (runtime, "onnxruntime")):
        predict_tiff(net, tmp_path / "scene.tif", tmp_path / f"{name}.tif", PredictOptions(crop=48, stride=32), tile=64, block=128)
    torch_labels, ort_labels = (tifffile.imread(tmp_path / f"{name}.tif") for name in ("torch", "onnxruntime"))
    assert (torch_labels == ort_labels).mean() >= 0.999


def _calibration(tmp_path) -> Path:
    folder = tmp_path / "calibration"
    folder.mkdir()
    for i in range(8):
        cv2.imwrite(str(folder / f"{i}.png"), _image(50 + 4 * i, 90, seed=10 + i))
    return folder


def test_precisions_a_backend_cannot_run_are_refused(same_home, monkeypatch):
    model, _ = same_home
    with pytest.raises(ValueError, match="onnxruntime runs fp32"):
        load_runtime(model, PredictOptions(backend="onnxruntime", dtype="bf16"))
    if openvino is not None:
        capabilities = openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
        if "BF16" not in capabilities:
            with pytest.raises(ValueError, match="no bf16"):
                load_runtime(model, PredictOptions(backend="openvino", dtype="bf16"))
        else:
            image = _image()
            bf16 = predict_outputs(model, image, backend="openvino", dtype="bf16")[0].labels
            assert (bf16 == predict_outputs(model, image)[0].labels).double().mean() >= 0.95
    monkeypatch.setitem(sys.modules, "openvino", None)
    fresh = copy.deepcopy(model)
    with pytest.raises(ImportError, match=r"pip install 'swinseg\[openvino\]'"):
        load_runtime(fresh, PredictOptions(backend="openvino"))


@pytest.mark.skipif(openvino is None, reason="the openvino extra is not installed")
def test_int8_is_a_quantized_openvino_graph_that_labels_as_fp32(same_home, tmp_path, capsys):
    """The graph NNCF writes has FakeQuantize nodes (it really is INT8), is made once per weights
    and calibration images, and labels nearly every pixel as torch fp32 does, through the API and
    the command line."""
    pytest.importorskip("nncf")
    model, home = same_home
    folder = _calibration(tmp_path)
    options = PredictOptions(backend="openvino", dtype="int8", calibrate=str(folder))
    runtime = load_runtime(model, options)
    assert runtime.precision == "int8"
    assert "quantizing" in capsys.readouterr().err
    (graph,) = (home / "graphs").glob("*-int8-*.xml")
    assert "FakeQuantize" in {op.get_type_name() for op in openvino.Core().read_model(str(graph)).get_ops()}
    load_runtime(copy.deepcopy(model), options)  # another object, the same weights and images
    assert "quantizing" not in capsys.readouterr().err
    images = [_image(), _image(40, 130, seed=1)]
    same = total = 0
    for got, expected in zip(predict_outputs(runtime, images), predict_outputs(model, images), strict=True):
        same, total = same + int((got.labels == expected.labels).sum()), total + expected.labels.numel()
    assert same / total >= 0.9, same / total  # 8-bit activations and weights on random weights' near-ties (96% here)
    checkpoint = swinseg.save_checkpoint(model, tmp_path / "m.safetensors")
    cv2.imwrite(str(tmp_path / "a.png"), images[0][..., ::-1])  # OpenCV writes BGR
    args = ["predict", str(checkpoint), str(tmp_path / "a.png"), "--out", str(tmp_path / "out"), "--workers", "0"]
    assert main([*args, "--backend", "openvino", "--dtype", "int8", "--calibrate", str(folder)]) == 0
    written = cv2.imread(str(tmp_path / "out" / "a.png"), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(written, predict_outputs(runtime, images[0])[0].labels.numpy())


def _served_as(load) -> tuple[str, str]:
    """The backend and dtype ``swinseg serve``'s /health/ready reports for the model ``load`` gives."""
    testclient = pytest.importorskip("fastapi.testclient")
    from swinseg.serve.app import create_app

    with testclient.TestClient(create_app(load)) as client:
        deadline = time.monotonic() + 60
        while (ready := client.get("/health/ready")).status_code == 503 and time.monotonic() < deadline:
            time.sleep(0.1)
    return ready.json()["backend"], ready.json()["dtype"]


@pytest.mark.skipif(openvino is None, reason="the openvino extra is not installed")
def test_swinseg_export_int8_writes_the_quantized_graph_that_runs_alone(same_home, tmp_path, capsys):
    """``swinseg export --dtype int8 --calibrate`` keeps only the INT8 IR; given as MODEL it runs
    int8 (its metadata is the f32 graph's), labelling as the cached int8 runtime does; a precision
    asked of it, or int8 without its pieces, is one line."""
    pytest.importorskip("nncf")
    model, _ = same_home
    folder = _calibration(tmp_path)
    checkpoint = swinseg.save_checkpoint(model, tmp_path / "m.safetensors")
    out = tmp_path / "graph" / "int8.xml"
    out.parent.mkdir()
    assert main(["export", str(checkpoint), "--out", str(out), "--dtype", "int8", "--calibrate", str(folder)]) == 0
    assert sorted(p.name for p in out.parent.iterdir()) == ["int8.bin", "int8.xml"]
    assert "FakeQuantize" in {op.get_type_name() for op in openvino.Core().read_model(str(out)).get_ops()}
    alone = load_graph(out, PredictOptions(backend="openvino"))
    assert alone.precision == "int8" and alone.num_classes == model.num_classes
    assert _served_as(lambda: load_graph(out, PredictOptions())) == ("openvino", "int8")
    assert runs_as(load_runtime(model, PredictOptions(dtype="bf16"))) == ("torch", "bf16") and runs_as(model) == ("torch", "fp32")
    cached = load_runtime(model, PredictOptions(backend="openvino", dtype="int8", calibrate=str(folder)))
    images = [_image(), _image(40, 130, seed=1)]
    for got, expected, fp32 in zip(
        predict_outputs(alone, images), predict_outputs(cached, images), predict_outputs(model, images), strict=True
    ):
        assert (got.labels == expected.labels).double().mean() >= 0.99
        assert (got.labels == fp32.labels).double().mean() >= 0.9  # torch fp32, as the cached graph's test
    cv2.imwrite(str(tmp_path / "a.png"), images[0][..., ::-1])
    args = ["predict", str(out), str(tmp_path / "a.png"), "--workers", "0"]
    assert main([*args, "--out", str(tmp_path / "pred")]) == 0
    written = cv2.imread(str(tmp_path / "pred" / "a.png"), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(written, predict_outputs(alone, images[0])[0].labels.numpy())
    capsys.readouterr()
    assert main([*args, "--out", str(tmp_path / "pred32"), "--dtype", "fp32"]) == 1
    assert "is an INT8 graph (quantized by NNCF): it runs as it was quantized, not in dtype fp32" in capsys.readouterr().err
    export = ["export", str(checkpoint), "--out"]
    for extra, message in (
        ([str(out), "--dtype", "int8"], "--dtype int8 needs --calibrate"),
        ([str(out), "--calibrate", str(folder)], "--calibrate calibrates --dtype int8: it does nothing with --dtype fp32"),
        ([str(tmp_path / "m.onnx"), "--dtype", "int8", "--calibrate", str(folder)], "the output must be an .xml file, not m.onnx"),
    ):
        assert main([*export, *extra]) == 1
        assert message in capsys.readouterr().err.splitlines()[-1]


def test_int8_options_and_missing_pieces_are_clear(same_home, tmp_path, monkeypatch, capsys):
    model, _ = same_home
    with pytest.raises(ValueError, match="int8 .* needs backend openvino, not torch"):
        PredictOptions(dtype="int8", calibrate=str(tmp_path))
    with pytest.raises(ValueError, match="int8 needs calibrate"):
        PredictOptions(backend="openvino", dtype="int8")
    with pytest.raises(ValueError, match="calibrate calibrates dtype int8: it does nothing with dtype bf16"):
        PredictOptions(backend="openvino", dtype="bf16", calibrate=str(tmp_path))
    assert main(["predict", "m.pth", "a.png", "--out", str(tmp_path), "--dtype", "int8", "--calibrate", str(tmp_path)]) == 1
    assert "error: --dtype int8 is OpenVINO's quantized graph: it needs --backend openvino, not torch" in capsys.readouterr().err
    if openvino is None:
        return
    pytest.importorskip("nncf")
    exported = cached_graph(model, "openvino")
    with pytest.raises(ValueError, match="is an exported graph: dtype int8 quantizes the graph swinseg exports from a checkpoint"):
        load_graph(exported, PredictOptions(backend="openvino", dtype="int8", calibrate=str(tmp_path)))
    assert (
        main(["predict", str(exported), "a.png", "--out", str(tmp_path), "--backend", "openvino", "--dtype", "int8", "--calibrate", "x"])
        == 1
    )
    assert "is an exported graph: dtype int8 quantizes" in capsys.readouterr().err.splitlines()[-1]
    with pytest.raises(ValueError, match="calibrate 'nowhere' is neither a folder of images nor a config"):
        load_runtime(model, PredictOptions(backend="openvino", dtype="int8", calibrate="nowhere"))
    with pytest.raises(FileNotFoundError, match="no images found"):
        load_runtime(model, PredictOptions(backend="openvino", dtype="int8", calibrate=str(tmp_path)))
    monkeypatch.setitem(sys.modules, "nncf", None)
    with pytest.raises(ImportError, match=r"pip install 'swinseg\[int8\]'"):
        load_runtime(copy.deepcopy(model), PredictOptions(backend="openvino", dtype="int8", calibrate=str(tmp_path)))


def test_compile_traces_each_size_once_and_reports_it(monkeypatch, capsys):
    """Dynamo for real, Inductor replaced by a backend that counts graphs (Inductor takes minutes
    per model on a 2-core CPU; benchmarks/runtimes.py times it). A size seen again reuses its
    graph, even when the kernel state is first read inside the trace; each new size is one
    reported compile; past the recompile limit new sizes run eager, and that is said once."""
    real_compile, graphs, seen = torch.compile, [], {}

    def counting(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    def dynamo_only(fn, **kwargs):
        seen.update(kwargs)
        return real_compile(fn, dynamic=kwargs["dynamic"], backend=counting)

    monkeypatch.setattr(torch, "compile", dynamo_only)
    monkeypatch.setattr(torch._dynamo.config, "recompile_limit", 2)
    monkeypatch.setattr(tuning, "STATE", tuning.KernelState())  # SWINSEG_KERNELS not read yet
    torch._dynamo.reset()
    model = tiny_segmentor(5)
    runtime = load_runtime(model, PredictOptions(backend="compile"))
    assert seen == {"dynamic": False, "options": {"freezing": True}}
    for (height, width), compiled in zip([(61, 93), (61, 93), (40, 52), (61, 93)], [1, 1, 2, 2], strict=True):
        image = _image(height, width)
        assert torch.equal(predict_outputs(runtime, image)[0].labels, predict_outputs(model, image)[0].labels)
        assert len(graphs) == compiled, (height, width)
    err = capsys.readouterr().err
    assert err.count("compiled for 1x3x") == 2 and "run eager" not in err
    for height, width in [(33, 47), (35, 47)]:
        image = _image(height, width)
        assert torch.equal(predict_outputs(runtime, image)[0].labels, predict_outputs(model, image)[0].labels)
    assert len(graphs) == 2
    err = capsys.readouterr().err
    assert err.count("new sizes run eager") == 1 and "compiled for" not in err
    assert load_runtime(model, PredictOptions(backend="compile")) is runtime
    bf16 = load_runtime(model, PredictOptions(backend="compile", dtype="bf16"))  # its own limit, not the fp32 one's
    for height, width in [(61, 93), (40, 52)]:
        predict_outputs(bf16, _image(height, width))
    assert len(graphs) == 4
    err = capsys.readouterr().err
    assert err.count("compiled for 1x3x") == 2 and "run eager" not in err
    torch._dynamo.reset()


@pytest.mark.parametrize("backend", BACKENDS)
def test_logits_and_tta_probs_honour_the_backend(same_home, backend, monkeypatch):
    """predict_logits and tta_probs run the backend asked for, not the torch model under it."""
    from swinseg.predict import predict_logits, tta_probs

    model, _ = same_home
    image = _image()
    torch_logits = predict_logits(model, image)
    load_runtime(model, PredictOptions(backend=backend))  # exported here, before torch is barred
    monkeypatch.setattr(type(model), "decode", lambda *a: pytest.fail("the torch model ran"))
    assert torch.allclose(predict_logits(model, image, backend=backend), torch_logits, atol=1e-4)
    assert tta_probs(model, image, tta_ratios=[0.75, 1.0], backend=backend).shape == (5, *image.shape[:2])
