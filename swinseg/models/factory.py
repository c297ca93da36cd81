"""The one resolver of model arguments, and ``create_model`` on top of it.

A model argument is a registered name, a training config (name, YAML path, or the loaded dict),
or a checkpoint (file, HF-style directory, or URL). :func:`resolve` says which, by fixed rules;
:func:`create_model` builds it; :func:`resolve_config` spells a config's model section out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from difflib import get_close_matches
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..configs import CONFIG_DIR, list_configs, load_config
from ..configs.rules import CONFIG_RULES, check_rules
from ..configs.schema import full_config, merge_config, plain
from ..ops import parse_dtype
from ..weights import checkpoint_config, is_url, load_checkpoint, load_native, read_native
from .segmentor import EncoderDecoder
from .swin import SwinTransformer
from .zoo import ModelSpec, get_spec, list_models

__all__ = ["ResolvedConfig", "Source", "build_segmentor", "create_model", "resolve", "resolve_config", "validated_config"]

KINDS = ("registered", "config", "checkpoint")


@dataclass(frozen=True)
class Source:
    """What a model argument names: ``kind`` is one of :data:`KINDS`; ``spec`` is set for a
    registered model, ``config`` (the merged training config) for a config, ``location`` (path
    or URL) for a checkpoint."""

    kind: str
    argument: str
    spec: ModelSpec | None = None
    config: dict[str, Any] | None = None
    location: str | None = None


def resolve(argument: str | os.PathLike | dict[str, Any] | Source) -> Source:
    """Say what ``argument`` names (a :class:`Source` is returned as it is), by the first rule
    that applies:

    1. a dict: a training config (:func:`swinseg.configs.load_config`'s result);
    2. a URL (``http``, ``https``, ``file``): a checkpoint, downloaded and cached;
    3. a registered model name (``swinseg models``);
    4. a path ending in ``.yaml``/``.yml``: a config file;
    5. an existing file or directory: a checkpoint in any supported layout;
    6. the name of a shipped config (``swinseg config --list``).

    Anything else is a KeyError that lists what was tried and the closest names.
    """
    if isinstance(argument, Source):
        return argument
    if isinstance(argument, dict):
        return Source("config", str(argument.get("source", "<config>")), config=argument)
    text = os.fspath(argument)
    if is_url(text):
        return Source("checkpoint", text, location=text)
    if text in list_models():
        return Source("registered", text, spec=get_spec(text))
    path = Path(text)
    if path.suffix in (".yaml", ".yml"):
        return Source("config", text, config=load_config(path))
    if path.exists():
        return Source("checkpoint", text, location=text)
    if (CONFIG_DIR / f"{text}.yaml").is_file():
        return Source("config", text, config=load_config(text))
    close = get_close_matches(text, sorted({*list_models(), *list_configs()}), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else "; see swinseg models and swinseg config --list"
    raise KeyError(
        f"model {text!r} is not a URL, a registered model, a .yaml config, an existing checkpoint file or a shipped config{hint}"
    )


def _classes_follow(config: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``overrides`` with the auxiliary head's classes following the decode head's when only the
    latter are given (both heads learn from the same labels)."""
    classes = (overrides.get("decode_head") or {}).get("num_classes")
    aux = overrides.get("auxiliary_head", config.get("auxiliary_head"))
    if classes is None or not aux or "num_classes" in (overrides.get("auxiliary_head") or {}):
        return overrides
    return {**overrides, "auxiliary_head": {**(overrides.get("auxiliary_head") or {}), "num_classes": classes}}


class ResolvedConfig(dict):
    """A config as :func:`resolve_config` returns it: its model spelled out, every value checked
    against :data:`~swinseg.configs.rules.CONFIG_RULES`. Functions that take a config (the
    trainer, :func:`create_model`) use it as it is instead of resolving it again."""


def resolve_config(config: dict[str, Any]) -> ResolvedConfig:
    """``config`` with its ``model`` section (``name`` + overrides) spelled out as the registered
    model's whole config with the overrides merged, checked once against the rules table; an
    unknown key or a value against its rule is an error naming it. A resolved config comes back
    as it is."""
    if isinstance(config, ResolvedConfig):
        return config
    section = dict(config.get("model") or {})
    name = section.pop("name", None)
    if not name:
        raise ValueError("config has no model.name (a registered segmentor, see swinseg models '*upernet*')")
    spec = get_spec(name)
    resolved = {**config, "model": plain({"name": name, **merge_config(spec.config, _classes_follow(spec.config, section), "model.")})}
    check_rules(resolved, CONFIG_RULES)
    return ResolvedConfig(resolved)


def create_model(
    name: str | os.PathLike | dict[str, Any] | Source,
    *,
    pretrained: bool | str | os.PathLike | None = None,
    dtype: str | torch.dtype | None = None,
    **overrides: Any,
) -> nn.Module:
    """Build the model that ``name`` names (:func:`resolve`, or its result), optionally with weights.

    ``pretrained``:

    - a registered model: None or False (random init), True (its published weights,
      downloaded and hash-checked), or a path/URL of a checkpoint in any supported layout;
    - a config: None or False (random init), or a path/URL (True is refused: a config's own
      ``pretrained`` key names the weights training starts from, not trained weights);
    - a checkpoint: None or True (its own weights), False (its architecture, random init), or
      another path/URL whose weights go into that architecture.

    ``dtype``: ``"bf16"`` or ``"fp16"`` casts the weights for inference
    (:mod:`swinseg.ops.precision`). ``overrides`` are merged into the model config (nested dicts
    recursively, e.g. ``decode_head=dict(num_classes=19)``); an unknown key is an error naming it.
    """
    source = resolve(name)
    builder, config, read = _architecture(source)
    model = builder(**merge_config(config, _classes_follow(config, overrides)))
    weights = _weights(source, pretrained)
    if read is not None and weights == source.location:
        load_native(model, *read, source=weights)
    elif weights is not None:
        load_checkpoint(model, weights, sha256=source.spec.sha256 if source.kind == "registered" and pretrained is True else None)
    return model.to(parse_dtype(dtype)) if dtype is not None else model


def build_segmentor(config: dict[str, Any]) -> EncoderDecoder:
    """The config's model (registered name + overrides), randomly initialized."""
    model = create_model(config)
    if not isinstance(model, EncoderDecoder):
        raise ValueError(f"model.name {config['model'].get('name')!r} is not a segmentor (see swinseg models '*upernet*')")
    return model


def validated_config(config: dict[str, Any]) -> ResolvedConfig:
    """:func:`resolve_config`, then the segmentor built on the meta device (no memory, no time),
    so that the rules between keys that only the constructors know (out_indices and in_index
    within the stages, widths divisible by the heads) are checked as a training run would."""
    resolved = resolve_config(config)
    with torch.device("meta"):
        build_segmentor(resolved)
    return resolved


def _architecture(source: Source) -> tuple[type[nn.Module], dict[str, Any], tuple | None]:
    """The builder and its config; for a checkpoint, also what :func:`read_native` read from it."""
    if source.kind == "registered":
        return source.spec.builder, source.spec.config, None
    if source.kind == "config":
        section = dict(resolve_config(source.config)["model"])
        return get_spec(section.pop("name")).builder, section, None
    read = read_native(source.location)
    config = checkpoint_config(*read[:2])
    builder = EncoderDecoder if "backbone" in config else SwinTransformer
    return builder, full_config(builder, **config), read


def _weights(source: Source, pretrained: bool | str | os.PathLike | None) -> str | os.PathLike | None:
    """Where the weights come from, or None for a random initialization."""
    if pretrained is False or (pretrained is None and source.kind != "checkpoint"):
        return None
    if pretrained not in (True, None):
        return pretrained
    if source.kind == "checkpoint":
        return source.location
    if source.kind == "config":
        raise ValueError(
            f"config {source.argument}: pretrained=True names no weights (its 'pretrained' key is what training starts "
            f"from); pass the trained checkpoint's path or URL"
        )
    if source.spec.url is None:
        raise ValueError(f"model {source.spec.name!r} has no published weights")
    return source.spec.url
