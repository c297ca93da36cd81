"""The valid range of every numeric setting, as data, and the one check of values against it.

:data:`CONFIG_RANGES` mirrors the config's nesting; its ``model`` part (:data:`MODEL_RANGES`)
mirrors a segmentor's config, whose ``backbone`` and heads take :data:`BACKBONE_RANGES` and
:data:`HEAD_RANGES`. :func:`swinseg.models.resolve_config` checks a whole config (files and
``--set`` alike: every command resolves its config before it does any work), and the
constructors and pipelines that take the same values check theirs, so a value is refused where
it enters, in one line that names it. (:func:`swinseg.configs.load_config` checks key names and
types.) Rules between keys (a warm-up shorter
than the schedule, in_index within the backbone's stages) stay with the code that needs them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Union

__all__ = ["BACKBONE_RANGES", "CONFIG_RANGES", "HEAD_RANGES", "MODEL_RANGES", "Range", "check_ranges"]


@dataclass(frozen=True)
class Range:
    """Finite numbers from ``low`` to ``high`` (None: unbounded); ``bounds`` says which ends are
    included, as in interval notation; ``integer``: whole numbers only."""

    low: float | None = None
    high: float | None = None
    bounds: str = "[]"
    integer: bool = False

    def holds(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        if self.integer and not isinstance(value, int):
            return False
        if self.low is not None and not (value >= self.low if self.bounds[0] == "[" else value > self.low):
            return False
        return self.high is None or (value <= self.high if self.bounds[1] == "]" else value < self.high)

    def __str__(self) -> str:
        kind = "an integer" if self.integer else "a finite number"
        if self.low is not None and self.high is not None:
            return f"{kind} in {self.bounds[0]}{self.low}, {self.high}{self.bounds[1]}"
        if self.low is not None:
            return f"{kind} {'>=' if self.bounds[0] == '[' else '>'} {self.low}"
        if self.high is not None:
            return f"{kind} {'<=' if self.bounds[1] == ']' else '<'} {self.high}"
        return kind


Rules = Mapping[str, Union[Range, "Rules"]]

COUNT = Range(1, integer=True)
INDEX = Range(0, integer=True)
PROBABILITY = Range(0, 1)
RATE = Range(0, 1, "[)")
POSITIVE = Range(0, bounds="(]")
NON_NEGATIVE = Range(0)
FRACTION = Range(0, 1, "(]")

BACKBONE_RANGES: Rules = {
    "pretrain_img_size": COUNT,
    "in_channels": COUNT,
    "embed_dims": COUNT,
    "patch_size": COUNT,
    "window_size": COUNT,
    "mlp_ratio": POSITIVE,
    "depths": COUNT,
    "num_heads": COUNT,
    "strides": COUNT,
    "out_indices": INDEX,
    "drop_rate": RATE,
    "attn_drop_rate": RATE,
    "drop_path_rate": RATE,
    "frozen_stages": Range(-1, integer=True),
    "num_classes": INDEX,
}
HEAD_RANGES: Rules = {
    "in_index": Range(integer=True),
    "in_channels": COUNT,
    "pool_scales": COUNT,
    "channels": COUNT,
    "num_convs": INDEX,
    "kernel_size": COUNT,
    "num_classes": COUNT,
    "dropout_ratio": RATE,
    "loss_weight": NON_NEGATIVE,
}
MODEL_RANGES: Rules = {
    "backbone": BACKBONE_RANGES,
    "decode_head": HEAD_RANGES,
    "auxiliary_head": HEAD_RANGES,
    "data_preprocessor": {"mean": Range(), "std": POSITIVE, "size": COUNT, "pad_val": Range(), "seg_pad_val": INDEX},
    "test_cfg": {"crop_size": COUNT, "stride": COUNT},
    "test_pipeline": {"scale": POSITIVE},  # a factor, or a (long, short) pair of sizes
    "ignore_index": INDEX,
}
CONFIG_RANGES: Rules = {
    "model": MODEL_RANGES,
    "data": {
        "batch_size": COUNT,
        "num_workers": INDEX,
        "pipeline": {
            "scale": COUNT,
            "ratio_range": POSITIVE,
            "crop_size": COUNT,
            "cat_max_ratio": FRACTION,
            "flip_prob": PROBABILITY,
        },
    },
    "optimizer": {"lr": NON_NEGATIVE, "betas": RATE, "weight_decay": NON_NEGATIVE},
    "schedule": {
        "max_iters": COUNT,
        "warmup_iters": INDEX,
        "warmup_start_factor": FRACTION,
        "power": NON_NEGATIVE,
        "eta_min": NON_NEGATIVE,
    },
    "train": {
        "seed": Range(0, 2**32 - 1, integer=True),
        "accumulate": COUNT,
        "clip_grad": POSITIVE,
        "log_interval": COUNT,
        "val_interval": INDEX,
        "checkpoint_interval": INDEX,
        "max_keep_ckpts": Range(-1, integer=True),
        "vis_images": INDEX,
    },
}


def check_ranges(values: Mapping[str, Any], rules: Rules, prefix: str = "") -> None:
    """Check each value of ``values`` that ``rules`` covers (a number, or each entry of a list);
    None passes (automatic or off). The error names the key as ``prefix`` + its dotted path."""
    for key, rule in rules.items():
        value = values.get(key)
        if value is None:
            continue
        if not isinstance(rule, Range):
            if isinstance(value, Mapping):
                check_ranges(value, rule, f"{prefix}{key}.")
            continue
        entries = list(value) if isinstance(value, (list, tuple)) else [value]
        if not all(rule.holds(v) for v in entries):
            each = "every entry " if isinstance(value, (list, tuple)) else ""
            raise ValueError(f"{prefix}{key}={value!r}: {each}must be {rule}")
