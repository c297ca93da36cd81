"""The ``swinseg`` command line: ``swinseg SUBCOMMAND --help`` for each. Each subcommand parses
its arguments and calls one library function."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from .ops.precision import DTYPES

__all__ = ["main"]


def _weights(text: str) -> str | bool:
    """A ``--checkpoint`` value: a path or URL, or ``true`` for the registered model's own weights."""
    return True if text.lower() == "true" else text


def _at_least(low: int) -> Any:
    """An argparse type: an integer of ``low`` or more."""

    def count(text: str) -> int:
        value = int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be {low} or more, got {value}")
        return value

    return count


def _load(model: Any, checkpoint: str | bool | None, device: str = "cpu", dtype: str = "fp32", published: bool = False) -> torch.nn.Module:
    """The model ``model`` names (:func:`swinseg.models.resolve`) in eval mode on ``device``:
    weights from ``checkpoint``, else a checkpoint's own, else (``published``) a registered
    model's published ones."""
    from .models import create_model, resolve

    source = resolve(model)
    pretrained = checkpoint if checkpoint is not None else (True if published and source.kind == "registered" else None)
    return create_model(source, pretrained=pretrained, dtype=dtype).to(device).eval()


def cmd_demo(args: argparse.Namespace) -> None:
    from .tools.demo import run_demo

    run_demo(args.work_dir, quick=args.quick, resume=args.resume, overrides=args.set)


def cmd_train(args: argparse.Namespace) -> None:
    from .configs import load_config
    from .engine.trainer import Trainer

    flags = ([f"train.amp={args.amp}"] if args.amp else []) + ([f"train.tf32={args.tf32 == 'on'}"] if args.tf32 else [])
    config = load_config(args.config, list(args.set or []) + flags)
    work_dir = args.work_dir or Path("work_dirs") / Path(config["source"]).stem
    Trainer(config, work_dir, resume=args.resume, device=args.device).train()


def cmd_test(args: argparse.Namespace) -> None:
    from .configs import load_config
    from .tools.reproduce import test_checkpoint

    options = _options(args, load_config(args.config, args.set))
    extra = {k: getattr(args, k) for k in ("device", "show_dir", "out", "tolerance", "metrics", "report", "worst")}
    test_checkpoint(args.config, args.checkpoint, args.set, options, **extra)


def cmd_config(args: argparse.Namespace) -> None:
    from .configs import dump_config, list_configs, load_config
    from .models import validated_config

    if args.list or not args.name:
        print("\n".join(list_configs()))
        return
    print(dump_config(validated_config(load_config(args.name, args.set))), end="")


def cmd_check_data(args: argparse.Namespace) -> None:
    from .configs import load_config
    from .tools.check_data import check_config

    reports, classes, findings = check_config(load_config(args.config, args.set), args.workers, progress=sys.stderr.isatty())
    for report in reports:
        print("\n".join(report.lines(classes)))
    print("\n".join(["[label setup]", *(line for f in findings for line in f.lines())]) if findings else "[label setup] no mistakes found")
    problems, setup = sum(len(r.problems) for r in reports), sum(f.severity == "problem" for f in findings)
    if problems or setup:
        raise ValueError(f"{problems} problem(s) found in the dataset files and {setup} in the label setup (listed above)")
    print("no problems found")


def cmd_benchmark(args: argparse.Namespace) -> None:
    from .configs import load_config
    from .tools.speed import config_fps

    if args.threads:
        torch.set_num_threads(args.threads)
    autocast = torch.bfloat16 if args.bf16 else None
    options = _options(args, load_config(args.config, args.set))
    extra = {k: getattr(args, k) for k in ("device", "images", "warmup")}
    config_fps(args.config, args.set, args.checkpoint, options, autocast=autocast, **extra)


