"""How often reduced precision changes a prediction: the share of pixels a trained segmentor labels
the same in bf16 (weights cast, ``--dtype bf16``; and fp32 weights under bf16 autocast) as in
fp32, and the share of images a Swin-T classifier gives the same top-1 class.

    PYTHONPATH=. python benchmarks/bf16_agreement.py CONFIG CHECKPOINT [--set data.root=...] [--images 200]

e.g. after `swinseg demo`: PYTHONPATH=. python benchmarks/bf16_agreement.py \
    swin-mini-patch4-window7_upernet_1xb8-1k_synthetic-128x128 demo/train/iter_1000.pth --set data.root=demo/data/synthetic

No trained classifier can be downloaded here: the classifier has random weights (every parameter
drawn, as the parity tests draw them) on random images, and only images whose fp32 top-1 leads
the runner-up by more than 1% of the logits' spread count as decided.
"""

from __future__ import annotations

import argparse
import copy
import json

import torch

import swinseg
from swinseg.configs import load_config
from swinseg.data.dataset import build_dataset
from swinseg.models import build_segmentor
from swinseg.ops import machine_info
from swinseg.predict import predict
from swinseg.weights import load_checkpoint
from tests.helpers import randomize_


def segmentation(config_name: str, checkpoint: str, overrides: list[str] | None) -> dict[str, float]:
    config = load_config(config_name, overrides)
    model = build_segmentor(config)
    load_checkpoint(model, checkpoint)
    model.eval()
    bf16 = copy.deepcopy(model).to(torch.bfloat16)
    dataset = build_dataset(config["data"], "val", model.num_classes, model.ignore_index)
    same = {"bf16_weights": 0, "bf16_autocast": 0}
    total = 0
    for i in range(len(dataset)):
        image, _ = dataset[i]
        fp32 = predict(model, image)[0]
        same["bf16_weights"] += int((predict(bf16, image)[0] == fp32).sum())
        with torch.autocast("cpu", dtype=torch.bfloat16):
            same["bf16_autocast"] += int((predict(model, image)[0] == fp32).sum())
        total += fp32.numel()
    return {k: v / total for k, v in same.items()} | {"pixels": total, "images": len(dataset)}


@torch.no_grad()
def classification(images: int) -> dict[str, float]:
    model = randomize_(swinseg.create_model("swin_tiny_patch4_window7_224")).eval()
    bf16 = copy.deepcopy(model).to(torch.bfloat16)
    decided = same = same_all = 0
    for seed in range(0, images, 8):
        x = torch.randn(min(8, images - seed), 3, 224, 224, generator=torch.Generator().manual_seed(seed))
        ref, low = model(x), bf16(x.bfloat16()).float()
        top2 = ref.topk(2, dim=1).values
        clear = (top2[:, 0] - top2[:, 1]) > 0.01 * (ref.amax(1) - ref.amin(1))
        agree = ref.argmax(1) == low.argmax(1)
        decided += int(clear.sum())
        same += int((agree & clear).sum())
        same_all += int(agree.sum())
    return {"top1_same_decided": same / max(decided, 1), "decided": decided, "top1_same_all": same_all / images, "images": images}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config")
    parser.add_argument("checkpoint")
    parser.add_argument("--set", nargs="+", metavar="KEY=VALUE")
    parser.add_argument("--images", type=int, default=200, help="random images for the classifier (default 200)")
    args = parser.parse_args()
    report = {
        "machine": machine_info(),
        "segmentation": segmentation(args.config, args.checkpoint, args.set),
        "classification": classification(args.images),
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
