"""The GPU check: what a user's first job on a GPU does, section by section, within 7.5 minutes.

    bash benchmarks/gpu_check.sh [OUT_DIR]        # on a CUDA machine (torch, timm, transformers, opencv)
    bash benchmarks/gpu_check.sh --dry-run        # the same sections on the CPU, tiny sizes (CI)

Sections, in order, each under its own deadline; ``gpu_check.json`` is rewritten after every
section, so a check cut short by ``timeout`` keeps what it finished:

1. ``parity``: logits against timm's and HF's models with shared random weights (fp32, TF32 off);
2. ``cpu_vs_device``: swinseg's CPU logits against its logits on the device (Swin-T UPerNet);
3. ``ddp``: a one-process group as ``torchrun`` makes it (NCCL + gloo), DDP with SyncBN, a
   training step, IoU counts all-reduced, a barrier;
4. ``train_cli``: ``swinseg train`` for 30 iterations on a synthetic dataset, killed after its
   first checkpoint, then ``--resume`` to the end;
5. ``predict_cli``: ``swinseg predict`` whole, slide, ``--tta`` and ``--confidence``;
6. ``precision``: Swin-T UPerNet training at batch 2, 512x512: peak memory in fp32 and bf16
   against MMSegmentation's 5.02 GB per GPU; fp16 with a GradScaler on one batch: the scale,
   the skipped steps (some, not all) and a falling loss;
7. ``speed``: as the published figures were measured: MMSegmentation's 21.06 FPS is whole
   inference of ADE20K val images resized into (2048, 512) (about 512 x 683), fp32, with
   pre- and post-processing (V100); the Swin paper's 755 img/s is Swin-T at batch 64, 224 (V100);
8. ``backends``: the torch backends behind ``--backend`` (eager fp32/bf16/fp16, ``compile`` bf16)
   through the whole predict path: first call (compile time), time per image, label agreement.

Imports only swinseg and the peers (no pytest, nothing from tests/).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import peers as bench
import torch
import torch.distributed as dist
from torch import nn

import swinseg
from swinseg import ops
from swinseg.engine.distributed import BACKENDS, wrap_ddp
from swinseg.engine.metrics import IoUMetric
from swinseg.engine.optim import build_optimizer
from swinseg.ops.tuning import synchronize
from swinseg.predict import PredictOptions, predict_outputs
from swinseg.runtimes import load_runtime
from swinseg.tools.demo import DEMO_CONFIG, TINY_MODEL
from swinseg.tools.synthetic import write_dataset

UPERNET_T = bench.UPERNET_T
CLASSIFIER = "swin_tiny_patch4_window7_224"
PUBLISHED = {"train_memory_gb": 5.02, "segment_fps": 21.06, "classify_b64_img_s": 755.0}
TOL = 1e-4
TOTAL_S = 450.0
# (section, seconds it may take on the GPU); the dry run gets the same deadlines
BUDGETS = {"parity": 45, "cpu_vs_device": 40, "ddp": 30, "train_cli": 90, "predict_cli": 50, "precision": 60, "speed": 45, "backends": 100}


class SectionTimeout(Exception):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise SectionTimeout("past its deadline")


@torch.no_grad()
def _randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights in every parameter and BatchNorm statistic (norm weights near 1)."""
    gen = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        noise = torch.randn(p.shape, generator=gen)
        p.copy_(1.0 + 0.1 * noise if p.ndim == 1 and "norm" in name and name.endswith("weight") else 0.05 * noise)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.running_mean.copy_(0.1 * torch.randn(module.running_mean.shape, generator=gen))
            module.running_var.copy_(0.5 + torch.rand(module.running_var.shape, generator=gen))
    return model


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.float().cpu() - b.float().cpu()).abs().max().item()


@torch.no_grad()
def parity(ctx: dict[str, Any]) -> dict[str, Any]:
    device, tmp = ctx["device"], ctx["tmp"]
    timm = bench._import_timm()
    from transformers import SwinConfig, SwinForImageClassification, UperNetConfig, UperNetForSemanticSegmentation

    out: dict[str, Any] = {}
    x = torch.randn(2, 3, 224, 224, device=device)
    if timm is not None:
        ref = _randomize(timm.create_model(CLASSIFIER)).eval()
        torch.save(ref.state_dict(), tmp / "timm.pth")
        ours = swinseg.create_model(CLASSIFIER, pretrained=tmp / "timm.pth").eval()
        out["timm_classifier"] = _max_diff(ours.to(device)(x), ref.to(device)(x))
    ref = _randomize(SwinForImageClassification(SwinConfig(num_labels=17))).eval()
    ref.save_pretrained(tmp / "hf-cls")
    ours = swinseg.create_model(CLASSIFIER, num_classes=17).eval()
    swinseg.load_checkpoint(ours, tmp / "hf-cls")
    out["hf_classifier"] = _max_diff(ours.to(device)(x), ref.to(device)(pixel_values=x).logits)
    backbone = SwinConfig(embed_dim=16, depths=[2, 2, 2, 2], num_heads=[1, 2, 2, 4], out_features=["stage1", "stage2", "stage3", "stage4"])
    config = UperNetConfig(backbone_config=backbone, hidden_size=24, auxiliary_in_channels=64, auxiliary_channels=8, num_labels=6)
    ref = _randomize(UperNetForSemanticSegmentation(config)).eval()
    ref.save_pretrained(tmp / "hf-upernet")
    ours = swinseg.create_model(tmp / "hf-upernet").eval()
    x = torch.randn(1, 3, *ctx["size"], device=device)
    out["hf_upernet"] = _max_diff(ours.to(device).encode_decode(x), ref.to(device)(pixel_values=x).logits)
    out["passed"] = all(v < TOL for v in out.values())
    return out


