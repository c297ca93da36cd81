"""Video throughput of ``swinseg predict clip.mp4``: frames per second, end to end (decode, segment,
overlay, encode), for a registered segmentor with random weights (speed does not depend on them),
on a clip written here. Prints a table and writes a JSON result beside it.

    python benchmarks/video_throughput.py --out benchmarks/video-cpu.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch

import swinseg
from swinseg.ops import machine_info
from swinseg.predict import PredictOptions
from swinseg.predict.video import predict_video


def write_clip(path: Path, frames: int, width: int, height: int, fps: float = 30.0) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    rng = np.random.default_rng(0)
    background = rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8)
    background = cv2.resize(background, (width, height), interpolation=cv2.INTER_CUBIC)
    for i in range(frames):
        frame = background.copy()
        cv2.circle(frame, (40 + 8 * i % width, height // 2), height // 5, (30, 200, 60), -1)
        writer.write(frame)
    writer.release()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512")
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--size", nargs=2, type=int, default=[640, 360], metavar=("W", "H"))
    p.add_argument("--batch-size", nargs="+", type=int, default=[1, 4])
    p.add_argument("--dtype", default="fp32")
    p.add_argument("--out", help="JSON result file")
    args = p.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = swinseg.create_model(args.model, dtype=args.dtype).to(device).eval()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.mp4"
        write_clip(clip, args.frames, *args.size)
        predict_video(model, clip, Path(tmp) / "warm", PredictOptions(batch_size=1), progress=False)  # kernel choices, caches
        for batch in args.batch_size:
            info = predict_video(model, clip, Path(tmp) / f"b{batch}", PredictOptions(batch_size=batch), progress=False)
            rows.append(
                {"batch_size": batch, "frames": info["frames"], "seconds": info["seconds"], "frames_per_second": info["frames_per_second"]}
            )
    print(f"{args.model} ({args.dtype}), {args.size[0]}x{args.size[1]} video, test scale {model.test_pipeline['scale']}, {device}")
    print(f"{'batch':>5} {'frames':>6} {'seconds':>8} {'frames/s':>9}")
    for r in rows:
        print(f"{r['batch_size']:>5} {r['frames']:>6} {r['seconds']:>8.1f} {r['frames_per_second']:>9.2f}")
    if args.out:
        Path(args.out).write_text(
            json.dumps(
                {
                    "environment": machine_info(torch.device(device)),
                    "model": args.model,
                    "dtype": args.dtype,
                    "size": args.size,
                    "results": rows,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
