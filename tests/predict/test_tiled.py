"""Huge TIFF images: streamed slide inference equals the in-memory path, georeferencing is kept,
and a 30000 x 30000 image runs in bounded memory in a fresh process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

tifffile = pytest.importorskip("tifffile")

import swinseg  # noqa: E402
from swinseg.cli import main  # noqa: E402
from swinseg.data.tiff import TiffReader  # noqa: E402
from swinseg.models.segmentor import EncoderDecoder, slide_grid  # noqa: E402
from swinseg.predict import PredictOptions, predict_outputs  # noqa: E402
from swinseg.predict.tiled import predict_tiff  # noqa: E402

from ..helpers import tiny_segmentor  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
GEO = [(33550, 12, 3, (0.5, 0.5, 0.0), True), (33922, 12, 6, (0.0, 0.0, 0.0, 500000.0, 4000000.0, 0.0), True)]


def _model(crop: int = 96, stride: int = 64) -> EncoderDecoder:
    slide = dict(mode="slide", crop_size=[crop, crop], stride=[stride, stride])
    return tiny_segmentor(5, test_cfg=slide, test_pipeline=dict(scale=1.0))  # native resolution, as huge images run


def _image(height: int, width: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 256, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    return np.ascontiguousarray(np.repeat(np.repeat(coarse, 8, 0), 8, 1)[:height, :width])


def test_slide_grid_is_mmsegmentations():
    assert slide_grid(1000, 512, 341) == [(0, 512), (341, 853), (488, 1000)]
    assert slide_grid(300, 512, 341) == [(0, 300)]
    assert slide_grid(512, 512, 341) == [(0, 512)]


@pytest.mark.parametrize("compression", ["lzw", "jpeg", "zstd", "packbits", "zlib"])
def test_the_reader_decodes_the_usual_codecs_as_tifffile_does(tmp_path, compression):
    pytest.importorskip("imagecodecs")
    image = _image(100, 130)
    tifffile.imwrite(tmp_path / "c.tif", image, tile=(32, 32), photometric="rgb", compression=compression)
    with TiffReader(tmp_path / "c.tif") as reader:
        assert np.array_equal(reader.read_rows(0, 100), tifffile.imread(tmp_path / "c.tif"))
        assert np.array_equal(reader.read_rows(33, 71), tifffile.imread(tmp_path / "c.tif")[33:71])


@pytest.mark.parametrize("layout", ["tiled", "striped", "grey16"])
def test_streamed_labels_equal_the_in_memory_path(tmp_path, layout):
    model, image = _model(), _image(301, 433)
    path = tmp_path / "scene.tif"
    if layout == "tiled":
        tifffile.imwrite(path, image, tile=(64, 64), photometric="rgb", compression="zlib", extratags=GEO)
    elif layout == "striped":
        tifffile.imwrite(path, image, rowsperstrip=7, photometric="rgb", extratags=GEO)
    else:
        image = np.repeat(image[:, :, :1], 3, axis=2)
        tifffile.imwrite(path, image[:, :, 0].astype(np.uint16) * 256 + 7, tile=(32, 32), extratags=GEO)
    with TiffReader(path) as reader:
        assert np.array_equal(reader.read_rows(0, reader.height), image)
        assert np.array_equal(reader.read_rows(50, 117), image[50:117])
    info = predict_tiff(
        model, path, tmp_path / "out" / "scene.tif", PredictOptions(confidence=True, confidence_bits=16), tile=64, block=128
    )
    expected = predict_outputs(model, image, confidence=True)[0]
    labels = tifffile.imread(tmp_path / "out" / "scene.tif")
    confidence = tifffile.imread(tmp_path / "out" / "scene_conf.tif")
    assert info["windows"] == len(slide_grid(301, 96, 64)) * len(slide_grid(433, 96, 64))
    assert labels.dtype == np.uint8 and np.array_equal(labels, expected.labels.numpy())
    assert confidence.dtype == np.uint16 and np.abs(confidence / 65535 - expected.confidence.numpy()).max() < 1e-4
    for name in ("scene.tif", "scene_conf.tif"):
        with tifffile.TiffFile(tmp_path / "out" / name) as tif:
            tags = tif.pages.first.tags
            assert tif.pages.first.is_tiled and tags[33550].value == GEO[0][3] and tags[33922].value == GEO[1][3]


def test_predict_cli_streams_a_large_tiff(tmp_path, capsys):
    model = _model()
    checkpoint = swinseg.save_checkpoint(model, tmp_path / "m.safetensors")
    image = _image(200, 260)
    tifffile.imwrite(tmp_path / "big.tif", image, tile=(64, 64), photometric="rgb")
    out = tmp_path / "out"
    assert main(["predict", str(checkpoint), str(tmp_path / "big.tif"), "--out", str(out), "--tiled", "--confidence"]) == 0
    assert np.array_equal(tifffile.imread(out / "big.tif"), predict_outputs(model, image)[0].labels.numpy())
    assert tifffile.imread(out / "big_conf.tif").dtype == np.uint8
    assert "native resolution" in capsys.readouterr().out
    (tmp_path / "bad.tif").write_bytes(b"II*\x00garbage")
    assert main(["predict", str(checkpoint), str(tmp_path / "bad.tif"), "--out", str(out), "--tiled"]) == 1


HUGE = """
import json, resource, sys
import numpy as np, tifffile, torch
from swinseg.models.segmentor import EncoderDecoder
from swinseg.predict import PredictOptions
from swinseg.predict.tiled import predict_tiff

side, tile = 30000, 512
def tiles():
    for top in range(0, side, tile):
        for left in range(0, side, tile):
            piece = np.empty((tile, tile, 3), np.uint8)
            piece[...] = (top * 7 // side + left * 5 // side) * 20
            piece[::2, :, 1] = 200 if (top // tile + left // tile) % 3 else 30
            yield piece
src, dst = sys.argv[1], sys.argv[2]
tifffile.imwrite(src, tiles(), shape=(side, side, 3), dtype=np.uint8, tile=(tile, tile), photometric="rgb",
                 compression="zlib", bigtiff=True)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
torch.manual_seed(0)
model = EncoderDecoder(backbone=dict(embed_dims=16, depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1)),
                       decode_head=dict(channels=8, num_classes=4), auxiliary_head=None).eval()
info = predict_tiff(model, src, dst, PredictOptions(crop=1024, stride=1024, confidence=True), tile=512, block=2048)
info.update(before_mb=before / 1024, peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
print(json.dumps(info))
"""


def test_a_30000_pixel_square_tiff_runs_in_bounded_memory(tmp_path):
    run = subprocess.run(
        [sys.executable, "-c", HUGE, str(tmp_path / "huge.tif"), str(tmp_path / "huge_labels.tif")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=1200,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    info = json.loads(run.stdout.strip().splitlines()[-1])
    assert (info["height"], info["width"], info["windows"]) == (30000, 30000, 900)
    assert info["peak_mb"] < 3 * 1024, info  # the image alone is 2.5 GiB, its float32 input 10 GiB
    with TiffReader(tmp_path / "huge_labels.tif") as labels:
        assert (labels.height, labels.width) == (30000, 30000)
        assert labels.read_rows(0, 4).max() < 4 and labels.read_rows(29996, 30000).max() < 4
    print(f"\n30000x30000 TIFF: {info['seconds']:.0f} s, peak RSS {info['peak_mb']:.0f} MB")
