"""The GPU check: parity on the device, training steps in three precisions, inference speed
beside HF and timm against published figures, and the kernels chosen there.

    bash benchmarks/gpu_check.sh [OUT_DIR]        # on a CUDA machine (< 8 minutes)
    bash benchmarks/gpu_check.sh --dry-run        # the same code path on the CPU, tiny sizes (CI)

Writes ``gpu_check.json`` (and the shell script ``gpu_check.log``) to OUT_DIR (default ``$OUT``).
Published figures: MMSegmentation's UPerNet Swin-T, 512x512, 5.02 GB training memory and 21.06
FPS whole inference at 512x2048 (V100); the Swin paper's 755 img/s for Swin-T at 224 (V100).
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import peers as bench
import torch

import swinseg
from swinseg import ops
from swinseg.engine.optim import build_optimizer
from swinseg.ops.tuning import synchronize
from tests.helpers import randomize_

UPERNET_T = bench.UPERNET_T
CLASSIFIER = "swin_tiny_patch4_window7_224"
PUBLISHED = {"train_memory_gb": 5.02, "segment_512x2048_fps": 21.06, "classify_b64_img_s": 755.0}
TOL = 1e-4
DEADLINE_S = 420.0


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.float() - b.float()).abs().max().item()


@torch.no_grad()
def parity(device: torch.device, size: tuple[int, int], tmp: Path) -> dict[str, Any]:
    """Max |logits difference| against timm's and HF's models with shared random weights, fp32
    (TF32 off)."""
    timm = bench._import_timm()  # with torchvision's operator schemas defined where its build cannot load them
    from transformers import SwinConfig, SwinForImageClassification

    from tests.models.test_upernet_reference import _hf_upernet as hf_upernet

    out: dict[str, Any] = {}
    ref = randomize_(timm.create_model(CLASSIFIER)).eval()
    torch.save(ref.state_dict(), tmp / "timm.pth")
    ours = swinseg.create_model(CLASSIFIER, pretrained=tmp / "timm.pth").eval()
    x = torch.randn(2, 3, 224, 224, device=device)
    out["timm_classifier"] = _max_diff(ours.to(device)(x), ref.to(device)(x))

    ref = randomize_(SwinForImageClassification(SwinConfig(num_labels=17))).eval()
    ref.save_pretrained(tmp / "hf-cls")
    ours = swinseg.create_model(CLASSIFIER, num_classes=17).eval()
    swinseg.load_checkpoint(ours, tmp / "hf-cls")
    out["hf_classifier"] = _max_diff(ours.to(device)(x), ref.to(device)(pixel_values=x).logits)

    ref = hf_upernet()  # the parity test's small UPerNet, random weights
    ref.save_pretrained(tmp / "hf-upernet")
    ours = swinseg.create_model(tmp / "hf-upernet").eval()
    x = torch.randn(1, 3, *size, device=device)
    out["hf_upernet"] = _max_diff(ours.to(device).encode_decode(x), ref.to(device)(pixel_values=x).logits)
    out["passed"] = all(v < TOL for v in out.values())
    return out


def train_steps(device: torch.device, size: int, steps: int) -> dict[str, Any]:
    """UPerNet Swin-T training steps at batch 2 in fp32, bf16 autocast and fp16 with a gradient
    scaler: losses, seconds per step (after the first) and peak memory."""
    out: dict[str, Any] = {}
    for mode, dtype in (("fp32", None), ("bf16", torch.bfloat16), ("fp16", torch.float16)):
        torch.manual_seed(0)
        model = swinseg.create_model(UPERNET_T).to(device).train()
        optimizer = build_optimizer(model)
        scaler = torch.amp.GradScaler(device.type, enabled=dtype is torch.float16)
        x = torch.randn(2, 3, size, size, device=device)
        labels = torch.randint(0, 150, (2, size, size), device=device)
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        losses, times = [], []
        for _ in range(steps):
            synchronize(device)
            start = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                loss = sum(v for k, v in model(x, labels).items() if "loss" in k)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            synchronize(device)
            times.append(time.perf_counter() - start)
            losses.append(loss.item())
        out[mode] = {
            "losses": losses,
            "finite": all(math.isfinite(v) for v in losses),
            "s_per_step": sum(times[1:]) / max(len(times) - 1, 1),
            "peak_memory_gb": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None,
        }
        del model, optimizer
    return out


def speed(device: torch.device, dry_run: bool, deadline: float) -> dict[str, Any]:
    """Classification img/s and whole-image segmentation FPS beside HF and timm: fp32, bf16
    weights, and ours compiled."""
    if dry_run:
        cases = {"classify": lambda: bench.classify_case(CLASSIFIER, 1, 224), "segment": lambda: bench.segment_case(64, 128)}
        warmup, rounds = 1, 1
    else:
        cases = {"classify": lambda: bench.classify_case(CLASSIFIER, 64, 224), "segment": lambda: bench.segment_case(512, 2048)}
        warmup, rounds = 3, 10
    targets = {
        "fp32": (bench.Target(device), None),
        "bf16": (bench.Target(device, weights=torch.bfloat16), None),
        "compiled": (bench.Target(device), bench.Target(device, compile=True)),
    }
    out: dict[str, Any] = {}
    for label, (target, ours) in targets.items():
        if time.perf_counter() > deadline:
            out[label] = "skipped: out of time"
            continue
        if dry_run and ours is not None:
            ours = None  # inductor's C++ build takes minutes on a CPU: the dry run checks the rest
        results = bench.run_cases(list(cases), target, warmup, rounds, ours=ours, cases=cases, log=lambda _: None)
        out[label] = [{"case": r.case, "impl": r.impl, "median_ms": 1000 * r.median, "per_s": r.images / r.median} for r in results]
        print(bench.format_table(results, None), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="folder for gpu_check.json")
    parser.add_argument("--dry-run", action="store_true", help="on the CPU with tiny sizes (the same code path)")
    args = parser.parse_args()
    started = time.perf_counter()
    device = torch.device("cpu" if args.dry_run else "cuda")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu_check: no CUDA device (use --dry-run on a CPU)")
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    report: dict[str, Any] = {"machine": ops.machine_info(device), "dry_run": args.dry_run, "published_v100": PUBLISHED}
    print(json.dumps(report["machine"]), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        report["parity"] = parity(device, (64, 96) if args.dry_run else (512, 512), Path(tmp))
    print("parity:", json.dumps(report["parity"]), flush=True)
    report["train"] = train_steps(device, 32 if args.dry_run else 512, 2 if args.dry_run else 4)
    print("train:", json.dumps(report["train"]), flush=True)
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True  # speed as users run it
    report["speed"] = speed(device, args.dry_run, started + DEADLINE_S)
    report["kernels"] = ops.choices()
    report["seconds"] = time.perf_counter() - started
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(report, indent=1))
    print(f"kernels: {json.dumps(report['kernels'])}\nwrote {out / 'gpu_check.json'} in {report['seconds']:.0f} s")
    failed = [
        k
        for k, ok in (("parity", report["parity"]["passed"]), *((f"train {m}", r["finite"]) for m, r in report["train"].items()))
        if not ok
    ]
    if failed:
        raise SystemExit(f"gpu_check failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
