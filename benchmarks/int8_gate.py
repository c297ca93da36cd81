"""The INT8 ship gate on a trained segmentor: OpenVINO int8, calibrated on the config's training
split, against torch fp32 on its validation split. The gate: at least 99.5% of pixels labelled as
fp32 labels them, and mIoU moved by at most 0.5.

    PYTHONPATH=. python benchmarks/int8_gate.py CONFIG CHECKPOINT [--out FILE]

The config file is also the calibration source, as written (so no overrides here).

e.g. after `swinseg demo --work-dir demo`:
    PYTHONPATH=. python benchmarks/int8_gate.py demo/train/config.yaml demo/train/iter_1000.pth \
        --out benchmarks/int8-gate-demo.json
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from swinseg import __version__
from swinseg.engine.evaluate import load_for_evaluation
from swinseg.engine.metrics import IoUMetric
from swinseg.ops import machine_info
from swinseg.predict import PredictOptions, predict
from swinseg.runtimes import load_runtime


def gate(config_name: str, checkpoint: str) -> dict:
    _, model, _, dataset = load_for_evaluation(config_name, None, checkpoint, torch.device("cpu"))
    start = time.perf_counter()
    int8 = load_runtime(model, PredictOptions(backend="openvino", dtype="int8", calibrate=str(config_name)))
    setup_s = time.perf_counter() - start  # the f32 export and the quantization
    metrics = {name: IoUMetric(dataset.num_classes, dataset.ignore_index, images=len(dataset)) for name in ("fp32", "int8")}
    same = total = 0
    for i in range(len(dataset)):
        image, label = dataset[i]
        label = torch.from_numpy(label.astype("int64"))
        fp32, low = predict(model, image)[0], predict(int8, image)[0]
        metrics["fp32"].update(fp32, label)
        metrics["int8"].update(low, label)
        same, total = same + int((fp32 == low).sum()), total + fp32.numel()
    scores = {name: {k: float(v) for k, v in m.compute().items() if k in ("aAcc", "mIoU")} for name, m in metrics.items()}
    moved = abs(scores["int8"]["mIoU"] - scores["fp32"]["mIoU"])
    return {
        "images": len(dataset),
        "pixels": total,
        "same_labels": same / total,
        "scores": scores,
        "miou_moved": moved,
        "passes": same / total >= 0.995 and moved <= 0.5,
        "setup_s": setup_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config")
    parser.add_argument("checkpoint")
    parser.add_argument("--out", help="also write the result here as JSON")
    args = parser.parse_args()
    import nncf
    import openvino

    report = {
        "machine": machine_info(),
        "versions": {"swinseg": __version__, "torch": torch.__version__, "openvino": openvino.__version__, "nncf": nncf.__version__},
        "gate": gate(args.config, args.checkpoint),
    }
    g = report["gate"]
    print(f"{g['images']} images, {g['pixels']:,} pixels: int8 labels {100 * g['same_labels']:.2f}% as fp32")
    print(f"mIoU fp32 {g['scores']['fp32']['mIoU']:.2f}, int8 {g['scores']['int8']['mIoU']:.2f} (moved {g['miou_moved']:.2f})")
    print("gate (>= 99.5% and <= 0.5 mIoU):", "passes" if g["passes"] else "FAILS")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
