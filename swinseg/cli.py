"""The ``swinseg`` command line: ``swinseg SUBCOMMAND --help`` for each."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from .ops.precision import DTYPES

__all__ = ["main"]


def _load_model(model: str, checkpoint: str | bool | None, published: bool = True, dtype: str = "fp32") -> torch.nn.Module:
    """A checkpoint file's model (its weights replaced by ``checkpoint`` when given), or a
    registered model with ``checkpoint``, else its published weights when ``published``; in
    eval mode, its weights in ``dtype``."""
    from .weights import load_checkpoint
    from .models.factory import create_model

    if not Path(model).exists():
        return create_model(model, pretrained=checkpoint or published, dtype=dtype).eval()
    net = create_model(model)
    if checkpoint:
        load_checkpoint(net, checkpoint)
    return net.to(DTYPES[dtype]).eval()


def _load_classifier(name: str, checkpoint: str | None, dtype: str) -> torch.nn.Module:
    model = _load_model(name, checkpoint, published=False, dtype=dtype)
    if getattr(model, "num_classes", 0) <= 0:
        raise ValueError(f"{name} is a backbone without a classification head")
    return model


def _top_classes(logits: torch.Tensor, k: int) -> list[tuple[str, float]]:
    from .data import imagenet_classes

    names = imagenet_classes() if logits.numel() == len(imagenet_classes()) else None
    probs = logits.float().softmax(-1)
    top = probs.topk(min(k, probs.numel()))
    return [(names[i] if names else f"class {i}", p) for p, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)]


def cmd_classify(args: argparse.Namespace) -> None:
    from .data import classification_input, read_image

    model = _load_classifier(args.model, args.checkpoint, args.dtype).to(args.device)
    size = args.size or model.config.get("pretrain_img_size", 224)
    for path in args.images:
        x = classification_input(read_image(path), size).unsqueeze(0).to(args.device, DTYPES[args.dtype])
        with torch.inference_mode():
            logits = model(x)[0]
        print(f"{path}:")
        for name, p in _top_classes(logits, args.topk):
            print(f"  {p:7.2%}  {name}")


def cmd_demo(args: argparse.Namespace) -> None:
    """Synthetic ADE20K-layout dataset -> train a small Swin-UPerNet -> evaluate -> overlays, curves."""
    from .configs import load_config
    from .engine.evaluate import evaluate
    from .engine.trainer import Trainer
    from .tools.plot import plot_curves
    from .tools.synthetic import write_dataset

    work = Path(args.work_dir)
    quick = ["schedule.max_iters=24", "schedule.warmup_iters=4", "train.log_interval=8", "train.val_interval=24",
             "train.checkpoint_interval=12", "data.num_workers=0"]
    train_images, val_images = (24, 6) if args.quick else (160, 40)
    start = time.perf_counter()
    root = write_dataset(work / "data" / "synthetic", train=train_images, val=val_images)
    print(f"wrote a synthetic dataset ({train_images} training, {val_images} validation images, ADE20K layout) to {root} "
          f"in {time.perf_counter() - start:.1f} s")
    config = load_config(DEMO_CONFIG, [f"data.root={root}", *(quick if args.quick else []), *(args.set or [])])
    trainer = Trainer(config, work / "train", resume="auto" if args.resume else None, device="cpu")
    start = time.perf_counter()
    trainer.train()
    print(f"trained in {time.perf_counter() - start:.0f} s")
    result = evaluate(trainer.model, trainer.val_set, show_dir=work / "overlays").compute()
    print(f"validation: mIoU {result['mIoU']:.2f}, aAcc {result['aAcc']:.2f} (per-class table above; "
          f"chance is about {100 / trainer.model.num_classes:.0f}% pixel accuracy)")
    print(f"overlays (prediction | ground truth): {work / 'overlays'}")
    try:
        print(f"training curves: {plot_curves(work / 'train')}")
    except ImportError as e:
        print(f"no training curves: {e}")


DEMO_CONFIG = "swin-mini-patch4-window7_upernet_1xb8-1k_synthetic-128x128"


def cmd_train(args: argparse.Namespace) -> None:
    from .configs import load_config
    from .engine.trainer import Trainer

    overrides = list(args.set or []) + ([f"train.amp={args.amp}"] if args.amp else [])
    config = load_config(args.config, overrides)
    work_dir = args.work_dir or Path("work_dirs") / Path(config["source"]).stem
    Trainer(config, work_dir, resume=args.resume, device=args.device).train()


def _config_model(config_name: str, overrides: list[str] | None, checkpoint: str | None, device: torch.device, dtype: str = "fp32") -> tuple:
    """``(config, segmentor on device in eval mode with its weights in dtype, load report or None)``."""
    from .weights import load_checkpoint
    from .configs import load_config
    from .engine.distributed import rank_zero_first
    from .engine.trainer import build_segmentor

    config = load_config(config_name, overrides)
    model = build_segmentor(config)
    report = None
    if checkpoint:
        with rank_zero_first():
            report = load_checkpoint(model, checkpoint)
    return config, model.to(device, DTYPES[dtype]).eval(), report


def _config_model_and_val(config_name: str, overrides: list[str] | None, checkpoint: str | None, device: torch.device, dtype: str = "fp32") -> tuple:
    """``(config, segmentor on device in eval mode, load report or None, validation dataset)``."""
    from .data.dataset import build_dataset

    config, model, report = _config_model(config_name, overrides, checkpoint, device, dtype)
    return config, model, report, build_dataset(config["data"], "val", model.num_classes, model.ignore_index)


def cmd_test(args: argparse.Namespace) -> None:
    import json

    from .engine.distributed import get_rank, init_distributed
    from .engine.evaluate import evaluate

    config, model, report, dataset = _config_model_and_val(args.config, args.set, args.checkpoint, init_distributed(args.device), args.dtype)
    if args.mode:
        model.test_cfg.update(mode=args.mode, crop_size=[args.crop, args.crop], stride=[args.stride, args.stride])
    if get_rank() == 0:
        print(f"loaded {args.checkpoint} ({report.format} layout); evaluating {len(dataset)} images "
              f"({model.test_cfg['mode']}{' + ms/flip TTA' if args.tta else ''})")
    metric = evaluate(model, dataset, tta=args.tta or config["test"]["tta"], show_dir=args.show_dir)
    if get_rank() == 0:
        print(metric.table())
        if args.out:
            Path(args.out).write_text(json.dumps(metric.compute(), indent=1))


def cmd_config(args: argparse.Namespace) -> None:
    from .configs import dump_config, list_configs, load_config

    if args.list or not args.name:
        print("\n".join(list_configs()))
        return
    from .models import resolve_config

    print(dump_config(resolve_config(load_config(args.name, args.set))), end="")


def cmd_check_data(args: argparse.Namespace) -> None:
    from .configs import load_config
    from .tools.check_data import check_config

    reports, classes = check_config(load_config(args.config, args.set), args.workers, progress=sys.stderr.isatty())
    for report in reports:
        print("\n".join(report.lines(classes)))
    problems = sum(len(r.problems) for r in reports)
    if problems:
        raise ValueError(f"{problems} problem(s) found in the dataset (listed above)")
    print("no problems found")


def cmd_benchmark(args: argparse.Namespace) -> None:
    from .tools import benchmark as bench

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if args.threads:
        torch.set_num_threads(args.threads)
    target = bench.Target(device, torch.bfloat16 if args.bf16 else None, args.compile, DTYPES[args.dtype])
    if args.config:
        _benchmark_config(args, target)
        return
    unknown = [c for c in args.cases if c not in bench.CASES]
    if unknown:
        raise ValueError(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(bench.CASES)}")
    peaks = {"fp32": bench.matmul_peak(device), "bf16": bench.matmul_peak(device, torch.bfloat16)}
    env = bench.environment(device)
    print(f"{env}\nmatrix-multiply peak: fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} GFLOP/s")
    ours = None
    if args.bf16_ours or args.ours_dtype:
        ours = bench.Target(device, torch.bfloat16 if args.bf16_ours else target.dtype, args.compile, DTYPES[args.ours_dtype or args.dtype])
    results = bench.run_cases(args.cases, target, args.warmup, args.rounds, args.memory, ours=ours)
    low = args.bf16 or args.bf16_ours or "bf16" in (args.dtype, args.ours_dtype)
    print(bench.format_table(results, peaks["bf16" if low else "fp32"]))
    if args.out:
        settings = {"bf16": args.bf16, "bf16_ours": args.bf16_ours, "dtype": args.dtype, "ours_dtype": args.ours_dtype, "compile": args.compile,
                    "rounds": args.rounds, "warmup": args.warmup, "cases": args.cases}
        bench.write_json(args.out, results, device, peaks, settings)
        print(f"wrote {args.out}")


def _benchmark_config(args: argparse.Namespace, target: Any) -> None:
    """MMSegmentation-style FPS of a config's model on its validation images."""
    from .tools.benchmark import dataset_fps

    config, model, _, dataset = _config_model_and_val(args.config, args.set, args.checkpoint, target.device, args.dtype)
    if target.compile:
        model.inference = torch.compile(model.inference, dynamic=True)
    print(f"{Path(config['source']).stem}: {args.images} passes over {len(dataset)} validation images "
          f"(the first {args.warmup} untimed) on {target.device}")
    dataset_fps(model, dataset, target, args.images, args.warmup)


