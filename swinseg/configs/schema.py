"""Config logic: merging overrides into a config with every key and type checked, a builder's
full config from its signature, and the plain (YAML-round-trip) form of a config."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable
from difflib import get_close_matches
from typing import Any

__all__ = ["check_type", "deep_update", "full_config", "merge_config", "plain"]


def full_config(builder: Callable[..., Any], **values: Any) -> dict[str, Any]:
    """Every keyword argument of ``builder`` with its default, updated by ``values``."""
    params = inspect.signature(builder).parameters
    config = {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}
    return merge_config(config, values)


def merge_config(base: dict[str, Any], overrides: dict[str, Any], path: str = "") -> dict[str, Any]:
    """Recursively merge ``overrides`` into a copy of ``base``; unknown keys are an error naming the key."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if key not in out:
            close = get_close_matches(key, out, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise KeyError(f"unknown config key {path + key!r}{hint}")
        if isinstance(value, dict) and isinstance(out[key], dict):
            out[key] = merge_config(out[key], value, f"{path}{key}.")
        else:
            check_type(path + key, out[key], value)
            out[key] = copy.deepcopy(value)
    return out


# Keys whose integer default may also be given as an (H, W) pair.
_INT_OR_PAIR = ("pretrain_img_size",)


def check_type(key: str, default: Any, value: Any) -> None:
    """``value`` must have the type of the ``default`` it replaces (an int where a float is
    expected). None (automatic or off) and anything replacing a default of None pass."""
    if default is None or value is None:
        return
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
        if key.rsplit(".", 1)[-1] in _INT_OR_PAIR:
            ok = ok or (isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) for v in value))
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif isinstance(default, (list, tuple)):
        ok = isinstance(value, (list, tuple))
    else:
        ok = isinstance(value, type(default))
    if not ok:
        expected = {
            bool: "true or false",
            int: "an integer",
            float: "a number",
            str: "text",
            list: "a list",
            tuple: "a list",
            dict: "a section",
        }
        raise TypeError(
            f"config key {key!r} must be {expected.get(type(default), type(default).__name__)} "
            f"(like its default {default!r}), got {value!r}"
        )


def deep_update(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``extra`` merged into a copy of ``base``, nested dicts merged, keys unchecked (a model
    section, checked once it is resolved against its registered model)."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        out[key] = deep_update(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def plain(value: Any) -> Any:
    """Tuples as lists, recursively, so a config equals itself after a YAML round trip."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value
