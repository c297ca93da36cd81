"""The ``swinseg`` command line: ``swinseg SUBCOMMAND --help`` for each."""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

__all__ = ["main"]


def _load_classifier(name: str, checkpoint: str | None) -> torch.nn.Module:
    from .models.factory import create_model

    model = create_model(name, pretrained=checkpoint or False)
    if getattr(model, "num_classes", 0) <= 0:
        raise SystemExit(f"error: {name} is a backbone without a classification head")
    return model.eval()


def _top_classes(logits: torch.Tensor, k: int) -> list[tuple[str, float]]:
    from .data import imagenet_classes

    names = imagenet_classes() if logits.numel() == len(imagenet_classes()) else None
    probs = logits.float().softmax(-1)
    top = probs.topk(min(k, probs.numel()))
    return [(names[i] if names else f"class {i}", p) for p, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)]


def _classify(model: torch.nn.Module, images: Sequence[Path], size: int, topk: int, device: str) -> list[float]:
    from .data import classification_input, read_image

    times = []
    for path in images:
        x = classification_input(read_image(path), size).unsqueeze(0).to(device)
        start = time.perf_counter()
        with torch.inference_mode():
            logits = model(x)[0]
        times.append(time.perf_counter() - start)
        if topk:
            print(f"{path}:")
            for name, p in _top_classes(logits, topk):
                print(f"  {p:7.2%}  {name}")
    return times


def cmd_classify(args: argparse.Namespace) -> None:
    model = _load_classifier(args.model, args.checkpoint).to(args.device)
    size = args.size or model.config.get("pretrain_img_size", 224)
    _classify(model, args.images, size, args.topk, args.device)


def cmd_demo(args: argparse.Namespace) -> None:
    """Build Swin-T, write a checkpoint, load it back through the loader, classify an image."""
    import cv2
    import numpy as np

    from . import create_model, save_checkpoint

    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    name = "swin_tiny_patch4_window7_224"
    torch.manual_seed(0)
    start = time.perf_counter()
    model = create_model(name)
    built = time.perf_counter() - start
    ckpt = save_checkpoint(model, work / "swin_tiny_demo.safetensors")
    print(f"built {name} ({sum(p.numel() for p in model.parameters()):,} parameters) in {built:.2f} s; wrote {ckpt}")

    yy, xx = np.mgrid[0:300, 0:400]
    image = np.stack([(xx * 255 // 399), (yy * 255 // 299), ((xx // 50 + yy // 50) % 2) * 255], -1).astype(np.uint8)
    image_path = work / "demo.png"
    cv2.imwrite(str(image_path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))

    start = time.perf_counter()
    loaded = _load_classifier(str(ckpt), None)
    print(f"loaded {ckpt} through the checkpoint loader in {time.perf_counter() - start:.2f} s")
    _classify(loaded, [image_path], 224, args.topk, "cpu")
    times = _classify(loaded, [image_path] * args.repeat, 224, 0, "cpu")
    print(
        f"forward at 224x224, batch 1, {torch.get_num_threads()} threads: median {statistics.median(times) * 1000:.1f} ms "
        f"over {len(times)} runs (random weights: the classes are arbitrary)"
    )


def cmd_convert(args: argparse.Namespace) -> None:
    from .checkpoint import convert_checkpoint

    fmt, dest = convert_checkpoint(args.src, args.dst, to=args.to)
    print(f"converted {args.src} ({fmt} layout) -> {dest} ({args.to} layout)")


def cmd_models(args: argparse.Namespace) -> None:
    from .models.zoo import get_spec, list_models

    for name in list_models(args.pattern):
        spec = get_spec(name)
        print(f"{name:40s} {spec.meta.get('task', ''):15s} {spec.url or ''}")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .checkpoint import FORMATS

    parser = argparse.ArgumentParser(prog="swinseg", description=__doc__)
    parser.add_argument("--version", action="version", version=f"swinseg {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", help="build Swin-T, save and reload a checkpoint, classify an image, time it")
    p.add_argument("--work-dir", default="demo", help="where the checkpoint and image are written (default: demo)")
    p.add_argument("--topk", type=int, default=5)
    p.add_argument("--repeat", type=int, default=5, help="timed forward passes")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("classify", help="classify images with a named model or a checkpoint file")
    p.add_argument("model", help="registered model name (swinseg models) or checkpoint file")
    p.add_argument("images", nargs="+", type=Path)
    p.add_argument("--checkpoint", help="weights (path or URL, any supported layout); 'true' for the model's own")
    p.add_argument("--size", type=int, help="input size (default: the model's pre-training size)")
    p.add_argument("--topk", type=int, default=5)
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=cmd_classify)

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

    p = sub.add_parser("models", help="list the registered models and their weights")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'swin_base*'")
    p.set_defaults(func=cmd_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "checkpoint", None) == "true":
        args.checkpoint = True
    try:
        args.func(args)
    except (FileNotFoundError, ValueError, KeyError, ConnectionError, RuntimeError) as e:
        message = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"error: {message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
