"""Share of pixels a trained segmentor labels the same with and without bf16 autocast.

    python benchmarks/bf16_agreement.py CONFIG CHECKPOINT [--set data.root=...]

e.g. after `swinseg demo`: python benchmarks/bf16_agreement.py \
    swin-mini-patch4-window7_upernet_1xb8-1k_synthetic-128x128 demo/train/iter_1000.pth --set data.root=demo/data/synthetic
"""

from __future__ import annotations

import argparse

import torch

from swinseg.checkpoint import load_checkpoint
from swinseg.configs import load_config
from swinseg.data.dataset import build_dataset
from swinseg.engine.trainer import build_segmentor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config")
    parser.add_argument("checkpoint")
    parser.add_argument("--set", nargs="+", metavar="KEY=VALUE")
    args = parser.parse_args()
    config = load_config(args.config, args.set)
    model = build_segmentor(config)
    load_checkpoint(model, args.checkpoint)
    model.eval()
    dataset = build_dataset(config["data"], "val", model.num_classes, model.ignore_index)
    same = total = 0
    for i in range(len(dataset)):
        image, _ = dataset[i]
        fp32 = model.predict(image)[0]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = model.predict(image)[0]
        same += int((fp32 == bf16).sum())
        total += fp32.numel()
    print(f"bf16 vs fp32: {same / total:.4%} of {total} pixels labelled the same over {len(dataset)} images")


if __name__ == "__main__":
    main()
