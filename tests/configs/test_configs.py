"""Shipped configs, inheritance and overrides."""

from __future__ import annotations

import pytest

from swinseg.configs import CONFIG_DIR, dump_config, list_configs, parse_overrides
from swinseg.configs import load_config as read_config
from swinseg.models import build_segmentor, resolve_config
from swinseg.models.zoo import list_models


def load_config(name, overrides=None):
    """The config as training sees it: merged, then its model section resolved."""
    return resolve_config(read_config(name, overrides))


def test_every_zoo_segmentor_has_its_training_config_under_the_mmseg_name():
    segmentors = list_models("*upernet*")
    assert len(segmentors) == 8 and set(segmentors) <= set(list_configs())
    for name in segmentors:
        config = load_config(name)
        assert config["model"]["name"] == name
        assert config["pretrained"].startswith("https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/swin/")
        size = name.split("-")[1]
        assert f"swin_{size}_" in config["pretrained"]


def test_the_reference_recipe_is_the_default():
    c = load_config("swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512")
    assert c["optimizer"] == {
        "lr": 6e-5,
        "betas": [0.9, 0.999],
        "weight_decay": 0.01,
        "no_decay_keys": ["absolute_pos_embed", "relative_position_bias_table", "norm"],
    }
    assert c["schedule"] == {"max_iters": 160000, "warmup_iters": 1500, "warmup_start_factor": 1e-6, "power": 1.0, "eta_min": 0.0}
    assert c["data"]["batch_size"] == 2 and c["data"]["reduce_zero_label"] and c["train"]["val_interval"] == 16000
    assert c["data"]["pipeline"] == {
        "scale": [2048, 512],
        "ratio_range": [0.5, 2.0],
        "crop_size": [512, 512],
        "cat_max_ratio": 0.75,
        "flip_prob": 0.5,
        "photometric_distortion": True,
    }
    assert c["model"]["backbone"]["drop_path_rate"] == 0.3 and c["model"]["decode_head"]["num_classes"] == 150


def test_overrides_types_and_unknown_keys():
    assert parse_overrides(["a.b=1", "a.c=[1, 2]", "d=bf16", "e=null", "f=1e-3"]) == {
        "a": {"b": 1, "c": [1, 2]},
        "d": "bf16",
        "e": None,
        "f": 1e-3,
    }
    name = "swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512"
    c = load_config(name, ["train.amp=bf16", "model.backbone.with_cp=true", "model.decode_head.num_classes=19"])
    assert c["train"]["amp"] == "bf16" and c["model"]["backbone"]["with_cp"] is True
    assert c["model"]["decode_head"]["num_classes"] == 19 and c["model"]["decode_head"]["channels"] == 512
    with pytest.raises(KeyError, match=r"unknown config key 'train.ampp' \(did you mean 'amp'\?\)"):
        load_config(name, ["train.ampp=bf16"])
    with pytest.raises(KeyError, match=r"model.backbone.window_sise.*did you mean 'window_size'"):
        load_config(name, ["model.backbone.window_sise=12"])
    with pytest.raises(ValueError, match="not of the form key=value"):
        parse_overrides(["train.amp"])
    with pytest.raises(FileNotFoundError, match="did you mean swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512"):
        load_config("swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k")


def test_wrong_types_name_the_key_and_the_expected_type(tmp_path):
    name = "swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512"
    for override, message in (
        ("schedule.max_iters=abc", r"'schedule.max_iters' must be an integer \(like its default 160000\), got 'abc'"),
        ("data.batch_size=2.5", "'data.batch_size' must be an integer"),
        ("model.backbone.depths=3", r"'model.backbone.depths' must be a list"),
        ("model.backbone.with_cp=1", "'model.backbone.with_cp' must be true or false"),
        ("optimizer.lr=abc", "'optimizer.lr' must be a number"),
    ):
        with pytest.raises(TypeError, match=message):
            load_config(name, [override])
    with pytest.raises(ValueError, match=r"train.amp=\[1\]: must be one of null, 'bf16', 'fp16'"):  # null in the base: its rule decides
        load_config(name, ["train.amp=[1]"])
    c = load_config(name, ["optimizer.lr=1", "model.backbone.pretrain_img_size=[384, 384]", "model.auxiliary_head=null"])
    assert c["optimizer"]["lr"] == 1 and c["model"]["backbone"]["pretrain_img_size"] == [384, 384]
    path = tmp_path / "bad.yaml"
    path.write_text(f"_base_: {CONFIG_DIR / (name + '.yaml')}\nschedule: {{warmup_iters: many}}\n")
    with pytest.raises(TypeError, match=f"{path}: config key 'schedule.warmup_iters' must be an integer"):
        load_config(path)


def test_user_config_file_inherits_and_round_trips(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        "model:\n  name: swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512\n"
        "  decode_head: {num_classes: 3}\n  auxiliary_head: {num_classes: 3}\n"
        "data: {type: custom, classes: [a, b, c], reduce_zero_label: false}\n"
    )
    c = load_config(path)
    assert c["data"]["classes"] == ["a", "b", "c"] and c["optimizer"]["lr"] == 6e-5 and c["source"] == str(path)
    dumped = tmp_path / "dumped.yaml"
    dumped.write_text(dump_config({k: v for k, v in c.items() if k != "source"}))
    again = load_config(dumped)
    assert {k: v for k, v in again.items() if k != "source"} == {k: v for k, v in c.items() if k != "source"}
    assert build_segmentor(c).num_classes == 3
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: {pipline: {}}\n")
    with pytest.raises(KeyError, match=r"bad.yaml.*'data.pipline'.*did you mean 'pipeline'"):
        load_config(bad)


@pytest.mark.parametrize("name", list_configs())
def test_what_swinseg_config_prints_loads_back_to_the_same_config(name, tmp_path, capsys):
    """`swinseg config NAME > my.yaml` and a work dir's config.yaml ended with a `source:` line
    that every loader refused ("unknown config key 'source'")."""
    from swinseg.cli import main

    assert main(["config", name]) == 0
    dumped = tmp_path / "my.yaml"
    dumped.write_text(capsys.readouterr().out)
    original, again = resolve_config(read_config(name)), resolve_config(read_config(dumped))
    assert again.pop("source") == str(dumped) and original.pop("source") != str(dumped)
    assert again == original
    saved = tmp_path / "config.yaml"  # what a training run writes: the resolved config
    saved.write_text(dump_config(resolve_config(read_config(name))))
    resolved = resolve_config(read_config(saved))
    resolved.pop("source")
    assert resolved == original
