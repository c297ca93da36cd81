"""Videos in, an overlaid video of the same size and frame rate out, frame label maps as predict gives them."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import swinseg
from swinseg.cli import main
from swinseg.predict import PredictOptions, predict
from swinseg.predict.video import predict_video

from ..helpers import tiny_segmentor


@pytest.fixture(scope="module")
def model():
    return tiny_segmentor(5)


def _write_clip(path, frames: int = 13, size=(96, 64), fps: float = 12.0) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    assert writer.isOpened()
    for i in range(frames):
        frame = np.full((size[1], size[0], 3), 40, np.uint8)
        frame[:, : 5 * i + 8] = (30, 200, 60)
        writer.write(frame)
    writer.release()


def _read_frames(path) -> list[np.ndarray]:
    capture, frames = cv2.VideoCapture(str(path)), []
    while True:
        ok, frame = capture.read()
        if not ok:
            return frames
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))


def test_video_keeps_size_and_rate_and_labels_every_frame(model, tmp_path):
    _write_clip(tmp_path / "clip.mp4")
    info = predict_video(model, tmp_path / "clip.mp4", tmp_path / "out", PredictOptions(batch_size=4), frame_labels=True)
    assert info["frames"] == 13 and info["frames_per_second"] > 0
    capture = cv2.VideoCapture(str(tmp_path / "out" / "clip_overlay.mp4"))
    assert capture.get(cv2.CAP_PROP_FPS) == 12.0 and capture.get(cv2.CAP_PROP_FRAME_COUNT) == 13
    assert (capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (96, 64)
    frames = _read_frames(tmp_path / "clip.mp4")
    for i, expected in enumerate(predict(model, frames)):
        saved = cv2.imread(str(tmp_path / "out" / "clip_labels" / f"{i:06d}.png"), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(saved, expected.numpy()), i
    assert not list((tmp_path / "out").glob(".*"))  # no partial file left behind


def test_predict_cli_takes_videos_and_refuses_corrupt_ones(model, tmp_path, capsys):
    checkpoint = swinseg.save_checkpoint(model, tmp_path / "m.safetensors")
    _write_clip(tmp_path / "clip.mp4", frames=5)
    assert main(["predict", str(checkpoint), str(tmp_path / "clip.mp4"), "--out", str(tmp_path / "out")]) == 0
    assert "segmented 5 frames" in capsys.readouterr().out and (tmp_path / "out" / "clip_overlay.mp4").is_file()
    (tmp_path / "bad.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    assert main(["predict", str(checkpoint), str(tmp_path / "bad.mp4"), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "bad.mp4" in err and ("cannot open video" in err or "no readable frames" in err)
    assert not (tmp_path / "out" / "bad_overlay.mp4").exists()


def test_video_frames_take_tta_confidence_and_probs_as_still_images_do(model, tmp_path):
    """--tta, --confidence and --probs changed nothing on a video (labels identical in 80/80
    frames, no files): each frame now gets what a still image of it gets."""
    from swinseg.predict import predict_outputs

    _write_clip(tmp_path / "clip.mp4", frames=3)
    checkpoint = swinseg.save_checkpoint(model, tmp_path / "m.safetensors")
    args = ["predict", str(checkpoint), str(tmp_path / "clip.mp4"), "--out", str(tmp_path / "out"), "--frame-labels"]
    assert main([*args, "--tta", "--confidence", "--probs", "2"]) == 0
    frames = _read_frames(tmp_path / "clip.mp4")
    expected = predict_outputs(model, frames, tta=True, confidence=True, topk=2)
    for i, e in enumerate(expected):
        labels = cv2.imread(str(tmp_path / "out" / "clip_labels" / f"{i:06d}.png"), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(labels, e.labels.numpy()), i
        conf = cv2.imread(str(tmp_path / "out" / "clip_labels" / f"{i:06d}_conf.png"), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(conf, (e.confidence * 255).round().numpy().astype(np.uint8)), i
        top = np.load(tmp_path / "out" / "clip_labels" / f"{i:06d}_probs.npz")
        assert np.array_equal(top["classes"][0], e.labels.numpy()) and top["probs"].shape == (2, 64, 96)