def cmd_flops(args: argparse.Namespace) -> None:
    from .configs import load_config
    from .engine.trainer import build_segmentor
    from .models.zoo import list_models
    from .tools.benchmark import count_flops

    if args.config in list_models() and "upernet" not in args.config:
        from .models.factory import create_model

        model = create_model(args.config)
    else:
        model = build_segmentor(load_config(args.config, args.set))
    model.eval()
    x = torch.randn(1, 3, *args.shape)
    with torch.inference_mode():
        total, per_op = count_flops(lambda: model(x))
    params = sum(p.numel() for p in model.parameters())
    print(f"input 1x3x{args.shape[0]}x{args.shape[1]}: {params / 1e6:.2f}M parameters, {total / 2e9:.1f} GMACs "
          f"(the papers' \"GFLOPs\"), {total / 1e9:.1f} GFLOPs counting a multiply-add as 2")
    for op, n in sorted(per_op.items(), key=lambda kv: -kv[1]):
        print(f"  {op:<44} {n / 2e9:9.2f} GMACs")


def cmd_plot(args: argparse.Namespace) -> None:
    from .tools.plot import plot_curves

    print(f"wrote {plot_curves(args.work_dir, args.out)}")


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def expand_inputs(inputs: Sequence[str]) -> list[Path]:
    """Image files from files, folders (searched recursively) and glob patterns, in a stable order."""
    import glob

    out: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            out += sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        elif path.is_file():
            out.append(path)
        elif glob.has_magic(item):
            out += sorted(Path(p) for p in glob.glob(item, recursive=True) if Path(p).is_file())
        else:
            raise FileNotFoundError(f"input {item} does not exist")
    if not out:
        raise FileNotFoundError(f"no images found in {', '.join(inputs)}")
    return out


