"""Reading checkpoint files without running code from them, and writing our own."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..files import atomic_write

__all__ = ["DIGEST_KEY", "content_digest", "read_checkpoint", "write_file", "unwrap_state_dict"]

StateDict = dict[str, Tensor]

# Training frameworks pickle bookkeeping objects (MMEngine's message hub, numpy scalars, yacs
# configs) next to the weights. Globals from these modules are replaced by inert placeholders,
# so the file loads without ever calling them; any other global is refused.
_BOOKKEEPING_MODULES = ("numpy", "mmengine", "mmcv", "mmseg", "yacs")
_BOOKKEEPING_BUILTINS = ("builtins.getattr",)
_JSON_META = ("config", "dataset_meta")
DIGEST_KEY = "tensor_sha256"


class UnsafeCheckpointError(ValueError):
    """A pickle that would call code other than bookkeeping constructors while loading."""


class _Placeholder:
    """Stands in for a bookkeeping object; accepts any construction and state, does nothing."""

    def __new__(cls, *args: Any, **kwargs: Any) -> _Placeholder:
        return object.__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass


def _placeholders(path: Path) -> list[type]:
    if not zipfile.is_zipfile(path):
        return []  # a legacy pickle: weights_only loading alone decides
    names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    refused = [n for n in names if n.split(".")[0] not in _BOOKKEEPING_MODULES and n not in _BOOKKEEPING_BUILTINS]
    if refused:
        raise UnsafeCheckpointError(
            f"refusing to load {path}: it would call {', '.join(refused)} while unpickling, which could run code; "
            f"convert trusted files to .safetensors"
        )
    out = []
    for qualified in names:
        module, _, name = qualified.rpartition(".")
        out.append(type(name, (_Placeholder,), {"__module__": module, "__qualname__": name}))
    return out


def _tensors(obj: Any, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
    """Every tensor inside nested dicts, lists and tuples, with its key path, in a fixed order."""
    if isinstance(obj, Tensor):
        yield prefix, obj
    elif isinstance(obj, dict):
        for key, value in sorted(obj.items(), key=lambda item: str(item[0])):
            yield from _tensors(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            yield from _tensors(value, f"{prefix}.{i}")


def content_digest(contents: dict[str, Any], meta: dict[str, Any]) -> str:
    """SHA-256 of what a file holds: each tensor's key path, dtype, shape and bytes, and the
    ``config`` and ``dataset_meta`` entries of ``meta`` (as JSON, when they are plain data).
    Written into a file's metadata as ``tensor_sha256``, so that reading finds bit rot."""
    digest = hashlib.sha256()
    for name, tensor in _tensors(contents):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    for key in _JSON_META:
        try:
            digest.update(f"{key}={json.dumps(meta.get(key), sort_keys=True)};".encode())
        except (TypeError, ValueError):
            pass  # a bookkeeping object of a foreign file, not our data
    return digest.hexdigest()


def _verify(path: Path, contents: dict[str, Any], meta: dict[str, Any]) -> None:
    stored = meta.get(DIGEST_KEY)
    if stored is not None and content_digest(contents, meta) != stored:
        raise ValueError(
            f"{path} is corrupt: its tensors or metadata no longer match the SHA-256 stored in it (disk or copy error); "
            f"restore it from a backup or download it again"
        )


def _resolve_file(path: Path) -> Path:
    if path.is_dir():
        for name in ("model.safetensors", "pytorch_model.bin"):
            if (path / name).is_file():
                return path / name
        raise FileNotFoundError(f"{path} is a directory without model.safetensors or pytorch_model.bin")
    if not path.exists():
        raise FileNotFoundError(f"checkpoint file {path} does not exist")
    return path


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, Any]]:
    """Load a ``.safetensors`` file or a PyTorch pickle with ``weights_only=True``.

    Returns ``(contents, metadata)``: a safetensors file gives its tensors and its metadata
    (``config`` decoded from JSON); a pickle gives the whole object and its ``meta`` entry.
    A directory is read through its ``model.safetensors`` or ``pytorch_model.bin``, and its
    ``config.json`` and ``preprocessor_config.json`` (HF transformers) become
    ``metadata['hf_config']`` and ``metadata['hf_preprocessor']``.
    """
    contents, meta = _read_file(_resolve_file(Path(path)))
    for name, key in (("config.json", "hf_config"), ("preprocessor_config.json", "hf_preprocessor")):
        file = Path(path) / name
        if file.is_file():
            try:
                meta[key] = json.loads(file.read_text())
            except json.JSONDecodeError as e:
                raise ValueError(f"{file} is not valid JSON: {e}") from None
    return contents, meta


