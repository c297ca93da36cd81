"""Side-by-side speed and memory of swinseg and the installed peers (timm, HF transformers, the
seed's ``swin-transformer-pytorch``) on the same inputs, threads and device.

Each case builds every available implementation with random weights, warms each up, then times
them in interleaved rounds (one call of each per round), so that drifting clocks and caches hit
all alike. FLOPs are counted once on ours with ``torch.utils.flop_counter`` (multiply-adds x 2)
and set against the device's measured matrix-multiply peak. Peak memory is read in a fresh
process per implementation (``--memory``).
"""

from __future__ import annotations

import json
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from swinseg.engine.logger import peak_memory_mb
from swinseg.engine.optim import build_optimizer
from swinseg.ops import choices, machine_info
from swinseg.ops.tuning import interleaved_times, synchronize
from swinseg.tools.speed import count_flops

__all__ = ["Case", "Target", "CASES", "classify_case", "segment_case", "train_case", "run_cases", "matmul_peak", "format_table", "main"]

UPERNET_T = "swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512"


@dataclass
class Case:
    """A workload: ``build(impl, target)`` returns a no-argument callable or None (impl missing)."""

    images: int
    build: Callable[[str, Target], Callable[[], Any] | None]
    impls: tuple[str, ...]
    megapixels: float = 0.0


@dataclass
class Result:
    case: str
    impl: str
    times: list[float] = field(default_factory=list)
    images: int = 1
    megapixels: float = 0.0
    flops: float = 0.0
    peak_memory_mb: float | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.times)


# --- implementations -----------------------------------------------------------------------
def _ours_classifier(name: str) -> nn.Module:
    from swinseg.models.factory import create_model

    return create_model(name)


def _allow_broken_torchvision() -> None:
    """A torchvision whose compiled ops cannot load (a CUDA build on a CPU-only machine) stops
    timm's and transformers' imports at two operator schemas; define them so that they import
    (their Swin models call neither)."""
    try:
        torch.ops.torchvision.nms  # noqa: B018
    except (AttributeError, RuntimeError):
        lib = torch.library.Library("torchvision", "DEF")
        lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _allow_broken_torchvision.lib = lib  # keep the registration alive


def _import_timm() -> Any:
    """timm, or None when it is not installed."""
    _allow_broken_torchvision()
    try:
        import timm
    except ImportError:
        return None
    return timm


def _timm_classifier(name: str, fused: bool = False) -> nn.Module | None:
    """timm's model; ``fused``: with its experimental fused attention (``scaled_dot_product_attention``)."""
    timm = _import_timm()
    if timm is None:
        return None
    from timm.layers import set_fused_attn

    set_fused_attn(fused, experimental=fused)
    try:
        return timm.create_model(name, pretrained=False)
    finally:
        set_fused_attn(False, experimental=False)


def _hf_classifier(name: str) -> nn.Module | None:
    _allow_broken_torchvision()
    try:
        from transformers import SwinConfig, SwinForImageClassification
    except ImportError:
        return None
    from swinseg.models.zoo import get_spec

    c = get_spec(name).config
    config = SwinConfig(
        image_size=c["pretrain_img_size"],
        embed_dim=c["embed_dims"],
        depths=c["depths"],
        num_heads=c["num_heads"],
        window_size=c["window_size"],
        num_labels=c["num_classes"],
        drop_path_rate=0.0,
    )
    return _LogitsOnly(SwinForImageClassification(config))


def _seed_classifier(name: str) -> nn.Module | None:
    try:
        from swin_transformer_pytorch import SwinTransformer
    except ImportError:
        return None
    from swinseg.models.zoo import get_spec

    c = get_spec(name).config
    return SwinTransformer(
        hidden_dim=c["embed_dims"],
        layers=c["depths"],
        heads=c["num_heads"],
        channels=3,
        num_classes=c["num_classes"],
        head_dim=32,
        window_size=c["window_size"],
        downscaling_factors=(4, 2, 2, 2),
        relative_pos_embedding=True,
    )