def _load_segmentor(model: str, checkpoint: str | bool | None, device: str, dtype: str) -> torch.nn.Module:
    from .models.segmentor import EncoderDecoder

    net = _load_model(model, checkpoint, dtype=dtype)
    if not isinstance(net, EncoderDecoder):
        raise ValueError(f"{model} is not a segmentation model (see swinseg models '*upernet*')")
    return net.to(device)


def cmd_predict(args: argparse.Namespace) -> None:
    import cv2
    import numpy as np
    from tqdm import tqdm

    from .data import read_image
    from .visualize import overlay

    if not 0.0 <= args.opacity <= 1.0:
        raise ValueError(f"--opacity must lie in [0, 1], got {args.opacity}")
    if min(args.crop, args.stride, args.batch_size) <= 0:
        raise ValueError("--crop, --stride and --batch-size must be positive")
    images = expand_inputs(args.inputs)
    model = _load_segmentor(args.model, args.checkpoint, args.device, args.dtype)
    if args.mode:
        model.test_cfg.update(mode=args.mode, crop_size=[args.crop, args.crop], stride=[args.stride, args.stride])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    classes, palette = model.dataset_meta["classes"], model.dataset_meta["palette"]
    stems: dict[str, int] = {}
    failed: list[str] = []
    counts = np.zeros(model.num_classes, np.int64)
    start = time.perf_counter()
    progress = tqdm(total=len(images), desc="predict", unit="img", disable=not sys.stderr.isatty())
    for i in range(0, len(images), args.batch_size):
        batch = images[i : i + args.batch_size]
        progress.update(len(batch))
        readable, rgbs = [], []
        for path in batch:
            try:
                rgbs.append(read_image(path))
                readable.append(path)
            except (ValueError, FileNotFoundError) as e:
                failed.append(str(path))
                progress.write(f"error: {e}", file=sys.stderr)
        labels = model.predict(rgbs, tta=args.tta, batch_size=args.batch_size) if rgbs else []
        for path, rgb, label in zip(readable, rgbs, labels, strict=True):
            ids = label.numpy().astype(np.uint8 if model.num_classes <= 256 else np.uint16)
            stem = path.stem if path.stem not in stems else f"{path.stem}_{stems[path.stem]}"
            stems[path.stem] = stems.get(path.stem, 0) + 1
            cv2.imwrite(str(out / f"{stem}.png"), ids)
            vis = overlay(rgb, ids, classes, palette, args.opacity)
            cv2.imwrite(str(out / f"{stem}_overlay.jpg"), cv2.cvtColor(vis, cv2.COLOR_RGB2BGR))
            counts += np.bincount(ids.ravel(), minlength=model.num_classes)[: model.num_classes]
    progress.close()
    elapsed = time.perf_counter() - start
    done = len(images) - len(failed)
    top = [f"{classes[c]} {counts[c] / max(counts.sum(), 1):.1%}" for c in np.argsort(-counts)[:5] if counts[c]]
    print(f"segmented {done} of {len(images)} images in {elapsed:.1f} s ({elapsed / max(done, 1):.2f} s/image) -> {out}")
    if top:
        print(f"most frequent classes: {', '.join(top)}")
    if failed:
        raise ValueError(f"{len(failed)} image(s) could not be read: {', '.join(failed)}")