def _read_file(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    if path.stat().st_size == 0:
        raise ValueError(f"checkpoint file {path} is empty")
    with open(path, "rb") as f:
        magic = f.read(4)
    if path.suffix == ".safetensors" or not (magic.startswith(b"PK") or magic[:1] == b"\x80"):
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                meta: dict[str, Any] = dict(f.metadata() or {})
                tensors = {k: f.get_tensor(k) for k in f.keys()}
        except (SafetensorError, OSError, ValueError) as e:
            raise ValueError(f"cannot read {path} as safetensors (truncated or not a checkpoint?): {e}") from None
        for key in _JSON_META:
            if key in meta:
                try:
                    meta[key] = json.loads(meta[key])
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path} is corrupt: its {key!r} metadata is not valid JSON ({e})") from None
        _verify(path, tensors, meta)
        return tensors, meta
    try:
        with torch.serialization.safe_globals(_placeholders(path)):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except UnsafeCheckpointError:
        raise
    except pickle.UnpicklingError as e:
        raise ValueError(f"refusing to load {path}: {str(e).splitlines()[0]}") from None
    except Exception as e:  # a corrupt file fails in the zip reader or the unpickler, in any of their ways
        message = (str(e).strip().splitlines() or [""])[0]
        raise ValueError(f"cannot read {path} (truncated or corrupt?): {type(e).__name__}: {message}") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{path} holds a {type(obj).__name__}, not a dict of weights")
    meta = obj.get("meta") if isinstance(obj.get("meta"), dict) else {}
    _verify(path, {k: v for k, v in obj.items() if k != "meta"}, meta)
    return obj, meta


def unwrap_state_dict(obj: dict[str, Any]) -> StateDict:
    """The weights inside a checkpoint object: its ``state_dict``/``model``/``module`` entry,
    or the object itself, with a DistributedDataParallel ``module.`` prefix removed."""
    for key in ("state_dict", "model", "module"):
        if isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    sd = {k: v for k, v in obj.items() if isinstance(v, Tensor)}
    if not sd:
        raise ValueError(f"checkpoint holds no tensors (top-level keys: {', '.join(list(obj)[:8])})")
    if all(k.startswith("module.") for k in sd):
        sd = {k[len("module.") :]: v for k, v in sd.items()}
    return sd


def _on_cpu(obj: Any) -> Any:
    """``obj`` with every tensor in it (nested dicts, lists, tuples) copied to the CPU."""
    if isinstance(obj, Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _on_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_on_cpu(v) for v in obj)
    return obj


def write_file(obj: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write a checkpoint object atomically. ``.safetensors`` keeps the tensors of ``obj['state_dict']``
    (or of ``obj`` itself) and ``obj['meta']`` as metadata; any other suffix is a ``torch.save`` pickle.
    An object with ``meta`` (native weights, training state) gets its :func:`content_digest` there."""
    path = Path(path)
    obj = _on_cpu(obj)  # a file written on a GPU loads on any machine
    meta = obj.get("meta")
    if path.suffix != ".safetensors":
        if isinstance(meta, dict):
            contents = {k: v for k, v in obj.items() if k != "meta"}
            obj = {**contents, "meta": {**meta, DIGEST_KEY: content_digest(contents, meta)}}
        return atomic_write(path, lambda tmp: torch.save(obj, tmp))
    from safetensors.torch import save_file

    sd = obj.get("state_dict", obj)
    tensors = {k: v.contiguous() for k, v in sd.items() if isinstance(v, Tensor)}
    if isinstance(meta, dict):
        meta = {**meta, DIGEST_KEY: content_digest(tensors, meta)}
    text = {k: (v if isinstance(v, str) else json.dumps(v)) for k, v in (meta or {}).items()}
    return atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=text))
