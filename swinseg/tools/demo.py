"""The whole loop offline, on the embedded default: write a synthetic dataset in ADE20K's
layout, train a small Swin-UPerNet on it, evaluate, draw overlays and curves."""

from __future__ import annotations

import time
from pathlib import Path

from ..configs import load_config
from ..engine.evaluate import evaluate
from ..engine.trainer import Trainer
from .plot import plot_curves
from .synthetic import write_dataset

__all__ = ["DEMO_CONFIG", "TINY_MODEL", "run_demo"]

DEMO_CONFIG = "swin-mini-patch4-window7_upernet_1xb8-1k_synthetic-128x128"
# The demo config shrunk to a model a CPU trains in a fraction of a second per step (smoke runs:
# the tests, the GPU check's dry run).
TINY_MODEL = [
    "model.backbone.embed_dims=16",
    "model.backbone.depths=[1, 1, 1, 1]",
    "model.backbone.num_heads=[1, 1, 2, 2]",
    "model.decode_head.channels=16",
    "model.auxiliary_head.channels=8",
    "model.data_preprocessor.size=[32, 32]",
    "model.test_pipeline.scale=[128, 48]",
    "data.pipeline.crop_size=[32, 32]",
    "data.pipeline.scale=[128, 48]",
    "data.batch_size=2",
]
_QUICK = [
    "schedule.max_iters=24",
    "schedule.warmup_iters=4",
    "train.log_interval=8",
    "train.val_interval=24",
    "train.checkpoint_interval=12",
    "data.num_workers=0",
]


def run_demo(work_dir: str | Path, quick: bool = False, resume: bool = False, overrides: list[str] | None = None) -> dict:
    """Dataset in ``work_dir/data``, training in ``work_dir/train``, overlays in
    ``work_dir/overlays``; ``quick``: 24 iterations on 30 images (a smoke test). Returns the
    validation metrics."""
    work = Path(work_dir)
    train_images, val_images = (24, 6) if quick else (160, 40)
    start = time.perf_counter()
    root = write_dataset(work / "data" / "synthetic", train=train_images, val=val_images)
    print(
        f"wrote a synthetic dataset ({train_images} training, {val_images} validation images, ADE20K layout) to {root} "
        f"in {time.perf_counter() - start:.1f} s"
    )
    config = load_config(DEMO_CONFIG, [f"data.root={root}", *(_QUICK if quick else []), *(overrides or [])])
    trainer = Trainer(config, work / "train", resume="auto" if resume else None, device="cpu")
    start = time.perf_counter()
    trainer.train()
    print(f"trained in {time.perf_counter() - start:.0f} s")
    result = evaluate(trainer.model, trainer.val_set, show_dir=work / "overlays").compute()
    print(
        f"validation: mIoU {result['mIoU']:.2f}, aAcc {result['aAcc']:.2f} (per-class table above; "
        f"chance is about {100 / trainer.model.num_classes:.0f}% pixel accuracy)"
    )
    print(f"overlays (prediction | ground truth): {work / 'overlays'}")
    try:
        print(f"training curves: {plot_curves(work / 'train')}")
    except ImportError as e:
        print(f"no training curves: {e}")
    return result
