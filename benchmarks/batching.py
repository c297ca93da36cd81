"""What batch invariance costs: ``EncoderDecoder.inference`` computes each image of a batch on its
own (so that its labels do not depend on the batch); the batched forward it replaced is
``encode_decode`` on the whole batch. Interleaved rounds in one process, a registered segmentor
with random weights. Prints a table and writes a JSON result.

    python benchmarks/batching.py --batch 2 --size 512 --out benchmarks/batching-cpu.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

import swinseg
from swinseg.ops import machine_info
from swinseg.ops.tuning import interleaved_times


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--size", type=int, nargs=2, default=[512, 512], metavar=("H", "W"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    device = torch.device(args.device)
    model = swinseg.create_model(args.model).to(device).eval()
    x = torch.randn(args.batch, 3, *args.size, device=device)
    calls = {"batched encode_decode": lambda: model.encode_decode(x), "per-image inference": lambda: model.inference(x)}
    times = interleaved_times(calls, device, warmup=1, rounds=args.rounds)
    medians = {name: statistics.median(t) for name, t in times.items()}
    base = medians["batched encode_decode"]
    print(f"{args.model}, batch {args.batch} x {args.size[0]}x{args.size[1]}, {device}")
    for name, median in medians.items():
        print(f"{name:>24}  {median:7.3f} s/batch  {args.batch / median:6.2f} img/s  x{median / base:.3f}")
    result = {"model": args.model, "batch": args.batch, "size": args.size, "times": times, "medians": medians}
    result["machine"] = machine_info(device)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