class _LogitsOnly(nn.Module):
    """An HF model returning its ``logits`` tensor."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=x).logits


def _ours_upernet() -> nn.Module:
    from swinseg.models.factory import create_model

    return create_model(UPERNET_T, backbone=dict(drop_path_rate=0.0))


def _hf_upernet() -> nn.Module | None:
    _allow_broken_torchvision()
    try:
        from transformers import UperNetConfig, UperNetForSemanticSegmentation
    except ImportError:
        return None
    from swinseg.models.zoo import get_spec
    from swinseg.weights import hf_upernet_config

    config = hf_upernet_config(get_spec(UPERNET_T).config, None)
    config["backbone_config"]["drop_path_rate"] = 0.0
    return UperNetForSemanticSegmentation(UperNetConfig.from_dict(config))


CLASSIFIERS = {
    "swinseg": _ours_classifier,
    "timm": _timm_classifier,
    "timm-fused": lambda name: _timm_classifier(name, fused=True),
    "hf": _hf_classifier,
    "seed": _seed_classifier,
}


# --- cases ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """Where and how cases run: the device, an autocast dtype (None: none), the weights' and
    inputs' dtype for inference, torch.compile (for the fixed size of each case: a dynamic-shape
    compile takes many minutes on a CPU)."""

    device: torch.device
    dtype: torch.dtype | None = None
    compile: bool = False
    weights: torch.dtype = torch.float32

    def prepare(self, model: nn.Module, train: bool = False) -> nn.Module:
        model = model.to(self.device).train(train)
        if not train:
            model = model.to(self.weights)
        return torch.compile(model, dynamic=False) if self.compile else model

    def input(self, *shape: int) -> torch.Tensor:
        """Random inference input of ``shape`` on the device, in the weights' dtype."""
        return torch.randn(*shape, device=self.device, dtype=self.weights)

    def autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None)

    def argv(self) -> list[str]:
        """This target as the fresh memory-measuring process's arguments."""
        return [
            str(self.device),
            *(["bf16"] if self.dtype is torch.bfloat16 else []),
            *(["compile"] if self.compile else []),
            str(self.weights).removeprefix("torch."),
        ]


def _inference(model: nn.Module | None, x: torch.Tensor, target: Target) -> Callable[[], Any] | None:
    if model is None:
        return None
    model = target.prepare(model)

    def run() -> Any:
        with torch.inference_mode(), target.autocast():
            return model(x)

    return run


def classify_case(name: str, batch: int, size: int) -> Case:
    def build(impl: str, target: Target) -> Callable[[], Any] | None:
        return _inference(CLASSIFIERS[impl](name), target.input(batch, 3, size, size), target)

    return Case(batch, build, ("swinseg", "timm", "timm-fused", "hf", "seed") if size == 224 else ("swinseg", "timm", "timm-fused", "hf"))


def segment_case(height: int, width: int) -> Case:
    def build(impl: str, target: Target) -> Callable[[], Any] | None:
        x = target.input(1, 3, height, width)
        model = _ours_upernet() if impl == "swinseg" else _hf_upernet()
        return _inference(model if impl == "swinseg" else (_LogitsOnly(model) if model is not None else None), x, target)

    return Case(1, build, ("swinseg", "hf"), height * width / 1e6)


def train_case(batch: int = 2, size: int = 512, with_cp: bool = False) -> Case:
    def build(impl: str, target: Target) -> Callable[[], Any] | None:
        x = torch.randn(batch, 3, size, size, device=target.device)
        labels = torch.randint(0, 150, (batch, size, size), device=target.device)
        if impl == "swinseg":
            from swinseg.models.factory import create_model

            model = create_model(UPERNET_T, backbone=dict(drop_path_rate=0.0, with_cp=with_cp))

            def loss(m: nn.Module) -> torch.Tensor:
                return sum(v for k, v in m(x, labels).items() if "loss" in k)
        else:
            model = _hf_upernet()
            if model is None:
                return None

            def loss(m: nn.Module) -> torch.Tensor:
                return m(pixel_values=x, labels=labels).loss

        model = target.prepare(model, train=True)
        # each library's trainer default: ours the recipe's AdamW, HF's Trainer "adamw_torch_fused"
        opt = build_optimizer(model) if impl == "swinseg" else torch.optim.AdamW(model.parameters(), lr=6e-5, weight_decay=0.01, fused=True)

        def step() -> None:
            opt.zero_grad(set_to_none=True)
            with target.autocast():
                value = loss(model)
            value.backward()
            opt.step()

        return step

    return Case(batch, build, ("swinseg",) if with_cp else ("swinseg", "hf"))


