"""The command line, run in-process through ``swinseg.cli.main``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import swinseg
from swinseg import SwinTransformer
from swinseg.cli import main
from swinseg.data import classification_input, read_image

from .helpers import randomize_

SMALL = dict(embed_dims=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4))


def test_convert_help(capsys):
    with pytest.raises(SystemExit) as code:
        main(["convert", "--help"])
    assert code.value.code == 0
    assert "swin2mmseg" in capsys.readouterr().out


def test_convert_official_to_mmseg_and_back(tmp_path, capsys):
    model = randomize_(SwinTransformer(**SMALL, num_classes=1000)).eval()
    swinseg.convert_checkpoint(swinseg.save_checkpoint(model, tmp_path / "m.pth"), tmp_path / "official.pth", to="official")
    assert main(["convert", str(tmp_path / "official.pth"), str(tmp_path / "mmseg.pth"), "--to", "mmseg"]) == 0
    assert "(official layout)" in capsys.readouterr().out
    assert main(["convert", str(tmp_path / "mmseg.pth"), str(tmp_path / "back.safetensors")]) == 0
    backbone = swinseg.create_model(tmp_path / "back.safetensors")
    assert backbone.num_classes == 0
    for k, v in backbone.state_dict().items():
        if not k.startswith("norm"):
            assert torch.equal(v, model.state_dict()[k]), k


def test_classify_prints_imagenet_classes(tmp_path, capsys):
    import cv2

    model = randomize_(SwinTransformer(**SMALL, num_classes=1000))
    path = swinseg.save_checkpoint(model, tmp_path / "m.safetensors")
    cv2.imwrite(str(tmp_path / "x.jpg"), np.full((50, 80, 3), 128, np.uint8))
    assert main(["classify", str(path), str(tmp_path / "x.jpg"), "--size", "64", "--topk", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    x = classification_input(read_image(tmp_path / "x.jpg"), 64)[None]
    with torch.no_grad():
        best = model.eval()(x)[0].argmax().item()
    assert lines[1].endswith(swinseg.data.imagenet_classes()[best])


def test_errors_are_one_line(tmp_path, capsys):
    assert main(["classify", "swin_tiny_patch4_window7_224", str(tmp_path / "missing.jpg")]) == 1
    assert capsys.readouterr().err.strip() == f"error: image {tmp_path / 'missing.jpg'} does not exist"
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    assert main(["classify", "swin_tiny_patch4_window7_224", str(tmp_path / "bad.jpg")]) == 1
    assert "cannot decode" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "nope.pth"), str(tmp_path / "out.pth")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_classification_input_follows_official_sizes():
    image = np.zeros((300, 400, 3), np.uint8)
    image[:, 200:] = 255
    x = classification_input(image, 224)
    assert x.shape == (3, 224, 224)
    # short side 300 -> 256, long side int(256 * 400 / 300) = 341, crop starts at round((341 - 224) / 2) = 58
    # the white half starts at 341 / 2 = 170.5 in the resized image, i.e. column ~112.5 of the crop
    white = (x[0] > 0).float().mean(0)
    assert white[:110].sum() == 0 and white[116:].min() == 1


def test_demo_runs(tmp_path, capsys):
    assert main(["demo", "--work-dir", str(tmp_path), "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert "28,288,354 parameters" in out and "median" in out
    assert (tmp_path / "swin_tiny_demo.safetensors").exists()
