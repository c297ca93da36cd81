"""What machine this is: CPU vendor, model, the ISA features that decide kernel speed, core count,
GPU, torch version. Kernel choices are cached per machine (:func:`signature`), and every benchmark
result carries :func:`machine_info`."""

from __future__ import annotations

import hashlib
import json
import os
import platform
from functools import lru_cache
from typing import Any

import torch

__all__ = ["ISA_FLAGS", "cpu_info", "machine_info", "signature"]

# The flags that change which kernel is fastest: vector width, bf16/int8 dot products, AMX tiles.
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "avx512_fp16", "amx_bf16", "amx_int8", "amx_tile")


@lru_cache(maxsize=1)
def cpu_info() -> dict[str, Any]:
    """``{"vendor", "model", "family_model_stepping", "flags", "cores"}`` from ``/proc/cpuinfo``
    (Linux), else from :mod:`platform`; ``flags`` lists which of :data:`ISA_FLAGS` the CPU has
    (virtual machines often hide the model name: the numbers still tell the generation)."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, sep, value = line.partition(":")
                if not sep:
                    if fields:
                        break  # the first processor is enough
                    continue
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    flags = set(fields.get("flags", "").split())
    return {
        "vendor": fields.get("vendor_id") or platform.machine(),
        "model": fields.get("model name") or platform.processor() or platform.machine(),
        "family_model_stepping": "-".join(fields.get(k, "?") for k in ("cpu family", "model", "stepping")),
        "flags": [f for f in ISA_FLAGS if f in flags],
        "cores": os.cpu_count(),
    }


def machine_info(device: torch.device | str = "cpu") -> dict[str, Any]:
    """The CPU (:func:`cpu_info`), the GPU when ``device`` is one, torch's version and threads."""
    device = torch.device(device)
    info: dict[str, Any] = {"cpu": cpu_info(), "torch": torch.__version__, "threads": torch.get_num_threads()}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info["gpu"] = {"name": props.name, "capability": f"{props.major}.{props.minor}", "memory_gb": round(props.total_memory / 2**30, 1)}
    return info


def signature(device: torch.device | str = "cpu") -> str:
    """A short name for this machine and setting (CPU or GPU, torch version, threads): timed
    kernel choices are kept per signature."""
    device = torch.device(device)
    info = machine_info(device)
    if device.type != "cpu":
        info.pop("threads")
    digest = hashlib.sha256(json.dumps(info, sort_keys=True).encode()).hexdigest()[:12]
    return f"{device.type}-{digest}"