def _scaling_case(size: int) -> Case:
    def build(impl: str, target: Target) -> Callable[[], Any] | None:
        from swinseg.configs.defaults import SWIN_SIZES
        from swinseg.models.swin import SwinTransformer

        return _inference(SwinTransformer(**SWIN_SIZES["tiny"], drop_path_rate=0.0), target.input(1, 3, size, size), target)

    return Case(1, build, ("swinseg",), size * size / 1e6)


CASES: dict[str, Callable[[], Case]] = {
    "classify-b1": lambda: classify_case("swin_tiny_patch4_window7_224", 1, 224),
    "classify-b8": lambda: classify_case("swin_tiny_patch4_window7_224", 8, 224),
    "classify-b64": lambda: classify_case("swin_tiny_patch4_window7_224", 64, 224),
    "classify-base384": lambda: classify_case("swin_base_patch4_window12_384", 1, 384),
    "segment-512": lambda: segment_case(512, 512),
    "segment-512x683": lambda: segment_case(512, 683),
    "segment-512x2048": lambda: segment_case(512, 2048),
    "train": lambda: train_case(),
    "train-cp": lambda: train_case(with_cp=True),
    "scale-448": lambda: _scaling_case(448),
    "scale-896": lambda: _scaling_case(896),
    "scale-1792": lambda: _scaling_case(1792),
}


