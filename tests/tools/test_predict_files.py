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