def cmd_convert(args: argparse.Namespace) -> None:
    from .weights import convert_checkpoint

    fmt, dest = convert_checkpoint(args.src, args.dst, to=args.to)
    print(f"converted {args.src} ({fmt} layout) -> {dest} ({args.to} layout)")


def _load_for_export(model: str, checkpoint: str | None, overrides: list[str] | None) -> torch.nn.Module:
    """A config (shipped name or YAML file) with ``checkpoint``, or :func:`_load_model`'s model."""
    from .configs import find_config

    is_config = model.endswith((".yaml", ".yml"))
    if not is_config and not Path(model).exists():
        try:
            find_config(model)
            is_config = True
        except FileNotFoundError:
            pass
    if is_config:
        if not checkpoint:
            raise ValueError(f"exporting config {model} needs a CHECKPOINT with its trained weights")
        return _config_model(model, overrides, checkpoint, torch.device("cpu"))[1]
    return _load_model(model, checkpoint)


def cmd_export(args: argparse.Namespace) -> None:
    from .models.segmentor import EncoderDecoder
    from .tools.export import compare_onnx, export_onnx

    model = _load_for_export(args.model, args.checkpoint, args.set)
    kind = "segmentor" if isinstance(model, EncoderDecoder) else "classifier"
    start = time.perf_counter()
    low, high = export_onnx(model, args.onnx, side=args.size, opset=args.opset)
    print(f"exported the {kind} to {args.onnx} in {time.perf_counter() - start:.0f} s (opset {args.opset}): input 'images' "
          f"(batch, 3, height, width) RGB 0..255, output 'logits'; height and width {low}..{high}")
    if args.no_check:
        return
    shapes = [(1, high, low), (2, low, high)] if high - low < 256 else [(1, 301, 397), (2, 160, 241)]
    diffs = compare_onnx(args.onnx, model, shapes)
    worst = max(diffs)
    report = ", ".join(f"{b}x{h}x{w}: {d:.1e}" for (b, h, w), d in zip(shapes, diffs, strict=True))
    if worst > args.tolerance:
        raise ValueError(f"{args.onnx} disagrees with PyTorch: max |logits difference| {report} (tolerance {args.tolerance})")
    print(f"onnxruntime matches PyTorch, max |logits difference| {report}")


