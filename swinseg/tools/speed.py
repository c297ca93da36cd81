"""What ``swinseg benchmark CONFIG`` and ``swinseg flops`` measure: a config's images per second
as MMSegmentation measures them, and FLOPs counted as the papers count them. (The side-by-side
comparison with the peers is a script outside the package: ``benchmarks/peers.py``.)"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..configs import load_config
from ..engine.evaluate import load_for_evaluation
from ..ops import forced
from ..ops.tuning import synchronize
from ..predict import PredictOptions, as_options, image_logits, input_placement, preprocess, upsampled_argmax
from ..runtimes import load_runtime

__all__ = ["config_fps", "count_flops", "dataset_fps", "flops_report"]


def count_flops(fn: Callable[[], Any]) -> tuple[float, dict[str, float]]:
    """FLOPs of one call (a multiply-add counts 2), in total and per operator, counted on the
    plain kernels as the papers count them: direct convolutions (not the Winograd products a CPU
    may run) and attention as two batched products; nothing is timed meanwhile."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, forced(tune=False, conv3x3="direct", attention="bmm", linear="aten"):
        fn()
    per_op = {str(op).split(".")[1] if "." in str(op) else str(op): float(n) for op, n in counter.get_flop_counts()["Global"].items()}
    return float(counter.get_total_flops()), per_op


def flops_report(model: nn.Module, height: int, width: int) -> str:
    """Parameters and multiply-adds of ``model`` on one (1, 3, height, width) input, in total and per operator."""
    x = torch.randn(1, 3, height, width)
    model.eval()
    with torch.inference_mode():
        total, per_op = count_flops(lambda: model(x))
    params = sum(p.numel() for p in model.parameters())
    lines = [
        f"input 1x3x{height}x{width}: {params / 1e6:.2f}M parameters, {total / 2e9:.1f} GMACs "
        f'(the papers\' "GFLOPs"), {total / 1e9:.1f} GFLOPs counting a multiply-add as 2'
    ]
    lines += [f"  {op:<44} {n / 2e9:9.2f} GMACs" for op, n in sorted(per_op.items(), key=lambda kv: -kv[1])]
    return "\n".join(lines)


def dataset_fps(
    model: Any,
    dataset: Any,
    options: PredictOptions | None = None,
    images: int = 200,
    warmup: int = 5,
    autocast: torch.dtype | None = None,
    log_interval: int = 50,
    log: Callable[[str], None] = print,
) -> float:
    """Images per second as MMSegmentation's ``tools/analysis_tools/benchmark.py`` measures them:
    validation images (cycled when fewer) through the test pipeline one by one, the first
    ``warmup`` untimed, each timed from the preprocessed input to the label map at the original
    size (:func:`~swinseg.predict.image_logits` by ``options``, resize back, argmax), with the
    device synchronized around it."""
    if images <= warmup:
        raise ValueError(f"images ({images}) must exceed warmup ({warmup})")
    options = as_options(options)
    device = input_placement(model)[0]
    if isinstance(model, nn.Module):
        model.eval()
    elapsed = 0.0
    for i in range(images):
        image, _ = dataset[i % len(dataset)]
        x = preprocess(model, image)
        synchronize(device)
        start = time.perf_counter()
        with torch.no_grad(), torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
            upsampled_argmax(image_logits(model, x, options)[0], image.shape[:2], model.align_corners)
        synchronize(device)
        if i >= warmup:
            elapsed += time.perf_counter() - start
            if (i + 1) % log_interval == 0:
                log(f"Done image [{i + 1:<3}/ {images}], fps: {(i + 1 - warmup) / elapsed:.2f} img / s")
    fps = (images - warmup) / elapsed
    log(f"Overall fps: {fps:.2f} img / s")
    return fps


def config_fps(
    config_name: str,
    overrides: list[str] | None,
    checkpoint: str | None,
    options: PredictOptions | None = None,
    *,
    device: str | None = None,
    autocast: torch.dtype | None = None,
    images: int = 200,
    warmup: int = 5,
) -> float:
    """``swinseg benchmark CONFIG``: :func:`dataset_fps` of the config's model (random weights
    unless ``checkpoint``; speed does not depend on them) on its validation images, by
    ``options`` (default: the config's ``test`` section), on the options' backend."""
    target = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    config = load_config(config_name, overrides)
    options = options or PredictOptions.from_config(config)
    config, model, _, dataset = load_for_evaluation(config, None, checkpoint, target, options.weights)
    model = load_runtime(model, options)
    print(
        f"{Path(config['source']).stem}: {images} passes over {len(dataset)} validation images (the first {warmup} untimed) "
        f"on {target}, backend {options.backend}"
    )
    return dataset_fps(model, dataset, options, images, warmup, autocast)
