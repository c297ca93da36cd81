"""Every config key with a rule (a range or allowed values) refuses other values where they enter: ``swinseg config`` and
``swinseg train`` exit 1 with one line naming the key, never a traceback or a silent acceptance.
The invalid regions below are written from what each value means (a count, a probability, a
rate, a size), independently of swinseg's own range table."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swinseg.cli import main
from swinseg.configs import load_config
from swinseg.configs.rules import CONFIG_RULES, OneOf
from swinseg.models import resolve_config
from tests.helpers import DEMO_CONFIG

BAD_NUMBER = st.sampled_from([math.nan, math.inf, -math.inf])


def below(limit: float, integer: bool = True, inclusive: bool = False) -> st.SearchStrategy:
    """Values under ``limit`` (or at it, with ``inclusive``), or not finite."""
    if integer:
        return st.integers(max_value=int(limit) if inclusive else int(limit) - 1, min_value=-(10**9))
    return st.floats(max_value=limit, exclude_max=not inclusive, min_value=-1e9) | BAD_NUMBER


def above(limit: float, integer: bool = False, inclusive: bool = False) -> st.SearchStrategy:
    if integer:
        return st.integers(min_value=int(limit) if inclusive else int(limit) + 1, max_value=10**12)
    return st.floats(min_value=limit, exclude_min=not inclusive, max_value=1e9) | BAD_NUMBER


COUNT = below(1)  # sizes, widths, counts, intervals that must be positive
INDEX = below(0)  # counts and indices that may be zero
RATE = below(0, integer=False) | above(1, inclusive=True)  # a dropout or drop-path rate: [0, 1)
PROBABILITY = below(0, integer=False) | above(1)  # [0, 1]
FRACTION = below(0, integer=False, inclusive=True) | above(1)  # (0, 1]
POSITIVE = below(0, integer=False, inclusive=True)
NON_NEGATIVE = below(0, integer=False)

OUT_OF_RANGE: dict[str, st.SearchStrategy] = {
    "model.backbone.pretrain_img_size": COUNT,
    "model.backbone.in_channels": COUNT,
    "model.backbone.embed_dims": COUNT,
    "model.backbone.patch_size": COUNT,
    "model.backbone.window_size": COUNT,
    "model.backbone.mlp_ratio": POSITIVE,
    "model.backbone.depths": COUNT,
    "model.backbone.num_heads": COUNT,
    "model.backbone.strides": COUNT,
    "model.backbone.out_indices": INDEX | above(3, integer=True),  # 4 stages
    "model.backbone.drop_rate": RATE,
    "model.backbone.attn_drop_rate": RATE,
    "model.backbone.drop_path_rate": RATE,
    "model.backbone.frozen_stages": below(-1),
    "model.backbone.num_classes": INDEX,
    "model.decode_head.in_index": below(-4) | above(3, integer=True),
    "model.decode_head.pool_scales": COUNT,
    "model.decode_head.channels": COUNT,
    "model.decode_head.num_classes": COUNT,
    "model.decode_head.dropout_ratio": RATE,
    "model.decode_head.loss_weight": NON_NEGATIVE,
    "model.auxiliary_head.in_index": below(-4) | above(3, integer=True),
    "model.auxiliary_head.channels": COUNT,
    "model.auxiliary_head.num_convs": INDEX,
    "model.auxiliary_head.num_classes": COUNT,
    "model.auxiliary_head.dropout_ratio": RATE,
    "model.auxiliary_head.loss_weight": NON_NEGATIVE,
    "model.data_preprocessor.mean": BAD_NUMBER,
    "model.data_preprocessor.std": POSITIVE,
    "model.data_preprocessor.size": COUNT,
    "model.data_preprocessor.pad_val": BAD_NUMBER,
    "model.data_preprocessor.seg_pad_val": INDEX,
    "model.test_cfg.crop_size": COUNT,
    "model.test_cfg.stride": COUNT,
    "model.test_pipeline.scale": COUNT,
    "model.ignore_index": INDEX,
    "data.batch_size": COUNT,
    "data.pipeline.scale": COUNT,
    "data.pipeline.ratio_range": POSITIVE,
    "data.pipeline.crop_size": COUNT,
    "data.pipeline.cat_max_ratio": FRACTION,
    "data.pipeline.flip_prob": PROBABILITY,
    "optimizer.lr": NON_NEGATIVE,
    "optimizer.betas": RATE,
    "optimizer.weight_decay": NON_NEGATIVE,
    "schedule.max_iters": COUNT,
    "schedule.warmup_iters": INDEX,
    "schedule.warmup_start_factor": FRACTION,
    "schedule.power": NON_NEGATIVE,
    "schedule.eta_min": NON_NEGATIVE,
    "train.seed": INDEX | above(2**32 - 1, integer=True),
    "train.accumulate": COUNT,
    "train.log_interval": COUNT,
    "train.val_interval": INDEX,
    "train.checkpoint_interval": INDEX,
    "train.max_keep_ckpts": below(-1),
    "train.vis_images": INDEX,
}
NULLABLE = {"train.clip_grad": POSITIVE, "data.num_workers": INDEX}  # null by default (off, automatic); numbers when set


def _numeric_keys(config: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out |= _numeric_keys(value, f"{prefix}{key}.")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[prefix + key] = value
        elif isinstance(value, list) and value and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            out[prefix + key] = value
    return out


DEFAULTS = _numeric_keys(resolve_config(load_config(DEMO_CONFIG)))


def test_every_numeric_key_has_an_out_of_range_region_here():
    assert set(DEFAULTS) == set(OUT_OF_RANGE), set(DEFAULTS) ^ set(OUT_OF_RANGE)


def _override(key: str, bad: float, default: object) -> str:
    """``key=value`` with ``bad`` in place of the value, or of the first entry of a list."""
    value = [bad, *default[1:]] if isinstance(default, list) else bad
    return f"{key}={json.dumps(value)}"  # JSON is YAML; NaN/Infinity are parsed back as floats


def _check_refused(capsys, argv: list[str], key: str) -> None:
    assert main(argv) == 1, f"{argv[-1]} was accepted"
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert key.rsplit(".", 1)[1] in err[0], (argv[-1], err[0])


@pytest.mark.parametrize("key", [*OUT_OF_RANGE, *NULLABLE])
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_out_of_range_values_are_refused_by_config_and_train(capsys, tmp_path, key, data):
    bad = data.draw({**OUT_OF_RANGE, **NULLABLE}[key], label=key)
    override = _override(key, bad, DEFAULTS.get(key))
    _check_refused(capsys, ["config", DEMO_CONFIG, "--set", override], key)
    _check_refused(capsys, ["train", DEMO_CONFIG, "--work-dir", str(tmp_path / "work"), "--set", "data.root=/nowhere", override], key)
    assert not (tmp_path / "work" / "config.yaml").exists()  # refused before the run began


@pytest.mark.parametrize("key", sorted(DEFAULTS))
def test_the_defaults_are_in_range(key):
    assert main(["config", DEMO_CONFIG, "--set", f"{key}={json.dumps(DEFAULTS[key])}"]) == 0


# Settings with a few allowed values, and values outside them (written from what each setting
# means: a dtype, a switch, a dataset kind, an inference mode, metric names).
BAD_CHOICES: dict[str, list[object]] = {
    "train.amp": ["fp8", 16, True],
    "train.tf32": [1, "yes"],
    "data.type": ["cityscapes", None],
    "model.test_cfg.mode": ["tiles", None],
    "test.mode": ["tiles", 1],
    "test.metrics": ["mIoU", ["mAP"], [1]],
}


def _choice_keys(rules: dict, prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for key, rule in rules.items():
        if isinstance(rule, dict):
            keys |= _choice_keys(rule, f"{prefix}{key}.")
        elif isinstance(rule, OneOf):
            keys.add(prefix + key)
    return keys


def test_every_setting_with_allowed_values_is_tried_here():
    assert _choice_keys(CONFIG_RULES) == set(BAD_CHOICES)


@pytest.mark.parametrize(("key", "bad"), [(key, bad) for key, values in BAD_CHOICES.items() for bad in values])
def test_values_outside_a_settings_choices_are_refused_on_resolution(capsys, tmp_path, key, bad):
    override = f"{key}={json.dumps(bad)}"
    _check_refused(capsys, ["config", DEMO_CONFIG, "--set", override], key)
    _check_refused(capsys, ["train", DEMO_CONFIG, "--work-dir", str(tmp_path / "work"), "--set", "data.root=/nowhere", override], key)


@pytest.mark.parametrize(
    "override",
    ["train.amp=bf16", "train.amp=null", "train.tf32=false", "data.type=custom", "test.mode=slide", "test.metrics=[mDice, mIoU]"],
)
def test_allowed_choices_pass(override):
    assert main(["config", DEMO_CONFIG, "--set", override]) == 0
