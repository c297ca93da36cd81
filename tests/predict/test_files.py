"""Predict at dataset scale: two torchrun processes write the files one process writes, byte for
byte; --skip-existing continues an interrupted job; decoding in DataLoader workers changes nothing."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

import swinseg
from swinseg.cli import main

from ..helpers import tiny_segmentor

ROOT = Path(__file__).resolve().parents[2]


def _inputs(tmp_path) -> Path:
    folder = tmp_path / "images"
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate([(40, 60), (52, 48), (40, 60), (33, 71), (64, 64)]):
        sub = folder / ("b" if i == 4 else "a")
        sub.mkdir(parents=True, exist_ok=True)
        name = "same" if i in (1, 4) else f"img{i}"  # two inputs share a name: same_1 for the second
        cv2.imwrite(str(sub / f"{name}.png"), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    return folder


def _checkpoint(tmp_path) -> Path:
    return swinseg.save_checkpoint(tiny_segmentor(5), tmp_path / "m.safetensors")


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_two_processes_write_what_one_writes(tmp_path):
    folder, checkpoint = _inputs(tmp_path), _checkpoint(tmp_path)
    one = tmp_path / "one"
    assert main(["predict", str(checkpoint), str(folder), "--out", str(one), "--confidence", "--workers", "0"]) == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    two = tmp_path / "two"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", str(port), "-m", "swinseg.cli", "predict", str(checkpoint), str(folder), "--out", str(two),
               "--confidence", "--device", "cpu", "--workers", "1"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    expected = _files(one)
    assert len(expected) == 15 and {"same.png", "same_1.png", "same_1_conf.png"} <= set(expected)
    assert _files(two) == expected


def test_skip_existing_continues_an_interrupted_job(tmp_path, capsys):
    folder, checkpoint = _inputs(tmp_path), _checkpoint(tmp_path)
    out = tmp_path / "out"
    assert main(["predict", str(checkpoint), str(folder), "--out", str(out), "--workers", "2", "--batch-size", "2"]) == 0
    before = _files(out)
    kept = (out / "img0.png").stat().st_mtime_ns
    (out / "same_1_overlay.jpg").unlink()  # as if the job stopped before its last image
    capsys.readouterr()
    assert main(["predict", str(checkpoint), str(folder), "--out", str(out), "--skip-existing"]) == 0
    assert "segmented 1 of 1 images" in capsys.readouterr().out
    assert _files(out) == before and (out / "img0.png").stat().st_mtime_ns == kept


def test_crop_and_stride_take_effect_without_mode_and_are_refused_with_whole(tmp_path, capsys):
    """--crop/--stride without --mode gave the whole-mode labels: they now ask for slide windows."""
    from swinseg.predict import predict

    checkpoint, folder = _checkpoint(tmp_path), _inputs(tmp_path)
    model = tiny_segmentor(5)
    model.test_cfg.update(mode="slide", crop_size=[24, 24], stride=[16, 16])
    image = cv2.cvtColor(cv2.imread(str(folder / "a" / "img3.png")), cv2.COLOR_BGR2RGB)
    assert (
        main(["predict", str(checkpoint), str(folder / "a" / "img3.png"), "--out", str(tmp_path / "o"), "--crop", "24", "--stride", "16"])
        == 0
    )
    labels = cv2.imread(str(tmp_path / "o" / "img3.png"), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(labels, predict(model, image)[0].numpy())
    model.test_cfg.update(mode="whole")
    assert not np.array_equal(labels, predict(model, image)[0].numpy())  # the option changes the labels
    args = ["predict", str(checkpoint), str(folder), "--out", str(tmp_path / "w"), "--mode", "whole", "--crop", "24"]
    assert main(args) == 1
    assert "--crop and --stride set slide windows: they do nothing with --mode whole" in capsys.readouterr().err
    assert main(["predict", str(checkpoint), str(folder), "--out", str(tmp_path / "b"), "--confidence-bits", "16"]) == 1
    assert "--confidence-bits sets the depth of confidence maps: it needs --confidence" in capsys.readouterr().err


def test_options_a_streamed_tiff_cannot_take_are_refused_before_any_work(tmp_path, capsys):
    import tifffile

    checkpoint = _checkpoint(tmp_path)
    tifffile.imwrite(tmp_path / "scene.tif", np.zeros((64, 64, 3), np.uint8), tile=(32, 32), photometric="rgb")
    for option in (["--tta"], ["--probs", "2"]):
        args = ["predict", str(checkpoint), str(tmp_path / "scene.tif"), "--out", str(tmp_path / "o"), "--tiled", *option]
        assert main(args) == 1
        assert f"{option[0]} is not supported for {tmp_path / 'scene.tif'}, a TIFF streamed at native resolution" in capsys.readouterr().err
    assert not (tmp_path / "o" / "scene.tif").exists()


def test_an_ordinary_tiff_needs_no_extra_and_a_bad_input_never_stops_the_others(tmp_path, capsys, monkeypatch):
    """A 310x175 .tif failed with "large TIFF images need tifffile" on the default install, and a
    folder of JPEGs with one such .tif wrote nothing."""
    import builtins

    real_import = builtins.__import__

    def without_tifffile(name, *args, **kwargs):
        if name == "tifffile":
            raise ImportError("No module named 'tifffile'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_tifffile)
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(0)
    cv2.imwrite(str(folder / "a.jpg"), rng.integers(0, 256, (40, 60, 3), dtype=np.uint8))
    cv2.imwrite(str(folder / "small.tif"), rng.integers(0, 256, (175, 310, 3), dtype=np.uint8))
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    cv2.imwrite(str(folder / "z.jpg"), rng.integers(0, 256, (30, 50, 3), dtype=np.uint8))
    assert main(["predict", str(_checkpoint(tmp_path)), str(folder), "--out", str(tmp_path / "o")]) == 1
    assert sorted(p.name for p in (tmp_path / "o").glob("*.png")) == ["a.png", "small.png", "z.png"]
    err = capsys.readouterr().err
    assert "broken.png" in err and "1 input(s) failed" in err
    assert main(["predict", str(_checkpoint(tmp_path)), str(folder / "small.tif"), "--tiled", "--out", str(tmp_path / "t")]) == 1
    err = capsys.readouterr().err
    assert f"{folder / 'small.tif'}: TIFF scenes streamed at native resolution need tifffile" in err
