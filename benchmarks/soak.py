"""Soak: memory (RSS) and open file descriptors of one long ``swinseg predict`` over generated
images of mixed sizes, and of one long ``swinseg train`` of the demo config with validation.
Each command runs as it would for a user, in its own process; this script samples that
process's ``/proc/<pid>`` ten times a second and maps each sample to the run's progress (outputs
written, iterations logged). Growth compares the median RSS of a window after warm-up with that
of a window near the end, each taken at the same point of the work's cycle: for predict, 40-50%
against 90-100% of the images (the allocator keeps growing its pools for new image sizes through
the first few hundred); for training, which validates at 25, 50, 75 and 100% of the run,
30-40% against 80-90% (after the first and third validations). Descriptors compare the most ever
open after warm-up with the warm-up median.

    python benchmarks/soak.py --images 2000 --iters 2000 --out benchmarks/soak-cpu.json
    python benchmarks/soak.py --quick     # 200 images, 200 iterations (CI)
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from swinseg.configs import load_config
from swinseg.models import build_segmentor, resolve_config
from swinseg.ops import machine_info
from swinseg.tools.demo import DEMO_CONFIG
from swinseg.tools.synthetic import write_dataset
from swinseg.weights import save_checkpoint

_PERIOD_S = 0.1


def _rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _fds(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def watch(
    command: list[str], progress: Callable[[], float], env: dict[str, str], warm: tuple[float, float], late: tuple[float, float]
) -> dict:
    """Run ``command``; sample its RSS and descriptors with ``progress()`` (0..1) until it ends."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    samples = []
    while proc.poll() is None:
        rss, fds = _rss_mb(proc.pid), _fds(proc.pid)
        if rss is not None and fds is not None:
            samples.append((progress(), rss, fds))
        time.sleep(_PERIOD_S)
    stderr = proc.stderr.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])} ... failed:\n{stderr[-3000:]}")
    return {"seconds": round(time.perf_counter() - started, 1), **growth(samples, warm, late)}


def growth(
    samples: list[tuple[float, float, int]], warm_window: tuple[float, float] = (0.1, 0.2), late_window: tuple[float, float] = (0.9, 1.0)
) -> dict:
    """From ``(progress, rss_mb, fds)`` samples: RSS growth from the median in ``warm_window`` to
    the median in ``late_window`` (fractions of the run); descriptor growth from the warm-up
    median to the most ever open after warm-up."""
    warm = [s for s in samples if warm_window[0] <= s[0] <= warm_window[1]]
    late = [s for s in samples if late_window[0] <= s[0] <= late_window[1]]
    after = [s for s in samples if s[0] >= warm_window[0]]
    if not warm or not late:
        raise RuntimeError(f"too few samples to measure growth ({len(samples)}); run longer")
    rss_warm, rss_late = statistics.median(s[1] for s in warm), statistics.median(s[1] for s in late)
    tenths = [[s[1] for s in samples if i / 10 <= s[0] < (i + 1) / 10 or (i == 9 and s[0] >= 1)] for i in range(10)]
    fds_warm = statistics.median(s[2] for s in warm)
    return {
        "samples": len(samples),
        "rss_warm_mb": round(rss_warm, 1),
        "rss_late_mb": round(rss_late, 1),
        "rss_peak_mb": round(max(s[1] for s in samples), 1),
        "rss_growth_pct": round(100 * (rss_late - rss_warm) / rss_warm, 2),
        "fds_warm": fds_warm,
        "fds_late": statistics.median(s[2] for s in late),
        "fds_max_after_warm_up": max(s[2] for s in after),
        "fds_growth": max(s[2] for s in after) - fds_warm,
        "rss_median_by_tenth_mb": [round(statistics.median(t), 1) if t else None for t in tenths],
    }


def soak_predict(folder: Path, images: int, env: dict[str, str]) -> dict:
    """``swinseg predict`` of a checkpoint of the demo architecture (random weights: the work
    does not depend on them) over ``images`` images, half around 192 x 256, half around 384 x 512."""
    model = build_segmentor(resolve_config(load_config(DEMO_CONFIG)))
    checkpoint = save_checkpoint(model, folder / "model.safetensors")
    small = write_dataset(folder / "small", train=0, val=images // 2, size=(192, 256), seed=1)
    large = write_dataset(folder / "large", train=0, val=images - images // 2, size=(384, 512), seed=2)
    out = folder / "predictions"
    files = [sorted((root / "images" / "validation").iterdir()) for root in (small, large)]
    inputs = [str(f) for pair in itertools.zip_longest(*files) for f in pair if f is not None]  # sizes alternate

    def progress() -> float:
        return sum(1 for _ in out.glob("*_overlay.jpg")) / images if out.is_dir() else 0.0

    command = [sys.executable, "-m", "swinseg.cli", "predict", str(checkpoint), *inputs, "--out", str(out)]
    return watch(command, progress, env, warm=(0.4, 0.5), late=(0.9, 1.0))


def soak_train(folder: Path, iters: int, env: dict[str, str]) -> dict:
    """``swinseg train`` of the demo config for ``iters`` iterations, validating 4 times."""
    root = write_dataset(folder / "data")
    work = folder / "work"
    schedule = [
        f"schedule.max_iters={iters}",
        f"schedule.warmup_iters={min(50, iters // 4)}",
        f"train.val_interval={iters // 4}",
        f"train.checkpoint_interval={iters // 4}",
        f"train.log_interval={max(1, iters // 100)}",
    ]
    scalars = work / "scalars.jsonl"

    def progress() -> float:
        try:
            lines = scalars.read_text().splitlines()
        except OSError:
            return 0.0
        return max((json.loads(line)["iter"] for line in lines if line.strip()), default=0) / iters

    command = [sys.executable, "-m", "swinseg.cli", "train", DEMO_CONFIG, "--work-dir", str(work), "--set", f"data.root={root}"]
    return watch([*command, *schedule], progress, env, warm=(0.3, 0.4), late=(0.8, 0.9))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=2000)
    p.add_argument("--iters", type=int, default=2000)
    p.add_argument("--quick", action="store_true", help="200 images and 200 iterations (the CI run)")
    p.add_argument("--out", type=Path, help="JSON result file")
    p.add_argument("--only", choices=("predict", "train"), help="run one of the two")
    args = p.parse_args()
    images, iters = (200, 200) if args.quick else (args.images, args.iters)
    result: dict = {"machine": machine_info(), "torch": torch.__version__, "images": images, "iters": iters}
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "SWINSEG_HOME": str(Path(tmp) / "home")}
        if args.only != "train":
            result["predict"] = soak_predict(Path(tmp) / "predict", images, env)
        if args.only != "predict":
            result["train"] = soak_train(Path(tmp) / "train", iters, env)
    print(f"{'run':10} {'seconds':>8} {'RSS warm MB':>12} {'RSS late MB':>12} {'growth %':>9} {'fds warm':>9} {'fds max':>8}")
    for run in ("predict", "train"):
        if run not in result:
            continue
        r = result[run]
        print(
            f"{run:10} {r['seconds']:>8} {r['rss_warm_mb']:>12} {r['rss_late_mb']:>12} {r['rss_growth_pct']:>9} "
            f"{r['fds_warm']:>9} {r['fds_max_after_warm_up']:>8}"
        )
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