def cmd_models(args: argparse.Namespace) -> None:
    from .models.zoo import get_spec, list_models

    for name in list_models(args.pattern):
        spec = get_spec(name)
        print(f"{name:40s} {spec.meta.get('task', ''):15s} {spec.url or ''}")


def _add_set(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("--set", nargs="+", metavar="KEY=VALUE", help=help)


def _add_dtype(parser: argparse.ArgumentParser, help: str = "weights and inputs in this dtype (default fp32); logits are resized in fp32") -> None:
    parser.add_argument("--dtype", choices=tuple(DTYPES), default="fp32", help=help)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .weights import FORMATS

    parser = argparse.ArgumentParser(prog="swinseg", description=__doc__)
    parser.add_argument("--version", action="version", version=f"swinseg {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "demo",
        help="the whole loop offline: synthetic dataset, train a small Swin-UPerNet (~5 min on CPU), evaluate, overlays",
    )
    p.add_argument("--work-dir", default="demo", help="where the dataset, checkpoints, logs and overlays go (default: demo)")
    p.add_argument("--quick", action="store_true", help="a few iterations on a few images (a smoke test, ~30 s)")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in the work dir")
    _add_set(p, "config overrides, e.g. schedule.max_iters=400")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("train", help="train a segmentor from a config (torchrun for several GPUs)")
    p.add_argument("config", help="config file or shipped config name (swinseg config --list)")
    p.add_argument("--work-dir", help="checkpoints and logs (default: work_dirs/<config name>)")
    p.add_argument("--resume", nargs="?", const="auto", help="resume from a checkpoint, or with no value the newest in the work dir")
    p.add_argument("--amp", choices=("bf16", "fp16"), help="mixed precision (fp16 uses a gradient scaler)")
    _add_set(p, "config overrides, e.g. data.batch_size=4 train.accumulate=2")
    p.add_argument("--device", help="cpu or cuda (default: cuda if available)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("test", help="evaluate a checkpoint on a config's validation split (mIoU)")
    p.add_argument("config", help="config file or shipped config name")
    p.add_argument("checkpoint", help="checkpoint: path or URL in any supported layout")
    p.add_argument("--tta", action="store_true", help="multi-scale (0.5-1.75) + flip test-time augmentation")
    p.add_argument("--mode", choices=("whole", "slide"), help="inference mode (default: the model's test_cfg)")
    p.add_argument("--crop", type=int, default=512, help="slide window size (default 512)")
    p.add_argument("--stride", type=int, default=341, help="slide stride (default 341)")
    p.add_argument("--show-dir", help="write prediction | ground truth overlays here")
    p.add_argument("--out", help="write the metrics as JSON here")
    _add_set(p, "config overrides, e.g. data.root=/data/ade")
    p.add_argument("--device", help="cpu or cuda (default: cuda if available)")
    _add_dtype(p)
    p.set_defaults(func=cmd_test)

    p = sub.add_parser("config", help="print a resolved config, or list the shipped ones")
    p.add_argument("name", nargs="?", help="config file or shipped config name")
    _add_set(p, "config overrides")
    p.add_argument("--list", action="store_true", help="list the shipped configs")
    p.set_defaults(func=cmd_config)

    p = sub.add_parser("check-data", help="scan a config's dataset: sizes, class frequencies, problems")
    p.add_argument("config", help="config file or shipped config name")
    _add_set(p, "config overrides, e.g. data.root=/data/ade")
    p.add_argument("--workers", type=int, default=4, help="reading threads (default 4)")
    p.set_defaults(func=cmd_check_data)

    p = sub.add_parser(
        "benchmark",
        help="time swinseg against the installed peers (timm, HF, the seed package), or a config's FPS",
        description="Without CONFIG: the side-by-side cases (BENCHMARKS.md). With CONFIG: images/s on its validation "
        "images as MMSegmentation's benchmark tool measures them.",
    )
    p.add_argument("config", nargs="?", help="config whose validation images to time (MMSegmentation-style FPS)")
    p.add_argument("--checkpoint", help="with CONFIG: weights to load (random otherwise; speed does not depend on them)")
    p.add_argument("--images", type=int, default=200, help="with CONFIG: images timed (default 200, as MMSegmentation)")
    _add_set(p, "with CONFIG: config overrides, e.g. data.root=...")
    p.add_argument("--cases", nargs="+", default=["classify-b1", "classify-b8", "segment-512", "train", "scale-448", "scale-1792"],
                   help="cases to run (see swinseg/tools/benchmark.py CASES)")
    p.add_argument("--device", help="cpu or cuda (default: cuda if available)")
    _add_dtype(p, "weights and inputs of every implementation in this dtype (default fp32)")
    p.add_argument("--ours-dtype", choices=tuple(DTYPES), help="swinseg's weights and inputs in this dtype, the peers' as --dtype")
    p.add_argument("--threads", type=int, help="CPU threads (default: torch's)")
    bf16 = p.add_mutually_exclusive_group()
    bf16.add_argument("--bf16", action="store_true", help="bf16 autocast")
    bf16.add_argument("--bf16-ours", action="store_true", help="bf16 autocast for swinseg only, the peers in fp32")
    p.add_argument("--compile", action="store_true", help="torch.compile every model (for each case's fixed size)")
    p.add_argument("--rounds", type=int, default=5, help="timed interleaved rounds (default 5)")
    p.add_argument("--warmup", type=int, default=5, help="untimed calls per implementation first (default 5)")
    p.add_argument("--memory", action="store_true", help="also measure peak memory, each in a fresh process")
    p.add_argument("--out", help="write the results as JSON here")
    p.set_defaults(func=cmd_benchmark)

    p = sub.add_parser("flops", help="parameters and FLOPs of a config's model (or a registered classifier)")
    p.add_argument("config", help="config file, shipped config name, or a registered classifier name")
    p.add_argument("--shape", nargs=2, type=int, default=[512, 2048], metavar=("H", "W"), help="input size (default 512 2048)")
    _add_set(p, "config overrides")
    p.set_defaults(func=cmd_flops)

    p = sub.add_parser("plot", help="draw a work dir's loss, lr and mIoU curves to PNG")
    p.add_argument("work_dir", help="training work directory (with scalars.jsonl)")
    p.add_argument("--out", help="PNG path (default: WORK_DIR/curves.png)")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("classify", help="classify images with a named model or a checkpoint file")
    p.add_argument("model", help="registered model name (swinseg models) or checkpoint file")
    p.add_argument("images", nargs="+", type=Path)
    p.add_argument("--checkpoint", help="weights (path or URL, any supported layout); 'true' for the model's own")
    p.add_argument("--size", type=int, help="input size (default: the model's pre-training size)")
    p.add_argument("--topk", type=int, default=5)
    p.add_argument("--device", default="cpu")
    _add_dtype(p)
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser(
        "predict",
        help="segment images: label maps (PNG, class ids) and colour overlays with a legend",
        description="Segment images, folders or glob patterns with a registered segmentor (its model-zoo weights "
        "unless --checkpoint is given) or a checkpoint file. Writes DIR/<name>.png (0-based class ids) and "
        "DIR/<name>_overlay.jpg per image.",
    )
    p.add_argument("model", metavar="MODEL_OR_CHECKPOINT", help="registered segmentor name or checkpoint file")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or glob patterns")
    p.add_argument("--checkpoint", help="weights: path or URL in any supported layout")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--tta", action="store_true", help="multi-scale (0.5-1.75) + flip test-time augmentation")
    p.add_argument("--mode", choices=("whole", "slide"), help="inference mode (default: the model's test_cfg)")
    p.add_argument("--crop", type=int, default=512, help="slide window size (default 512)")
    p.add_argument("--stride", type=int, default=341, help="slide stride (default 341)")
    p.add_argument("--opacity", type=float, default=0.5, help="overlay opacity in [0, 1] (default 0.5)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    _add_dtype(p)
    p.add_argument("--batch-size", type=int, default=1, help="images per forward pass (same-size inputs)")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser(
        "convert",
        help="convert a Swin checkpoint between layouts",
        description="Convert a Swin checkpoint (official, MMSegmentation, timm, HF transformers or native; "
        "detected) into another layout. --to mmseg does what MMSegmentation's swin2mmseg.py does.",
    )
    p.add_argument("src", help="source checkpoint: file, HF model directory or URL")
    p.add_argument("dst", help="destination file (.safetensors or .pth)")
    p.add_argument("--to", choices=FORMATS, default="native", help="target layout (default: native)")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser(
        "export",
        help="export a segmentor or classifier to ONNX with dynamic batch, height and width",
        description="Export to ONNX (opset >= 17) and check it with onnxruntime against PyTorch at two other sizes. "
        "The graph takes RGB images in 0..255, (batch, 3, height, width) float32, normalizes them and returns "
        "logits: a segmentor's whole-image (batch, classes, height, width), a classifier's (batch, classes).",
    )
    p.add_argument("model", metavar="CONFIG_OR_MODEL", help="config (name or YAML), registered model name or checkpoint file")
    p.add_argument("checkpoint", nargs="?", help="weights for a config or a registered name (path or URL)")
    p.add_argument("--onnx", required=True, metavar="FILE", help="output .onnx file")
    p.add_argument("--size", type=int, help="classifier: the image side it is exported for (default: its pretraining size)")
    p.add_argument("--opset", type=int, default=18, choices=range(17, 24), metavar="17..23", help="ONNX opset (default 18)")
    p.add_argument("--tolerance", type=float, default=1e-4, help="max |logits difference| accepted by the check (default 1e-4)")
    p.add_argument("--no-check", action="store_true", help="skip the onnxruntime comparison")
    _add_set(p, "config overrides")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("models", help="list the registered models and their weights")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'swin_base*'")
    p.set_defaults(func=cmd_models)
    return parser


_EXPECTED = (OSError, ValueError, KeyError, TypeError, RuntimeError, ImportError, FloatingPointError)


def _one_line(error: BaseException) -> str:
    """The message of ``error``; for one re-raised from a DataLoader worker, its original last line."""
    message = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
    if "Original Traceback" in message:
        last = message.strip().splitlines()[-1]
        message = last.split(": ", 1)[1] if ": " in last else last
    if not isinstance(error, _EXPECTED):
        message = f"{type(error).__name__}: {message} (set SWINSEG_DEBUG=1 for the traceback)"
    return message


def main(argv: Sequence[str] | None = None) -> int:
    """Run a subcommand; errors print one line (the traceback with ``SWINSEG_DEBUG=1``) and return 1."""
    import os

    args = build_parser().parse_args(argv)
    if getattr(args, "checkpoint", None) == "true":
        args.checkpoint = True
    try:
        args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if os.environ.get("SWINSEG_DEBUG"):
            raise
        print(f"error: {_one_line(e)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
