"""The backends side by side through the whole predict path (``swinseg.predict.predict_outputs``:
preprocess, logits, resize back, argmax) on one image, in interleaved rounds in one process:
torch eager fp32 / bf16, ``torch.compile`` fp32 / bf16, ONNX Runtime fp32, OpenVINO f32 / bf16 /
int8 (the ones this machine can run; int8 calibrated on ``--calibrate``, else on random images).
Time per image and the share of pixels labelled as torch fp32 labels them. A registered
segmentor with random weights (speed does not depend on them); graphs are exported into
SWINSEG_HOME once, outside the timing. Prints a table and writes a JSON result.

    python benchmarks/runtimes.py --size 512 683 --out benchmarks/runtimes-cpu.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

import swinseg
from swinseg.ops import machine_info
from swinseg.ops.tuning import interleaved_times
from swinseg.predict import PredictOptions, predict_outputs
from swinseg.runtimes import load_runtime

CANDIDATES = [
    ("torch", None),
    ("torch", "bf16"),
    ("compile", None),
    ("compile", "bf16"),
    ("onnxruntime", None),
    ("openvino", None),
    ("openvino", "bf16"),
    ("openvino", "int8"),
]


def _random_images(folder: Path, size: list[int], count: int) -> str:
    rng = np.random.default_rng(1)
    for i in range(count):
        cv2.imwrite(str(folder / f"{i}.png"), rng.integers(0, 256, (*size, 3), dtype=np.uint8))
    return str(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512")
    parser.add_argument("--size", type=int, nargs=2, default=[512, 683], metavar=("H", "W"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--skip", nargs="*", default=[], help="backends (compile) or backend:dtype (torch:bf16) to leave out")
    parser.add_argument("--emulated-bf16", action="store_true", help="time bf16 on a CPU without bf16 instructions too (minutes)")
    parser.add_argument("--calibrate", help="images or a config for int8 (default: 16 random images of --size)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = swinseg.create_model(args.model).eval()
    image = np.random.default_rng(0).integers(0, 256, (*args.size, 3), dtype=np.uint8)
    reference = predict_outputs(model, image)[0].labels
    runs, setup, agreement = {}, {}, {}
    native_bf16 = bool({"avx512_bf16", "amx_bf16"} & set(machine_info()["cpu"]["flags"]))
    calibrate = args.calibrate or _random_images(Path(tempfile.mkdtemp()), args.size, 16)
    for backend, dtype in CANDIDATES:
        name = f"{backend} {dtype or 'fp32'}"
        if backend in args.skip or f"{backend}:{dtype or 'fp32'}" in args.skip:
            continue
        if dtype == "bf16" and not (native_bf16 or args.emulated_bf16):
            print(f"{name}: not run here (the CPU has no bf16 instructions: it would be emulated; --emulated-bf16 times it)")
            continue
        options = PredictOptions(backend=backend, dtype=dtype, calibrate=calibrate if dtype == "int8" else None)
        start = time.perf_counter()
        try:
            runtime = load_runtime(model, options)
            labels = predict_outputs(runtime, image, options)[0].labels  # the first call compiles or warms up
        except (ImportError, ValueError) as e:
            print(f"{name}: not run here ({e})")
            continue
        setup[name] = time.perf_counter() - start
        agreement[name] = float((labels == reference).double().mean())
        runs[name] = lambda runtime=runtime, options=options: predict_outputs(runtime, image, options)
    times = interleaved_times(runs, torch.device("cpu"), warmup=1, rounds=args.rounds)
    medians = {name: statistics.median(t) for name, t in times.items()}
    base = medians["torch fp32"]
    print(f"{args.model}, 150 classes, one {args.size[0]}x{args.size[1]} image through predict_outputs, medians of {args.rounds} rounds")
    print(f"{'backend':>18} {'s/image':>8} {'vs torch fp32':>14} {'labels = fp32':>14} {'setup s':>8}")
    for name, median in medians.items():
        print(f"{name:>18} {median:8.3f} {base / median:13.2f}x {agreement[name]:13.4%} {setup[name]:8.0f}")
    result = {"model": args.model, "size": args.size, "times": times, "medians": medians, "agreement": agreement, "setup_s": setup}
    result["machine"] = machine_info(torch.device("cpu"))
    result["versions"] = {"torch": torch.__version__}
    for module in ("onnxruntime", "openvino", "nncf"):
        try:
            result["versions"][module] = __import__(module).__version__
        except ImportError:
            pass
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