def cmd_flops(args: argparse.Namespace) -> None:
    from .configs import load_config
    from .progress import working
    from .tools.speed import flops_report

    model = _load(load_config(args.model, args.set) if args.set else args.model, None)
    with working(f"counting the FLOPs of {args.model} at {args.shape[0]}x{args.shape[1]}"):
        report = flops_report(model, *args.shape)
    print(report)


def cmd_plot(args: argparse.Namespace) -> None:
    from .tools.plot import plot_curves

    print(f"wrote {plot_curves(args.work_dir, args.out)}")


def cmd_classify(args: argparse.Namespace) -> None:
    from .models import resolve
    from .predict import classify, top_classes

    missing = [str(p) for p in args.images if not p.is_file()]
    if missing:  # before any weights are fetched
        raise FileNotFoundError(f"image {missing[0]} does not exist" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    source = resolve(args.model)
    if source.kind == "config" and args.checkpoint is None and not args.random_weights:
        raise ValueError(f"classifying with config {args.model} needs --checkpoint with trained weights (or --random-weights)")
    if args.random_weights:
        print("warning: random weights (--random-weights): these predictions mean nothing", file=sys.stderr)
    model = _load(source, False if args.random_weights else args.checkpoint, args.device, args.dtype, published=True)
    for path in args.images:
        (probs,) = classify(model, [str(path)], size=args.size)
        print(f"{path}:")
        for name, p in top_classes(probs, args.topk):
            print(f"  {p:7.2%}  {name}")


def cmd_predict(args: argparse.Namespace) -> None:
    from .engine.distributed import init_distributed
    from .predict import is_segmentor
    from .predict.files import predict_files
    from .runtimes import load_runtime
    from .runtimes.graphs import GRAPH_SUFFIXES, load_graph

    options = _options(args, confidence=args.confidence, confidence_bits=args.confidence_bits, topk=args.probs, batch_size=args.batch_size)
    device = init_distributed(args.device)
    if Path(args.model).suffix in GRAPH_SUFFIXES:  # an exported graph: it describes itself
        model = load_graph(args.model, options)
    else:
        model = _load(args.model, args.checkpoint, device, options.weights, published=True)
    if not is_segmentor(model):
        raise ValueError(f"{args.model} is not a segmentation model (see swinseg models '*upernet*')")
    extra = {k: getattr(args, k) for k in ("opacity", "tiled", "frame_labels", "skip_existing", "workers")}
    try:
        predict_files(load_runtime(model, options), args.inputs, args.out, options, **extra)
    except ValueError as e:
        if str(e).split(" ", 1)[0] in FLAGS:  # an option the inputs cannot take
            raise ValueError(_flags(str(e))) from None
        raise


def cmd_serve(args: argparse.Namespace) -> None:
    from .predict import is_segmentor
    from .runtimes import load_runtime
    from .runtimes.graphs import GRAPH_SUFFIXES, load_graph
    from .serve import ServeSettings, serve

    options = _options(args)
    settings = ServeSettings(args.max_batch_size, args.max_delay_ms, args.max_body_mb, args.max_pixels, args.max_queue)

    def load() -> Any:
        if Path(args.model).suffix in GRAPH_SUFFIXES:
            return load_graph(args.model, options)
        model = _load(
            args.model, args.checkpoint, args.device or ("cuda" if torch.cuda.is_available() else "cpu"), options.weights, published=True
        )
        if not is_segmentor(model):
            raise ValueError(f"{args.model} is not a segmentation model (see swinseg models '*upernet*')")
        return load_runtime(model, options)

    serve(load, options, settings, host=args.host, port=args.port)


def cmd_publish(args: argparse.Namespace) -> None:
    from .weights import publish_checkpoint

    print(f"published {publish_checkpoint(args.src, args.dst, to=args.format)}")


def cmd_browse_data(args: argparse.Namespace) -> None:
    from .configs import load_config
    from .tools.browse import browse_dataset

    written = browse_dataset(load_config(args.config, args.set), args.out, count=args.n, split=args.split, progress=sys.stderr.isatty())
    print(f"wrote {len(written)} pictures to {args.out}")


def cmd_convert(args: argparse.Namespace) -> None:
    from .weights import convert_checkpoint

    fmt, dest = convert_checkpoint(args.src, args.dst, to=args.to)
    print(f"converted {args.src} ({fmt} layout) -> {dest} ({args.to} layout)")


def cmd_export(args: argparse.Namespace) -> None:
    from .configs import load_config
    from .models import resolve
    from .runtimes.export import export_and_check

    out = Path(args.out)
    if args.format and out.suffix != {"onnx": ".onnx", "openvino": ".xml"}[args.format]:
        raise ValueError(f"--format {args.format} writes a {'.onnx' if args.format == 'onnx' else '.xml'} file, not {out.name}")
    source = resolve(load_config(args.model, args.set) if args.set else args.model)
    if source.kind == "config" and not args.checkpoint:
        raise ValueError(f"exporting config {args.model} needs a CHECKPOINT with its trained weights")
    _options(args, backend="openvino")  # --dtype and --calibrate by the prediction options' rules
    model = _load(source, args.checkpoint, published=True)
    tolerance = None if args.no_check else args.tolerance
    export_and_check(model, out, side=args.size, opset=args.opset, tolerance=tolerance, calibrate=args.calibrate)


def cmd_models(args: argparse.Namespace) -> None:
    from .models.zoo import get_spec, list_models

    for name in list_models(args.pattern):
        spec = get_spec(name)
        print(f"{name:40s} {spec.meta.get('task', ''):15s} {spec.url or ''}")


def _add_set(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("--set", nargs="+", action="extend", metavar="KEY=VALUE", help=help + " (repeated --set flags all apply)")


def _add_device(parser: argparse.ArgumentParser, default: str | None = None, torchrun: bool = False) -> None:
    where = (
        f"default {default}" if default else "default: cuda if available" + ("; under torchrun, one device per process" if torchrun else "")
    )
    parser.add_argument("--device", default=default, help=f"cpu or cuda ({where})")


def _add_segmentor(parser: argparse.ArgumentParser, what: str = "registered segmentor name or checkpoint file") -> None:
    """MODEL_OR_CHECKPOINT and ``--checkpoint``, as predict and serve take them."""
    parser.add_argument("model", metavar="MODEL_OR_CHECKPOINT", help=what)
    parser.add_argument("--checkpoint", type=_weights, help="weights: path or URL in any supported layout")


def _add_dtype(
    parser: argparse.ArgumentParser, help: str = "weights and inputs in this dtype (default fp32); logits are resized in fp32"
) -> None:
    parser.add_argument("--dtype", choices=tuple(DTYPES), default="fp32", help=help)


CALIBRATE_HELP = "--dtype int8: a folder of images, or a config whose training images calibrate it"


def _add_predict_options(parser: argparse.ArgumentParser) -> None:
    """The flags of :class:`swinseg.predict.PredictOptions` that predict, test and benchmark share."""
    from .predict import BACKENDS, PRECISIONS

    parser.add_argument(
        "--mode", choices=("whole", "slide"), help="inference mode (default: the config's test.mode, else the model's test_cfg)"
    )
    for flag, what in (("--crop", "slide window size"), ("--stride", "slide stride")):
        parser.add_argument(flag, type=int, help=f"{what} (default: the model's test_cfg, 512 / 341 for the zoo); implies --mode slide")
    parser.add_argument("--tta", action="store_true", help="multi-scale (0.5-1.75) + flip test-time augmentation")
    parser.add_argument(
        "--backend", choices=BACKENDS, default="torch", help="what computes the logits (default torch; README 'Deploy' says which to pick)"
    )
    parser.add_argument(
        "--dtype",
        choices=[p for p in PRECISIONS if p],
        help="precision of the logits (default fp32; int8: --backend openvino, quantized by NNCF on --calibrate)",
    )
    parser.add_argument("--calibrate", metavar="IMAGES|CONFIG", help=CALIBRATE_HELP)


# library parameter -> the flag that sets it, for the errors the command line prints
FLAGS = {
    "confidence=True": "--confidence",
    "confidence_bits": "--confidence-bits",
    "batch_size": "--batch-size",
    "topk": "--probs",
    **{name: f"--{name}" for name in ("mode", "crop", "stride", "tta", "backend", "dtype", "calibrate", "tiled", "opacity", "workers")},
}


def _flags(message: str) -> str:
    """``message`` with the parameters of :data:`FLAGS` named by their flags (not inside paths or quotes)."""
    return re.sub(r"(?<![-\w'/.])(" + "|".join(map(re.escape, FLAGS)) + r")(?![\w'/.])", lambda m: FLAGS[m.group(1)], message)


def _options(args: argparse.Namespace, config: dict | None = None, **fields: Any) -> Any:
    """The one :class:`~swinseg.predict.PredictOptions` of a command, from its flags (over a
    config's ``test`` section when given); its errors name the flags."""
    from .predict import PredictOptions

    given = {k: getattr(args, k, None) for k in ("mode", "crop", "stride", "backend", "calibrate")}
    given |= {"tta": getattr(args, "tta", False) or None, "dtype": getattr(args, "dtype", None)}
    given |= fields
    try:
        if config is not None:
            return PredictOptions.from_config(config, **given)
        return PredictOptions(**{k: v for k, v in given.items() if v is not None})
    except ValueError as e:
        raise ValueError(_flags(str(e))) from None


def _args_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="the whole loop offline: synthetic dataset, train a small Swin-UPerNet (~5 min on CPU), evaluate, overlays",
    )
    p.add_argument("--work-dir", default="demo", help="where the dataset, checkpoints, logs and overlays go (default: demo)")
    p.add_argument("--quick", action="store_true", help="a few iterations on a few images (a smoke test, ~15 s)")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in the work dir")
    _add_set(p, "config overrides, e.g. schedule.max_iters=400")
    p.set_defaults(func=cmd_demo)


def _args_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a segmentor from a config (torchrun for several GPUs)")
    p.add_argument("config", help="config file or shipped config name (swinseg config --list)")
    p.add_argument("--work-dir", help="checkpoints and logs (default: work_dirs/<config name>)")
    p.add_argument("--resume", nargs="?", const="auto", help="resume from a checkpoint, or with no value the newest in the work dir")
    p.add_argument("--amp", choices=("bf16", "fp16"), help="mixed precision (fp16 uses a gradient scaler)")
    p.add_argument("--tf32", choices=("on", "off"), help="TF32 matmuls and convolutions on NVIDIA GPUs (default: PyTorch's)")
    _add_set(p, "config overrides, e.g. data.batch_size=4 train.accumulate=2")
    _add_device(p)
    p.set_defaults(func=cmd_train)


def _args_test(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("test", help="evaluate a checkpoint on a config's validation split (mIoU)")
    p.add_argument("config", help="config file or shipped config name")
    p.add_argument("checkpoint", help="checkpoint: path or URL in any supported layout")
    _add_predict_options(p)
    p.add_argument("--show-dir", help="write prediction | ground truth overlays here")
    p.add_argument("--out", help="write the metrics as JSON here")
    p.add_argument(
        "--metrics",
        nargs="+",
        choices=("mIoU", "mDice", "mFscore"),
        help="MMSegmentation's iou_metrics (default: the config's test.metrics)",
    )
    p.add_argument("--report", metavar="DIR", help="write an HTML report here: per-class table, confusion matrix, worst images")
    p.add_argument("--worst", type=_at_least(0), default=12, metavar="K", help="images the report shows, lowest mIoU first (default 12)")
    p.add_argument(
        "--tolerance", type=float, default=0.5, help="mIoU points from the published number beyond which the doctor runs (default 0.5)"
    )
    _add_set(p, "config overrides, e.g. data.root=/data/ade")
    _add_device(p)
    p.set_defaults(func=cmd_test)


def _args_config(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("config", help="print a resolved config, or list the shipped ones")
    p.add_argument("name", nargs="?", help="config file or shipped config name")
    _add_set(p, "config overrides")
    p.add_argument("--list", action="store_true", help="list the shipped configs")
    p.set_defaults(func=cmd_config)


def _args_check_data(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check-data", help="scan a config's dataset: sizes, class frequencies, problems")
    p.add_argument("config", help="config file or shipped config name")
    _add_set(p, "config overrides, e.g. data.root=/data/ade")
    p.add_argument("--workers", type=int, default=4, help="reading threads (default 4)")
    p.set_defaults(func=cmd_check_data)


def _args_benchmark(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "benchmark",
        help="a config's images per second on its validation images, as MMSegmentation measures them",
        description="Images/s of a config's model on its validation images, each timed from the preprocessed input to "
        "the label map at the original size (MMSegmentation's tools/analysis_tools/benchmark.py). The side-by-side "
        "comparison with timm, HF and the seed package is benchmarks/peers.py.",
    )
    p.add_argument("config", help="config whose validation images to time")
    p.add_argument("--checkpoint", help="weights to load (random otherwise; speed does not depend on them)")
    p.add_argument("--images", type=int, default=200, help="images timed (default 200, as MMSegmentation)")
    p.add_argument("--warmup", type=int, default=5, help="untimed images first (default 5)")
    _add_set(p, "config overrides, e.g. data.root=...")
    _add_device(p)
    _add_predict_options(p)
    p.add_argument("--bf16", action="store_true", help="bf16 autocast")
    p.add_argument("--threads", type=int, help="CPU threads (default: torch's)")
    p.set_defaults(func=cmd_benchmark)


def _args_flops(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("flops", help="parameters and FLOPs of a model (registered name, config or checkpoint)")
    p.add_argument("model", metavar="MODEL", help="registered name, config (name or YAML) or checkpoint file")
    p.add_argument("--shape", nargs=2, type=int, default=[512, 2048], metavar=("H", "W"), help="input size (default 512 2048)")
    _add_set(p, "config overrides")
    p.set_defaults(func=cmd_flops)


def _args_plot(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plot", help="draw a work dir's loss, lr and mIoU curves to PNG")
    p.add_argument("work_dir", help="training work directory (with scalars.jsonl)")
    p.add_argument("--out", help="PNG path (default: WORK_DIR/curves.png)")
    p.set_defaults(func=cmd_plot)


def _args_classify(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("classify", help="classify images with a named model or a checkpoint file")
    p.add_argument("model", help="registered model name (swinseg models) or checkpoint file")
    p.add_argument("images", nargs="+", type=Path)
    p.add_argument(
        "--checkpoint", type=_weights, help="weights (path or URL, any supported layout; default: a registered model's published ones)"
    )
    p.add_argument("--random-weights", action="store_true", help="classify with untrained weights (a smoke test; the answers mean nothing)")
    p.add_argument("--size", type=int, help="input size (default: the model's pre-training size)")
    p.add_argument("--topk", type=int, default=5)
    _add_device(p, default="cpu")
    _add_dtype(p)
    p.set_defaults(func=cmd_classify)


def _args_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="segment images: label maps (PNG, class ids) and colour overlays with a legend",
        description="Segment images, videos, folders or glob patterns with a registered segmentor (its model-zoo weights "
        "unless --checkpoint is given), a config with --checkpoint, or a checkpoint file. Writes DIR/<name>.png (0-based "
        "class ids) and DIR/<name>_overlay.jpg per image; DIR/<name>_overlay.mp4 per video; DIR/<name>.tif for TIFF "
        "scenes over 8192 x 8192 pixels, streamed at native resolution.",
    )
    _add_segmentor(p)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or glob patterns")
    p.add_argument("--out", required=True, help="output directory")
    _add_predict_options(p)
    p.add_argument("--opacity", type=float, default=0.5, help="overlay opacity in [0, 1] (default 0.5)")
    _add_device(p, torchrun=True)
    p.add_argument("--batch-size", type=int, default=1, help="images decoded and written together (each is computed on its own)")
    p.add_argument("--confidence", action="store_true", help="also write <name>_conf.png: the predicted class's probability")
    p.add_argument("--confidence-bits", type=int, choices=(8, 16), help="with --confidence: PNG depth, 0..255 or 0..65535 (default 8)")
    p.add_argument(
        "--probs", type=int, default=0, metavar="K", help="also write <name>_probs.npz: the K most probable classes and their probabilities"
    )
    p.add_argument("--tiled", action="store_true", help="stream every TIFF at native resolution (default: those over 8192 x 8192)")
    p.add_argument("--skip-existing", action="store_true", help="skip inputs whose outputs exist (continue an interrupted job)")
    p.add_argument("--workers", type=int, default=2, help="image-decoding processes beside the model (default 2; 0: none)")
    p.add_argument("--frame-labels", action="store_true", help="videos: also write every frame's label map to <name>_labels/")
    p.set_defaults(func=cmd_predict)


def _args_serve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="serve a segmentor over HTTP: POST /predict, health, Prometheus metrics, a page to try it",
        description="FastAPI on uvicorn (pip install 'swinseg[serve]'). POST /predict takes an image's bytes (or a multipart "
        "field 'image') and returns the label map PNG that swinseg predict writes, or JSON with format=json; query options "
        "mode, tta, confidence, topk, format. GET / is a page to try it; GET /health/live, /health/ready, /metrics. "
        "SIGTERM stops accepting, answers the requests in flight, then exits.",
    )
    _add_segmentor(p, "registered segmentor name, checkpoint or exported graph")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=_at_least(0), default=8000, help="port (default 8000; 0: any free one, printed)")
    _add_predict_options(p)
    _add_device(p)
    p.add_argument("--max-batch-size", type=_at_least(1), default=8, help="requests the model takes at once (default 8)")
    p.add_argument("--max-delay-ms", type=float, default=10.0, help="how long a request waits for others to share its batch (default 10)")
    p.add_argument("--max-body-mb", type=float, default=50.0, help="largest request body in MiB; larger: 413 (default 50)")
    p.add_argument(
        "--max-pixels", type=_at_least(1), default=2**26, help="largest image declared in its header; larger: 413 (default 8192 x 8192)"
    )
    p.add_argument("--max-queue", type=_at_least(1), default=64, help="requests waiting at most; more: 503 with Retry-After (default 64)")
    p.set_defaults(func=cmd_serve)


def _args_convert(sub: argparse._SubParsersAction) -> None:
    from .weights import FORMATS

    p = sub.add_parser(
        "convert",
        help="convert a Swin checkpoint between layouts",
        description="Convert a Swin checkpoint (official, MMSegmentation, timm, HF transformers or native; "
        "detected) into another layout. --to mmseg does what MMSegmentation's swin2mmseg.py does, "
        "except that it leaves out the official file's attn_mask buffers, which MMSegmentation's backbone never loads.",
    )
    p.add_argument("src", help="source checkpoint: file, HF model directory or URL")
    p.add_argument("dst", help="destination file (.safetensors or .pth)")
    p.add_argument("--to", choices=FORMATS, default="native", help="target layout (default: native)")
    p.set_defaults(func=cmd_convert)


def _args_publish(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "publish",
        help="a checkpoint for release: weights and meta only, named with its SHA-256",
        description="As MMSegmentation's publish_model.py: keep the weights and metadata (no optimizer, scaler or RNG "
        "state), as CPU tensors, and name the file OUT-<first 8 hex digits of its SHA-256>.pth, which downloads check.",
    )
    p.add_argument("src", help="checkpoint: a training checkpoint (iter_N.pth) or any supported layout")
    p.add_argument("dst", metavar="OUT.pth", help="destination; the hash is added to its name")
    p.add_argument(
        "--format", choices=("mmseg", "native"), default="mmseg", help="mmseg: .pth MMSegmentation loads (default); native: .safetensors"
    )
    p.set_defaults(func=cmd_publish)


def _args_browse_data(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "browse-data",
        help="write what the data pipeline feeds the model as pictures (augmented image | label, legend)",
        description="As MMSegmentation's browse_dataset.py: the first N samples of a split through the training "
        "pipeline (the seeds a run draws them with, padded to the crop size) or, for val, at the test scale.",
    )
    p.add_argument("config", help="config file or shipped config name")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the pictures")
    p.add_argument("-n", type=_at_least(1), default=20, help="samples (default 20)")
    p.add_argument("--split", choices=("train", "val"), default="train", help="default: train")
    _add_set(p, "config overrides, e.g. data.root=/data/ade")
    p.set_defaults(func=cmd_browse_data)


def _args_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a segmentor or classifier to ONNX or OpenVINO IR with dynamic batch, height and width",
        description="Export to ONNX (opset >= 17) or OpenVINO IR and check it against PyTorch at two other sizes "
        "(onnxruntime, OpenVINO). The graph takes normalized images, (batch, 3, height, width) float32, and returns "
        "logits: a segmentor's decode logits (batch, classes, height / 4, width / 4), a classifier's (batch, classes). "
        "Its metadata holds the classes, palette, preprocessing and test windows: swinseg predict GRAPH runs it.",
    )
    p.add_argument("model", metavar="CONFIG_OR_MODEL", help="config (name or YAML), registered model name or checkpoint file")
    p.add_argument("checkpoint", nargs="?", help="weights for a config or a registered name (path or URL)")
    p.add_argument(
        "--out",
        "--onnx",
        dest="out",
        required=True,
        metavar="FILE",
        help="output graph: .onnx (ONNX) or .xml (OpenVINO IR, beside its .bin)",
    )
    p.add_argument("--format", choices=("onnx", "openvino"), help="the graph's format (default: by the file's suffix)")
    p.add_argument("--size", type=int, help="classifier: the image side it is exported for (default: its pretraining size)")
    p.add_argument("--opset", type=int, default=18, choices=range(17, 24), metavar="17..23", help="ONNX opset (default 18)")
    p.add_argument("--tolerance", type=float, default=1e-4, help="max |logits difference| accepted by the check (default 1e-4)")
    p.add_argument("--no-check", action="store_true", help="skip the comparison with PyTorch")
    p.add_argument(
        "--dtype", choices=("fp32", "int8"), default="fp32", help="fp32 (default), or int8: OpenVINO IR quantized by NNCF on --calibrate"
    )
    p.add_argument("--calibrate", metavar="IMAGES|CONFIG", help=CALIBRATE_HELP)
    _add_set(p, "config overrides")
    p.set_defaults(func=cmd_export)


def _args_models(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the registered models and their weights")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'swin_base*'")
    p.set_defaults(func=cmd_models)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="swinseg",
        description="Swin Transformer segmentation and classification: train, test, predict, convert, export. "
        "'swinseg COMMAND --help' describes each command.",
    )
    parser.add_argument("--version", action="version", version=f"swinseg {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_arguments in (
        _args_demo,
        _args_train,
        _args_test,
        _args_config,
        _args_check_data,
        _args_browse_data,
        _args_benchmark,
        _args_flops,
        _args_plot,
        _args_classify,
        _args_predict,
        _args_serve,
        _args_convert,
        _args_publish,
        _args_export,
        _args_models,
    ):
        add_arguments(sub)
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

    from .engine.distributed import close_distributed

    args = build_parser().parse_args(argv)
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
    finally:
        close_distributed()
    return 0


if __name__ == "__main__":
    sys.exit(main())