@torch.no_grad()
def cpu_vs_device(ctx: dict[str, Any]) -> dict[str, Any]:
    model = _randomize(swinseg.create_model(ctx["segmentor"])).eval()
    x = torch.randn(1, 3, *ctx["size"])
    on_cpu = model.inference(x)
    on_device = model.to(ctx["device"]).inference(x.to(ctx["device"])).cpu()
    diff = _max_diff(on_cpu, on_device)
    agree = (on_cpu.argmax(1) == on_device.argmax(1)).float().mean().item()
    return {"max_logit_diff": diff, "label_agreement": agree, "passed": diff < 10 * TOL}


def ddp(ctx: dict[str, Any]) -> dict[str, Any]:
    device = ctx["device"]
    dist.init_process_group(BACKENDS[device.type], store=dist.HashStore(), rank=0, world_size=1)
    try:
        model = swinseg.create_model(DEMO_CONFIG).to(device).train()
        if device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        net = wrap_ddp(model, device)
        optimizer = build_optimizer(model)
        x, y = torch.randn(2, 3, 64, 64, device=device), torch.randint(0, model.num_classes, (2, 64, 64), device=device)
        loss = sum(v for k, v in net(x, y).items() if "loss" in k)
        loss.backward()
        optimizer.step()
        metric = IoUMetric(model.num_classes)
        with torch.no_grad():
            metric.update(model.eval().inference(x).argmax(1)[0], y[0])
        metric.all_reduce()  # CPU counts in the group torchrun gets (plain NCCL refused them)
        dist.barrier()
        sync_bn = sum(isinstance(m, nn.SyncBatchNorm) for m in model.modules())
        return {
            "backend": BACKENDS[device.type],
            "loss": loss.item(),
            "sync_bn_layers": sync_bn,
            "mIoU": metric.compute()["mIoU"],
            "passed": True,
        }
    finally:
        dist.destroy_process_group()


def _swinseg(args: list[str], **kwargs: Any) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "swinseg.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs
    )


def _finish(proc: subprocess.Popen, what: str) -> str:
    output, _ = proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"{what} exited {proc.returncode}: {output.strip().splitlines()[-1:]}")
    return output


def train_cli(ctx: dict[str, Any]) -> dict[str, Any]:
    tmp, device = ctx["tmp"], ctx["device"]
    root = write_dataset(tmp / "data", train=16, val=4, size=(96, 128))
    work = tmp / "train"
    iters = 30
    args = ["train", DEMO_CONFIG, "--work-dir", str(work), "--device", device.type, "--set", f"data.root={root}"]
    args += [f"schedule.max_iters={iters}", "schedule.warmup_iters=5", "train.checkpoint_interval=10", "train.val_interval=30"]
    args += ["train.log_interval=5", "data.num_workers=2", *ctx["tiny"]]
    start = time.perf_counter()
    proc = _swinseg(args)
    killed_at = None
    while proc.poll() is None:
        if (work / "iter_10.pth").is_file():  # written atomically: complete once it is there
            proc.kill()
            killed_at = time.perf_counter() - start
            break
        time.sleep(0.1)
    proc.communicate()
    output = _finish(_swinseg([*args, "--resume"]), "swinseg train --resume")
    ctx["checkpoint"] = work / f"iter_{iters}.pth"
    resumed = next((line for line in output.splitlines() if line.startswith("resumed from")), None)
    val = [json.loads(line) for line in (work / "scalars.jsonl").read_text().splitlines() if '"val"' in line]
    return {
        "killed_after_s": killed_at,
        "resumed": resumed,
        "seconds": time.perf_counter() - start,
        "final_checkpoint": ctx["checkpoint"].is_file(),
        "val_mIoU": val[-1].get("mIoU") if val else None,
        "passed": ctx["checkpoint"].is_file() and resumed is not None and bool(val),
    }


