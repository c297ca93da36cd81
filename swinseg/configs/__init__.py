"""Training configs: YAML files named as MMSegmentation's, resolved through ``_base_`` files and
``key=value`` overrides into plain nested dicts.

``load_config("swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512")`` or
``load_config("my.yaml", ["train.amp=bf16", "data.batch_size=4"])``. Every key must exist in the
base file (``_base_/upernet-swin_ade20k-160k.yaml``); an unknown one is an error naming it and
the closest valid key. ``model`` names a registered segmentor and lists overrides of its config;
:func:`swinseg.models.resolve_config` checks them and spells the whole model config out.

This package sits below the models: it holds the config logic (:mod:`.schema`) and the shared
defaults (:mod:`.defaults`), and imports nothing else of swinseg.
"""

from __future__ import annotations

import copy
from difflib import get_close_matches
from pathlib import Path
from typing import Any

import yaml

from .schema import deep_update, merge_config, plain

__all__ = ["CONFIG_DIR", "dump_config", "find_config", "list_configs", "load_config", "parse_overrides"]

CONFIG_DIR = Path(__file__).parent
BASE = CONFIG_DIR / "_base_" / "upernet-swin_ade20k-160k.yaml"


def list_configs() -> list[str]:
    """Names of the shipped configs."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def find_config(name_or_path: str | Path) -> Path:
    """A config file: an existing path, or the name of a shipped config (with or without .yaml)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = CONFIG_DIR / f"{Path(str(name_or_path)).name.removesuffix('.yaml')}.yaml"
    if shipped.is_file():
        return shipped
    close = get_close_matches(str(name_or_path), list_configs(), n=2, cutoff=0.5)
    hint = f"; did you mean {' or '.join(close)}?" if close else "; see swinseg config --list"
    raise FileNotFoundError(f"config {name_or_path} is neither a file nor a shipped config{hint}")


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ValueError(f"{path} is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a mapping of config keys, not {type(data).__name__}")
    return data


def _with_bases(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The file's keys merged over its ``_base_`` chain, checked against the base schema."""
    data = _read_yaml(path)
    base_name = data.pop("_base_", None)
    if base_name is None:
        return data
    base_path = (path.parent / base_name).resolve()
    if base_path in seen:
        raise ValueError(f"{path}: _base_ {base_name} includes itself")
    if not base_path.is_file():
        raise FileNotFoundError(f"{path}: _base_ file {base_path} does not exist")
    return _merge_checked(_with_bases(base_path, (*seen, base_path)), data, path)


def _merge_checked(base: dict[str, Any], data: dict[str, Any], path: Path) -> dict[str, Any]:
    """``data`` over ``base``: keys checked against ``base``, except the model's (checked on resolution)."""
    data = dict(data)
    model = deep_update(base.get("model") or {}, data.pop("model", None) or {})
    try:
        merged = merge_config(base, data)
    except (KeyError, TypeError) as e:
        raise type(e)(f"{path}: {e.args[0]}") from None
    merged["model"] = model
    return merged


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """``["a.b=1", "c=[1, 2]"]`` -> ``{"a": {"b": 1}, "c": [1, 2]}`` (values parsed as YAML)."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ValueError(f"override {item!r} is not of the form key=value (e.g. train.amp=bf16)")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ValueError(f"override {item!r}: cannot parse the value: {e}") from None
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 as text
            try:
                value = float(value)
            except ValueError:
                pass
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {item!r} conflicts with another override of {part!r}")
        node[leaf] = value
    return out


def load_config(name_or_path: str | Path, overrides: list[str] | dict[str, Any] | None = None) -> dict[str, Any]:
    """The merged config: base file, config file, then ``overrides`` (``key=value`` strings or a
    dict). Its ``model`` section is the registered name with the overrides of its config."""
    path = find_config(name_or_path)
    config = _with_bases(path)
    if "_base_" not in _read_yaml(path):
        config = _merge_checked(_with_bases(BASE), config, path)
    extra = copy.deepcopy(overrides if isinstance(overrides, dict) else parse_overrides(overrides))
    model = deep_update(config.pop("model", None) or {}, extra.pop("model", None) or {})
    config = merge_config(config, extra)
    return plain({"model": model, **config, "source": str(path)})


def dump_config(config: dict[str, Any]) -> str:
    """The config as YAML text that :func:`load_config` reads back to the same config. The file
    it came from (``source``, which loading sets from the path) becomes a comment."""
    body = yaml.safe_dump({k: v for k, v in config.items() if k != "source"}, sort_keys=False, default_flow_style=None, width=120)
    return f"# resolved from {config['source']}\n{body}" if config.get("source") else body
