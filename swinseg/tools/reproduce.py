"""``swinseg test``: a checkpoint's metrics on its config's validation split, set beside the
model zoo's published mIoU when the config is a zoo entry's own, and, when they differ by more
than a tolerance, a doctor that checks the usual causes of a mIoU far from the published one."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import replace
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..configs import load_config
from ..configs.schema import plain
from ..data.dataset import SegDataset
from ..engine.distributed import get_rank, init_distributed
from ..engine.evaluate import evaluate, load_for_evaluation
from ..engine.metrics import METRICS, IoUMetric, check_metrics, config_metrics
from ..files import atomic_write, check_writable
from ..models.zoo import get_spec, list_models
from ..ops import machine_info
from ..predict import PredictOptions, input_placement, predict
from ..runtimes import load_runtime, runs_as
from ..runtimes.graphs import GRAPH_SUFFIXES, load_graph
from .label_doctor import diagnose, scan_labels
from .report import Report, write_report

__all__ = ["TOLERANCE", "doctor", "published", "test_checkpoint"]

TOLERANCE = 0.5  # mIoU points


def published(config: dict[str, Any], tta: bool) -> float | None:
    """The zoo's published mIoU (ms+flip with ``tta``) when ``config`` is the zoo entry's own
    (its file is named after its registered model), else None."""
    name = config["model"].get("name")
    if name not in list_models() or Path(config["source"]).stem != name:
        return None
    return get_spec(name).meta.get("mIoU_ms_flip" if tta else "mIoU")


def _check(ok: bool, what: str, detail: str) -> str:
    return f"  [{'ok' if ok else '!!'}] {what}: {detail}"


def _channel_order(model: Any, dataset: SegDataset, options: PredictOptions, images: int = 8) -> tuple[float, float]:
    """mIoU of the first ``images`` validation images read as stored (RGB) and with red and blue swapped."""
    scores = []
    for swap in (False, True):
        metric = IoUMetric(dataset.num_classes, dataset.ignore_index)
        for i in range(min(images, len(dataset))):
            image, label = dataset[i]
            prediction = predict(model, image[..., ::-1].copy() if swap else image, replace(options, tta=False))[0]
            metric.update(prediction, torch.from_numpy(label.astype(np.int64)))
        scores.append(metric.compute()["mIoU"])
    return scores[0], scores[1]


def doctor(config: dict[str, Any], model: Any, dataset: SegDataset, options: PredictOptions) -> list[str]:
    """The usual causes of a mIoU far from the published one, each checked where it can be."""
    spec = get_spec(config["model"]["name"])
    lines = []
    expected = {k: spec.config["test_cfg"][k] for k in ("mode", "crop_size", "stride")}
    actual = dict(zip(("mode", "crop_size", "stride"), options.windows(model.test_cfg), strict=True))
    if actual["mode"] == "whole":  # windows do not matter then
        actual.update(crop_size=list(expected["crop_size"]), stride=list(expected["stride"]))
    expected = {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in expected.items()}
    mode_detail = f"{actual['mode']}, crop {actual['crop_size']}, stride {actual['stride']}"
    lines.append(_check(actual == expected, "test mode", mode_detail + ("" if actual == expected else f"; the zoo used {expected}")))
    scale, zoo_scale = model.test_pipeline["scale"], spec.config["test_pipeline"]["scale"]
    same_scale = plain(scale) == plain(zoo_scale)  # a pair (list or tuple) or a factor
    lines.append(_check(same_scale, "test scale", f"{scale}" + ("" if same_scale else f"; the zoo used {zoo_scale}")))
    scan = scan_labels([ann for _, ann in dataset.samples], progress=False)
    findings = [
        f for f in diagnose(scan, None, dataset.num_classes, dataset.reduce_zero_label, dataset.ignore_index) if "never occur" not in f.text
    ]
    span = f"{scan.values.min()}..{scan.values.max()}" if scan.values.size else "none"
    detail = f"reduce_zero_label={dataset.reduce_zero_label}, stored values {span}"
    lines.append(_check(not findings, "labels", detail + "".join(f"; {f.text}" for f in findings)))
    same_classes = list(model.dataset_meta["classes"]) == list(dataset.classes)
    lines.append(
        _check(
            same_classes,
            "checkpoint classes",
            f"{model.num_classes} classes"
            + ("" if same_classes else "; the checkpoint names its classes differently from the dataset (another label order?)"),
        )
    )
    rgb, bgr = _channel_order(model, dataset, options)
    lines.append(
        _check(rgb >= bgr - 1.0, "channel order", f"mIoU on the first images {rgb:.2f} as read (RGB), {bgr:.2f} with red and blue swapped")
    )
    ann_dir = Path(dataset.ann_dir)
    stored_as_images = scan.colour_files > 0 or len(scan.values) > max(dataset.num_classes + 2, 64)
    lines.append(
        _check(
            not stored_as_images,
            "annotation folder",
            f"{ann_dir}" + ("; its files look like images, not class ids" if stored_as_images else ""),
        )
    )
    lines.append(
        "  not checked here: a checkpoint trained with another recipe, images re-encoded (JPEG quality), "
        f"the {'ms+flip ' if options.tta else 'single-scale '}number compared being the other one"
    )
    return lines


def test_checkpoint(
    config_name: str | Path,
    checkpoint: str,
    overrides: list[str] | None = None,
    options: PredictOptions | None = None,
    *,
    device: str | None = None,
    show_dir: str | Path | None = None,
    out: str | Path | None = None,
    tolerance: float = TOLERANCE,
    metrics: Sequence[str] | None = None,
    report: str | Path | None = None,
    worst: int = 12,
) -> dict:
    """``swinseg test``: evaluate by ``options`` (default: the config's ``test`` section) for
    ``metrics`` (default: the config's ``test.metrics``) in one process or under ``torchrun``;
    print the table, the published mIoU beside the measured one, and the doctor's checks when
    they differ by more than ``tolerance``; write the metrics as JSON to ``out`` and an HTML page
    (:mod:`swinseg.tools.report`, with the ``worst`` images) into ``report``."""
    started = time.perf_counter()
    if out:
        check_writable(Path(out).parent, "the folder of out")
    if report:
        check_writable(Path(report), "report dir")
    config = load_config(config_name, overrides)
    metrics = check_metrics(metrics) if metrics else config_metrics(config)
    options = options or PredictOptions.from_config(config)
    graph = Path(checkpoint).suffix in GRAPH_SUFFIXES
    config, model, load_report, dataset = load_for_evaluation(
        config, None, None if graph else checkpoint, init_distributed(device), "fp32" if graph else options.weights
    )
    model = load_graph(checkpoint, options) if graph else load_runtime(model, options)
    if model.num_classes != dataset.num_classes:
        raise ValueError(f"{checkpoint} predicts {model.num_classes} classes but the dataset has {dataset.num_classes}")
    mode = options.windows(model.test_cfg)[0]
    if get_rank() == 0:
        loaded = f"{model.backend} graph" if graph else f"{load_report.format} layout"
        print(f"loaded {checkpoint} ({loaded}); evaluating {len(dataset)} images ({mode}{' + ms/flip TTA' if options.tta else ''})")
    metric = evaluate(model, dataset, options, metrics=metrics, show_dir=show_dir)
    result = metric.compute()
    if get_rank() != 0:
        return result
    print(metric.table(result))
    notes = []
    zoo = published(config, options.tta)
    if zoo is not None:
        result["published_mIoU"] = zoo
        difference = result["mIoU"] - zoo
        notes.append(f"published mIoU{' (ms+flip)' if options.tta else ''} {zoo:.2f}, measured {result['mIoU']:.2f}: {difference:+.2f}")
        if abs(difference) > tolerance:
            notes.append(f"reproduction doctor (the difference is beyond {tolerance}):")
            notes += doctor(config, model, dataset, options)
    if notes:
        print("\n".join(notes))
    if out:
        atomic_write(Path(out), lambda tmp: tmp.write_text(json.dumps(result, indent=1)))
    if report:
        facts = _facts(config, checkpoint, model, options, len(dataset), time.perf_counter() - started)
        summary = area_summary(metric) | ({"published mIoU": zoo} if zoo is not None else {})
        page = Report(f"{Path(checkpoint).name} on {Path(config['source']).name}", summary, notes, facts)
        print(f"wrote {write_report(report, metric, page, model=model, dataset=dataset, options=options, worst=worst)}")
    return result


def area_summary(metric: IoUMetric) -> dict[str, float]:
    """Every summary value of MMSegmentation's metrics (aAcc, mIoU, mAcc, mDice, mFscore,
    mPrecision, mRecall) from ``metric``'s counts, whatever it was asked to compute."""
    every = IoUMetric(metric.num_classes, metric.ignore_index, metric.nan_to_num, metrics=METRICS, beta=metric.beta)
    every.areas = metric.areas
    return {k: v for k, v in every.compute().items() if k != "per_class"}


def _facts(config: dict[str, Any], checkpoint: str, model: Any, options: PredictOptions, images: int, seconds: float) -> dict[str, str]:
    """The run, in words, for the report."""
    mode, crop, stride = options.windows(model.test_cfg)
    machine = machine_info(input_placement(model)[0])
    where = machine["gpu"]["name"] if "gpu" in machine else f"{machine['cpu']['model']} ({machine['threads']} threads)"
    backend, precision = runs_as(model)
    return {
        "checkpoint": str(checkpoint),
        "config": str(config["source"]),
        "images": str(images),
        "inference": f"{mode}" + (f" (crop {crop}, stride {stride})" if mode == "slide" else "") + (", ms+flip TTA" if options.tta else ""),
        "backend": f"{backend}, {precision}",
        "machine": where,
        "versions": f"swinseg {version('swinseg')}, torch {torch.__version__}",
        "time": f"{seconds:.1f} s",
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