# --- measuring -----------------------------------------------------------------------------
def matmul_peak(device: torch.device, dtype: torch.dtype = torch.float32, n: int = 2048, repeats: int = 10) -> float:
    """Achieved GFLOP/s of an n x n x n matrix product, the best of ``repeats``."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(repeats + 2):
        synchronize(device)
        start = time.perf_counter()
        a @ b
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def _peak_memory(case: str, impl: str, target: Target) -> float | None:
    """Peak memory (MB) of one implementation of a case, in a fresh process."""
    cmd = [sys.executable, __file__, "--child", case, impl, *target.argv()]
    out = subprocess.run(cmd, capture_output=True, text=True)
    try:
        return float(out.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None


def _measure_memory(case: str, impl: str, target: Target) -> float:
    """GPU: peak allocated memory; CPU: the process's peak resident memory (weights, Python and
    torch included)."""
    fn = CASES[case]().build(impl, target)
    if target.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(target.device)
    for _ in range(2):
        fn()
    synchronize(target.device)
    return peak_memory_mb(target.device)


def run_cases(
    names: list[str],
    target: Target,
    warmup: int = 2,
    rounds: int = 5,
    memory: bool = False,
    log: Callable[[str], None] = print,
    ours: Target | None = None,
    cases: dict[str, Callable[[], Case]] | None = None,
) -> list[Result]:
    """Run the cases, every implementation on ``target``, swinseg on ``ours`` when given (e.g.
    swinseg in bf16 against the peers in fp32); ``cases`` replaces :data:`CASES` (e.g. sizes of
    one's own)."""
    cases = cases or CASES
    device = target.device
    targets = {"swinseg": ours or target}
    results: list[Result] = []
    for name in names:
        case = cases[name]()
        fns = {}
        for impl in case.impls:
            fn = case.build(impl, targets.get(impl, target))
            if fn is not None:
                fns[impl] = fn
            else:
                log(f"  {name}: {impl} is not installed, skipped")
        flops = count_flops(fns["swinseg"])[0] if "swinseg" in fns and not target.compile else 0.0
        times = interleaved_times(fns, device, warmup, rounds)
        per = {impl: Result(name, impl, times[impl], case.images, case.megapixels, flops) for impl in fns}
        if memory:
            for impl in fns:
                per[impl].peak_memory_mb = _peak_memory(name, impl, targets.get(impl, target))
        results += per.values()
        log(format_table(list(per.values()), None))
        del fns
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return results


def format_table(results: list[Result], peak_gflops: float | None) -> str:
    rows = [
        f"{'case':<18} {'impl':<8} {'median ms':>10} {'min':>9} {'max':>9} {'img/s':>8} {'ms/MP':>7} {'GFLOP/s':>8} "
        f"{'%peak':>6} {'vs ours':>8} {'mem MB':>8}"
    ]
    ours = {r.case: r.median for r in results if r.impl == "swinseg"}
    for r in results:
        gflops = r.flops / r.median / 1e9 if r.flops else 0.0
        share = f"{100 * gflops / peak_gflops:5.0f}%" if peak_gflops and gflops else ""
        ratio = f"{r.median / ours[r.case]:7.2f}x" if r.case in ours else ""
        mem = f"{r.peak_memory_mb:8.0f}" if r.peak_memory_mb is not None else ""
        per_mp = f"{1000 * r.median / r.megapixels:7.1f}" if r.megapixels else ""
        rows.append(
            f"{r.case:<18} {r.impl:<8} {1000 * r.median:10.1f} {1000 * min(r.times):9.1f} {1000 * max(r.times):9.1f} "
            f"{r.images / r.median:8.2f} {per_mp:>7} {gflops:8.0f} {share:>6} {ratio:>8} {mem:>8}"
        )
    return "\n".join(rows)


def environment(device: torch.device) -> dict[str, Any]:
    """The machine (CPU vendor, model, ISA flags, cores; GPU), torch and the peers' versions."""
    info = {"python": platform.python_version(), **machine_info(device)}
    timm = _import_timm()
    info["timm"] = timm.__version__ if timm else None
    for name in ("transformers", "swin_transformer_pytorch"):
        try:
            info[name] = getattr(__import__(name), "__version__", "installed")
        except ImportError:
            info[name] = None
    return info


def write_json(path: str, results: list[Result], device: torch.device, peaks: dict[str, float | None], settings: dict[str, Any]) -> None:
    payload = {
        "environment": environment(device),
        "settings": settings,
        "matmul_peak_gflops": peaks,
        "kernels": choices(),
        "results": [asdict(r) | {"median": r.median} for r in results],
    }
    with open(path, "w") as f:
        json.dump(payload, f, indent=1)


def main(argv: list[str] | None = None) -> int:
    """``python benchmarks/peers.py --cases classify-b8 segment-512 --out results.json``."""
    import argparse

    from swinseg.ops.precision import DTYPES

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--cases",
        nargs="+",
        default=["classify-b1", "classify-b8", "segment-512", "train", "scale-448", "scale-1792"],
        help=f"cases to run: {', '.join(CASES)}",
    )
    p.add_argument("--device", help="cpu or cuda (default: cuda if available)")
    p.add_argument("--dtype", choices=tuple(DTYPES), default="fp32", help="weights and inputs of every implementation (default fp32)")
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
    p.add_argument("--child", nargs="+", help=argparse.SUPPRESS)  # the fresh process of --memory
    args = p.parse_args(argv)
    if args.child:
        case_name, impl_name, device_name, *flags = args.child
        fresh = Target(
            torch.device(device_name), torch.bfloat16 if "bf16" in flags else None, "compile" in flags, getattr(torch, flags[-1])
        )
        print(_measure_memory(case_name, impl_name, fresh))
        return 0
    unknown = [c for c in args.cases if c not in CASES]
    if unknown:
        p.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if args.threads:
        torch.set_num_threads(args.threads)
    target = Target(device, torch.bfloat16 if args.bf16 else None, args.compile, DTYPES[args.dtype])
    ours = None
    if args.bf16_ours or args.ours_dtype:
        ours = Target(device, torch.bfloat16 if args.bf16_ours else target.dtype, args.compile, DTYPES[args.ours_dtype or args.dtype])
    # a CPU without bf16 instructions (AVX2) multiplies bf16 matrices in a scalar fallback for minutes
    bf16 = device.type != "cpu" or torch.ops.mkldnn._is_mkldnn_bf16_supported()
    peaks = {"fp32": matmul_peak(device), "bf16": matmul_peak(device, torch.bfloat16) if bf16 else None}
    bf16_text = f"{peaks['bf16']:.0f} GFLOP/s" if bf16 else "none (no bf16 instructions)"
    print(f"{environment(device)}\nmatrix-multiply peak: fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 {bf16_text}")
    results = run_cases(args.cases, target, args.warmup, args.rounds, args.memory, ours=ours)
    low = args.bf16 or args.bf16_ours or "bf16" in (args.dtype, args.ours_dtype)
    print(format_table(results, peaks["bf16" if low else "fp32"]))
    if args.out:
        settings = {k: getattr(args, k) for k in ("bf16", "bf16_ours", "dtype", "ours_dtype", "compile", "rounds", "warmup", "cases")}
        write_json(args.out, results, device, peaks, settings)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