def predict_cli(ctx: dict[str, Any]) -> dict[str, Any]:
    tmp, device = ctx["tmp"], ctx["device"]
    images = tmp / "data" / "images" / "validation"
    runs = {"whole": ["--mode", "whole"], "slide": ["--mode", "slide", "--crop", "64", "--stride", "48"], "tta": ["--tta"]}
    runs["confidence"] = ["--confidence", "--probs", "3"]
    out: dict[str, Any] = {}
    for name, extra in runs.items():
        dest = tmp / f"pred-{name}"
        start = time.perf_counter()
        _finish(_swinseg(["predict", str(ctx["checkpoint"]), str(images), "--out", str(dest), "--device", device.type, *extra]), name)
        files = sorted(p.name for p in dest.iterdir())
        out[name] = {"seconds": time.perf_counter() - start, "files": len(files)}
    stems = [p.stem for p in images.iterdir()]
    wanted = {n: [tmp / f"pred-{n}" / f"{s}.png" for s in stems] for n in runs}
    wanted["confidence"] += [tmp / "pred-confidence" / f"{s}_{kind}" for s in stems for kind in ("conf.png", "probs.npz")]
    out["passed"] = all(f.is_file() for files in wanted.values() for f in files)
    return out


def _train_step_memory(name: str, device: torch.device, size: int, dtype: torch.dtype | None, steps: int) -> dict[str, Any]:
    torch.manual_seed(0)
    model = swinseg.create_model(name).to(device).train()
    optimizer = build_optimizer(model)
    x, y = torch.randn(2, 3, size, size, device=device), torch.randint(0, model.num_classes, (2, size, size), device=device)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(steps):
        synchronize(device)
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = sum(v for k, v in model(x, y).items() if "loss" in k)
        loss.backward()
        optimizer.step()
        synchronize(device)
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return {"s_per_step": sum(times[1:]) / max(len(times) - 1, 1), "peak_memory_gb": peak}


def precision(ctx: dict[str, Any]) -> dict[str, Any]:
    device, size = ctx["device"], ctx["train_size"]
    out: dict[str, Any] = {}
    for mode, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
        out[mode] = _train_step_memory(ctx["segmentor"], device, size, dtype, 3)
        if out[mode]["peak_memory_gb"] is not None:
            out[mode]["vs_published_5.02GB"] = out[mode]["peak_memory_gb"] / PUBLISHED["train_memory_gb"]
    torch.manual_seed(0)
    model = swinseg.create_model(ctx["segmentor"]).to(device).train()
    optimizer = build_optimizer(model, lr=2e-4)
    scaler = torch.amp.GradScaler(device.type)
    x, y = torch.randn(2, 3, size, size, device=device), torch.randint(0, model.num_classes, (2, size, size), device=device)
    losses, scales, skipped = [], [], 0
    for _ in range(ctx["fp16_steps"]):
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.float16):
            loss = sum(v for k, v in model(x, y).items() if "loss" in k)
        scaler.scale(loss).backward()
        before = scaler.get_scale()
        scaler.step(optimizer)
        scaler.update()
        skipped += scaler.get_scale() < before  # the scaler halves the scale on a skipped step
        losses.append(loss.item())
        scales.append(scaler.get_scale())
    out["fp16"] = {"losses": losses, "scales": scales, "skipped_steps": int(skipped), "steps": len(losses)}
    out["passed"] = skipped < len(losses) and losses[-1] < losses[0] and all(np.isfinite(losses[-3:]))
    return out


@torch.no_grad()
def speed(ctx: dict[str, Any]) -> dict[str, Any]:
    device = ctx["device"]
    model = swinseg.create_model(ctx["segmentor"]).to(device).eval()
    rgb = np.random.default_rng(0).integers(0, 256, (*ctx["ade_size"], 3), dtype=np.uint8)
    out: dict[str, Any] = {}
    for label, tf32 in (("fp32", False), ("tf32", True)):
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
        times = _timed(lambda: swinseg.inference(model, rgb), device, ctx["rounds"])
        out[f"segment_{label}_fps"] = 1 / float(np.median(times))
        out[f"segment_{label}_vs_published"] = out[f"segment_{label}_fps"] / PUBLISHED["segment_fps"]
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    classifier = swinseg.create_model(CLASSIFIER).to(device).eval()
    x = torch.randn(ctx["classify_batch"], 3, 224, 224, device=device)
    times = _timed(lambda: classifier(x), device, ctx["rounds"])
    out["classify_fp32_img_s"] = ctx["classify_batch"] / float(np.median(times))
    out["classify_vs_published"] = out["classify_fp32_img_s"] / PUBLISHED["classify_b64_img_s"]
    out["input"] = f"{ctx['ade_size'][0]}x{ctx['ade_size'][1]} uint8 RGB -> labels (whole, keep-ratio into 2048x512, resize back, argmax)"
    out["passed"] = True
    return out


