"""The command line, run in-process through ``swinseg.cli.main``."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

import swinseg
from swinseg import SwinTransformer
from swinseg.cli import main
from swinseg.data import Preprocessing, read_image
from swinseg.predict import predict

from .helpers import DEMO_CONFIG, randomize_

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
    x = Preprocessing("center_crop", (64,), "bicubic")(read_image(tmp_path / "x.jpg"))[None]
    with torch.no_grad():
        best = model.eval()(x)[0].argmax().item()
    assert lines[1].endswith(swinseg.data.imagenet_classes()[best])


def test_errors_are_one_line(tmp_path, capsys):
    assert main(["classify", "swin_tiny_patch4_window7_224", str(tmp_path / "missing.jpg")]) == 1
    assert capsys.readouterr().err.strip() == f"error: image {tmp_path / 'missing.jpg'} does not exist"
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    assert main(["classify", "swin_tiny_patch4_window7_224", str(tmp_path / "bad.jpg"), "--random-weights"]) == 1
    assert "cannot decode" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "nope.pth"), str(tmp_path / "out.pth")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_classify_a_registered_name_uses_its_published_weights(tmp_path, capsys, swinseg_home):
    """Without --checkpoint it answered from random weights, differently on every run."""
    import cv2

    from swinseg.weights import convert_checkpoint

    model = randomize_(swinseg.create_model("swin_tiny_patch4_window7_224")).eval()
    native = swinseg.save_checkpoint(model, tmp_path / "m.safetensors")
    (swinseg_home / "checkpoints").mkdir(parents=True)
    convert_checkpoint(native, swinseg_home / "checkpoints" / "swin_tiny_patch4_window7_224.pth", to="official")  # as downloaded
    cv2.imwrite(str(tmp_path / "x.jpg"), np.random.default_rng(0).integers(0, 256, (240, 300, 3), dtype=np.uint8))
    assert main(["classify", "swin_tiny_patch4_window7_224", str(tmp_path / "x.jpg"), "--topk", "1"]) == 0
    first = capsys.readouterr().out
    (probs,) = swinseg.predict.classify(model, [str(tmp_path / "x.jpg")])
    assert first.splitlines()[1].endswith(swinseg.data.imagenet_classes()[probs.argmax().item()])
    assert main(["classify", "swin_tiny_patch4_window7_224", str(tmp_path / "x.jpg"), "--topk", "1"]) == 0
    assert capsys.readouterr().out == first
    assert main(["classify", "swin_tiny_patch4_window7_224", str(tmp_path / "x.jpg"), "--random-weights"]) == 0
    assert "random weights (--random-weights): these predictions mean nothing" in capsys.readouterr().err


def test_classifier_preprocessing_follows_official_sizes():
    image = np.zeros((300, 400, 3), np.uint8)
    image[:, 200:] = 255
    x = swinseg.create_model("swin_tiny_patch4_window7_224").preprocessing(image)
    assert x.shape == (3, 224, 224)
    # short side 300 -> 256, long side int(256 * 400 / 300) = 341, crop starts at round((341 - 224) / 2) = 58
    # the white half starts at 341 / 2 = 170.5 in the resized image, i.e. column ~112.5 of the crop
    white = (x[0] > 0).float().mean(0)
    assert white[:110].sum() == 0 and white[116:].min() == 1


def test_demo_quick_runs_the_whole_loop(tmp_path, capsys):
    assert main(["demo", "--work-dir", str(tmp_path), "--quick"]) == 0
    out = capsys.readouterr().out
    assert "wrote a synthetic dataset (24 training, 6 validation images" in out
    for name in ("sky", "ground", "checker polygon", "mIoU"):
        assert name in out
    assert len(list((tmp_path / "overlays").glob("*.jpg"))) == 6
    assert (tmp_path / "train" / "iter_24.pth").is_file() and (tmp_path / "train" / "curves.png").is_file()
    assert len(list((tmp_path / "data/synthetic/annotations/training").glob("*.png"))) == 24


def test_train_test_check_data_config_and_plot(tmp_path, capsys):
    from swinseg.tools.synthetic import write_dataset
    from tests.helpers import DEMO_CONFIG, TINY_OVERRIDES

    root = write_dataset(tmp_path / "data", train=6, val=3, size=(48, 64))
    overrides = [f"data.root={root}", *TINY_OVERRIDES]
    work = tmp_path / "work"
    assert main(["train", DEMO_CONFIG, "--work-dir", str(work), "--set", *overrides]) == 0
    assert "Iter(train) [6/6]" in capsys.readouterr().out
    assert (
        main(
            [
                "test",
                DEMO_CONFIG,
                str(work / "iter_6.pth"),
                "--set",
                *overrides,
                "--show-dir",
                str(tmp_path / "show"),
                "--out",
                str(tmp_path / "metrics.json"),
                "--mode",
                "slide",
                "--crop",
                "32",
                "--stride",
                "21",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "aAcc" in out and "striped triangle" in out and "(slide)" in out
    assert len(list((tmp_path / "show").glob("*.jpg"))) == 3 and "mIoU" in (tmp_path / "metrics.json").read_text()
    assert main(["plot", str(work)]) == 0 and (work / "curves.png").stat().st_size > 0
    assert main(["check-data", DEMO_CONFIG, "--set", f"data.root={root}"]) == 0
    assert "no problems found" in capsys.readouterr().out
    bad = root / "annotations/training/synthetic_training_00001.png"
    cv2.imwrite(str(bad), np.full(cv2.imread(str(bad)).shape[:2], 9, np.uint8))
    assert main(["check-data", DEMO_CONFIG, "--set", f"data.root={root}"]) == 1
    captured = capsys.readouterr()
    assert "synthetic_training_00001.png has values 9 outside 0..7" in captured.out and "1 problem(s)" in captured.err
    assert main(["config", "--list"]) == 0 and DEMO_CONFIG in capsys.readouterr().out
    assert main(["config", DEMO_CONFIG, "--set", "train.amp=bf16"]) == 0 and "amp: bf16" in capsys.readouterr().out
    assert main(["config", DEMO_CONFIG, "--set", "train.amq=bf16"]) == 1
    assert "did you mean 'amp'" in capsys.readouterr().err


SEG = "swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512"
SEG_SMALL = dict(
    backbone=dict(embed_dims=16, depths=[2, 2, 2, 2], num_heads=[1, 2, 2, 4]),
    decode_head=dict(channels=16),
    auxiliary_head=dict(channels=8),
)


@pytest.fixture
def segmentor_files(tmp_path):
    """A small 150-class segmentor checkpoint and a folder of images of odd sizes (one grayscale)."""
    import cv2

    model = randomize_(swinseg.create_model(SEG, **SEG_SMALL)).eval()
    ckpt = swinseg.save_checkpoint(model, tmp_path / "seg.safetensors")
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    cv2.imwrite(str(folder / "a.jpg"), rng.integers(0, 256, (75, 101, 3), dtype=np.uint8))
    cv2.imwrite(str(folder / "sub" / "b.png"), rng.integers(0, 256, (40, 33), dtype=np.uint8))
    return model, ckpt, folder


def test_predict_writes_label_maps_and_overlays(tmp_path, capsys, segmentor_files):
    import cv2

    model, ckpt, folder = segmentor_files
    out = tmp_path / "out"
    assert main(["predict", str(ckpt), str(folder), "--out", str(out), "--batch-size", "2"]) == 0
    assert "segmented 2 of 2 images" in capsys.readouterr().out
    for rel, stem in (("a.jpg", "a"), ("sub/b.png", "b")):
        labels = cv2.imread(str(out / f"{stem}.png"), cv2.IMREAD_UNCHANGED)
        expected = predict(model, str(folder / rel))[0].numpy()
        assert labels.shape == expected.shape and np.array_equal(labels, expected)
        vis = cv2.imread(str(out / f"{stem}_overlay.jpg"))
        assert vis.shape[1] > labels.shape[1]  # the legend panel on the right


def test_predict_slide_mode_and_globs(tmp_path, segmentor_files):
    import cv2

    model, ckpt, folder = segmentor_files
    out = tmp_path / "out"
    args = ["predict", str(ckpt), str(folder / "*.jpg"), "--out", str(out), "--mode", "slide", "--crop", "256", "--stride", "171"]
    assert main(args) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "a_overlay.jpg"]
    model.test_cfg.update(crop_size=[256, 256], stride=[171, 171])
    expected = predict(model, str(folder / "a.jpg"), mode="slide")[0].numpy()
    assert np.array_equal(cv2.imread(str(out / "a.png"), cv2.IMREAD_UNCHANGED), expected)


def test_predict_reports_unreadable_images_and_goes_on(tmp_path, capsys, segmentor_files):
    _, ckpt, folder = segmentor_files
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    out = tmp_path / "out"
    assert main(["predict", str(ckpt), str(folder), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "broken.jpg" in err and err.strip().splitlines()[-1].startswith("error:")
    assert (out / "a.png").exists() and (out / "b.png").exists()


def test_predict_rejects_a_classifier_and_missing_inputs(tmp_path, capsys, segmentor_files):
    _, ckpt, folder = segmentor_files
    classifier = swinseg.save_checkpoint(SwinTransformer(**SMALL, num_classes=3), tmp_path / "cls.safetensors")
    assert main(["predict", str(classifier), str(folder), "--out", str(tmp_path / "o")]) == 1
    assert "not a segmentation model" in capsys.readouterr().err
    assert main(["predict", str(ckpt), str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")]) == 1
    assert "nowhere does not exist" in capsys.readouterr().err


def test_repeated_set_flags_all_apply(capsys):
    assert main(["config", DEMO_CONFIG, "--set", "train.seed=7", "--set", "train.amp=bf16"]) == 0
    out = capsys.readouterr().out
    assert "seed: 7" in out and "amp: bf16" in out
