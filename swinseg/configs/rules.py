"""The rules of every setting, as data, and the one check of values against them.

:data:`CONFIG_RULES` mirrors the config's nesting: each setting that has a rule beyond its type
(a :class:`Range` of numbers, or :class:`OneOf` a few values) has one line. Its ``model`` part
(:data:`MODEL_RULES`) mirrors a segmentor's config, whose ``backbone`` and heads take
:data:`BACKBONE_RULES` and :data:`HEAD_RULES`. :func:`swinseg.models.resolve_config` checks a
whole config once (files and ``--set`` alike: every command resolves its config before it does
any work), and the constructors and pipelines that take the same values as arguments check
theirs, so a value is refused where it enters, in one line that names it and what it may be.
(:func:`swinseg.configs.load_config` checks key names and types, from the base file.) Rules
between keys (a warm-up shorter than the schedule, in_index within the backbone's stages,
``train.save_best`` among the metrics' keys) stay with the code that needs them.

Adding a setting: its line in the base YAML (name, default, type), its rule here if it has one,
and its consumer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Union

__all__ = ["BACKBONE_RULES", "CONFIG_RULES", "HEAD_RULES", "METRICS", "MODEL_RULES", "OneOf", "Range", "check_rules"]


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


@dataclass(frozen=True)
class OneOf:
    """One of ``values``, compared by type too (1 is not true); ``many``: a list of them."""

    values: tuple[Any, ...]
    many: bool = False

    def holds(self, value: Any) -> bool:
        return any(type(value) is type(v) and value == v for v in self.values)

    def __str__(self) -> str:
        names = ", ".join("null" if v is None else str(v).lower() if isinstance(v, bool) else repr(v) for v in self.values)
        return f"a list of any of {names}" if self.many else f"one of {names}"


Rules = Mapping[str, Union[Range, OneOf, "Rules"]]

# MMSegmentation's iou_metrics
METRICS = ("mIoU", "mDice", "mFscore")
MODES = OneOf(("whole", "slide"))

COUNT = Range(1, integer=True)
INDEX = Range(0, integer=True)
PROBABILITY = Range(0, 1)
RATE = Range(0, 1, "[)")
POSITIVE = Range(0, bounds="(]")
NON_NEGATIVE = Range(0)
FRACTION = Range(0, 1, "(]")

BACKBONE_RULES: Rules = {
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
HEAD_RULES: Rules = {
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
MODEL_RULES: Rules = {
    "backbone": BACKBONE_RULES,
    "decode_head": HEAD_RULES,
    "auxiliary_head": HEAD_RULES,
    "data_preprocessor": {"mean": Range(), "std": POSITIVE, "size": COUNT, "pad_val": Range(), "seg_pad_val": INDEX},
    "test_cfg": {"mode": MODES, "crop_size": COUNT, "stride": COUNT},
    "test_pipeline": {"scale": POSITIVE},  # a factor, or a (long, short) pair of sizes
    "ignore_index": INDEX,
}
CONFIG_RULES: Rules = {
    "model": MODEL_RULES,
    "data": {
        "type": OneOf(("ade20k", "custom")),
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
        "amp": OneOf((None, "bf16", "fp16")),
        "tf32": OneOf((None, True, False)),
        "clip_grad": POSITIVE,
        "log_interval": COUNT,
        "val_interval": INDEX,
        "checkpoint_interval": INDEX,
        "max_keep_ckpts": Range(-1, integer=True),
        "vis_images": INDEX,
    },
    "test": {"mode": OneOf((None, *MODES.values)), "metrics": OneOf(METRICS, many=True)},
}


def check_rules(values: Mapping[str, Any], rules: Rules, prefix: str = "") -> None:
    """Check each value of ``values`` that ``rules`` covers (a value, or each entry of a list). A
    missing key passes, and so does None for a :class:`Range` (automatic or off); a
    :class:`OneOf` lists None where it is allowed. The error names the key as ``prefix`` + its
    dotted path."""
    for key, rule in rules.items():
        value = values.get(key)
        if key not in values or (value is None and not isinstance(rule, OneOf)):
            continue
        if not isinstance(rule, (Range, OneOf)):
            if isinstance(value, Mapping):
                check_rules(value, rule, f"{prefix}{key}.")
            continue
        listed = isinstance(value, (list, tuple))
        if isinstance(rule, OneOf):
            ok = (listed and all(map(rule.holds, value))) if rule.many else (not listed and rule.holds(value))
            if not ok:
                raise ValueError(f"{prefix}{key}={value!r}: must be {rule}")
        elif not all(rule.holds(v) for v in (value if listed else [value])):
            raise ValueError(f"{prefix}{key}={value!r}: {'every entry ' if listed else ''}must be {rule}")
