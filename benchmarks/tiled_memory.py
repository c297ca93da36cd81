"""Peak memory of streamed slide inference on huge scenes (``swinseg predict --tiled``), each scene
in a fresh process: a registered 150-class segmentor (random weights: memory does not depend on
them), MMSegmentation's slide windows (crop 512, stride 341), 8-bit confidence. Prints a table and
writes a JSON result.

    python benchmarks/tiled_memory.py --scenes 1024x24000 --out benchmarks/tiled-memory-cpu.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from swinseg.ops import machine_info

ROOT = Path(__file__).resolve().parents[1]
CHILD = """
import json, resource, sys
import numpy as np, tifffile, torch
import swinseg
from swinseg.predict import PredictOptions
from swinseg.predict.tiled import predict_tiff

name, height, width, src, dst = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
def tiles():
    rng = np.random.default_rng(0)
    for top in range(0, height, 256):
        for left in range(0, width, 256):
            yield rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
tifffile.imwrite(src, tiles(), shape=(height, width, 3), dtype=np.uint8, tile=(256, 256), photometric="rgb", bigtiff=True)
torch.manual_seed(0)
model = swinseg.create_model(name).eval()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
info = predict_tiff(model, src, dst, PredictOptions(crop=512, stride=341, confidence=True), progress=False)
info.update(model_mb=before, peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, classes=model.num_classes)
print(json.dumps(info))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512")
    parser.add_argument("--scenes", nargs="+", default=["1024x24000"], help="HEIGHTxWIDTH of each scene")
    parser.add_argument("--out", required=True, help="the JSON result")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for scene in args.scenes:
            height, width = (int(v) for v in scene.split("x"))
            src, dst = Path(tmp) / "scene.tif", Path(tmp) / "labels.tif"
            run = subprocess.run(
                [sys.executable, "-c", CHILD, args.model, str(height), str(width), str(src), str(dst)],
                capture_output=True,
                text=True,
                cwd=ROOT,
            )
            if run.returncode:
                raise SystemExit(run.stderr[-2000:])
            rows.append({"scene": scene, **json.loads(run.stdout.strip().splitlines()[-1])})
            print(
                f"{scene:>12}  {rows[-1]['windows']:>5} windows  {rows[-1]['seconds']:7.0f} s  peak RSS {rows[-1]['peak_mb']:6.0f} MB",
                flush=True,
            )
    result = {"model": args.model, "crop": 512, "stride": 341, "machine": machine_info(), "rows": rows}
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