def _timed(fn: Callable[[], Any], device: torch.device, rounds: int) -> list[float]:
    fn()
    times = []
    for _ in range(rounds):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return times


@torch.no_grad()
def backends(ctx: dict[str, Any]) -> dict[str, Any]:
    """The torch backends through the whole predict path (swinseg.predict.predict_outputs) on one
    image: time per image and the share of pixels labelled as eager fp32 labels them. compile
    (bf16) only on the GPU (Inductor on a CPU takes minutes)."""
    device = ctx["device"]
    model = swinseg.create_model(ctx["segmentor"] if ctx["dry"] else UPERNET_T).to(device).eval()
    rgb = np.random.default_rng(0).integers(0, 256, (*ctx["ade_size"], 3), dtype=np.uint8)
    reference = predict_outputs(model, rgb)[0].labels
    runs = [("torch", None), ("torch", "bf16"), ("torch", "fp16")] + ([] if ctx["dry"] else [("compile", "bf16")])
    out: dict[str, Any] = {}
    for backend, dtype in runs:
        options = PredictOptions(backend=backend, dtype=dtype)
        runtime = load_runtime(model, options)
        start = time.perf_counter()
        labels = predict_outputs(runtime, rgb, options)[0].labels  # compile compiles here
        first = time.perf_counter() - start
        times = _timed(lambda runtime=runtime, options=options: predict_outputs(runtime, rgb, options), device, ctx["rounds"])
        out[f"{backend} {dtype or 'fp32'}"] = {
            "first_call_s": first,
            "s_per_image": float(np.median(times)),
            "labels_as_fp32": float((labels == reference).double().mean()),
        }
    out["passed"] = all(v["labels_as_fp32"] > 0.9 for v in out.values())
    return out


SECTIONS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "parity": parity,
    "cpu_vs_device": cpu_vs_device,
    "ddp": ddp,
    "train_cli": train_cli,
    "predict_cli": predict_cli,
    "precision": precision,
    "speed": speed,
    "backends": backends,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="folder for gpu_check.json")
    parser.add_argument("--dry-run", action="store_true", help="the same sections on the CPU with tiny sizes")
    args = parser.parse_args()
    started = time.perf_counter()
    device = torch.device("cpu" if args.dry_run else "cuda")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu_check: no CUDA device (use --dry-run on a CPU)")
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"machine": ops.machine_info(device), "dry_run": args.dry_run, "published_v100": PUBLISHED}
    print(json.dumps(report["machine"]), flush=True)
    dry = args.dry_run
    signal.signal(signal.SIGALRM, _alarm)

    def write() -> None:
        report["kernels"] = ops.choices()
        report["seconds"] = time.perf_counter() - started
        tmp_json = out / "gpu_check.json.part"
        tmp_json.write_text(json.dumps(report, indent=1, default=str))
        os.replace(tmp_json, out / "gpu_check.json")

    sections = SECTIONS
    with tempfile.TemporaryDirectory() as tmp:
        ctx = {
            "device": device,
            "dry": dry,
            "tmp": Path(tmp),
            "size": (64, 96) if dry else (512, 512),
            "train_size": 64 if dry else 512,
            "fp16_steps": 6 if dry else 16,
            "ade_size": (64, 86) if dry else (512, 683),
            "classify_batch": 2 if dry else 64,
            "rounds": 2 if dry else 10,
            "tiny": TINY_MODEL if dry else [],
            "segmentor": DEMO_CONFIG if dry else UPERNET_T,  # Swin-T UPerNet trains too slowly on a CPU
        }
        write()
        for name, section in sections.items():
            left = TOTAL_S - (time.perf_counter() - started)
            budget = min(BUDGETS.get(name, left), left)
            if budget < 5:
                report[name] = {"skipped": "out of time", "passed": False}
                write()
                continue
            signal.alarm(int(budget))
            t0 = time.perf_counter()
            try:
                report[name] = section(ctx)
            except Exception as e:  # a section that fails is recorded; the others still run
                report[name] = {"error": f"{type(e).__name__}: {e}", "passed": False}
            finally:
                signal.alarm(0)
            report[name]["seconds_section"] = time.perf_counter() - t0
            print(f"{name}: {json.dumps(report[name], default=str)}", flush=True)
            write()
    failed = [name for name in sections if not report.get(name, {}).get("passed", False)]
    write()
    print(f"{len(report['kernels'])} kernel choices recorded\nwrote {out / 'gpu_check.json'} in {report['seconds']:.0f} s")
    if failed:
        raise SystemExit(f"gpu_check failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
