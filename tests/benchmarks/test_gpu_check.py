"""The GPU check's dry run: the same code path as on a GPU, on the CPU with tiny sizes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_check_dry_run_writes_its_report(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "OUT": str(tmp_path / "unused")}
    run = subprocess.run(
        ["bash", str(ROOT / "benchmarks/gpu_check.sh"), str(tmp_path), "--dry-run"], env=env, capture_output=True, text=True, timeout=900
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert (tmp_path / "gpu_check.log").read_text().strip().endswith("gpu_check.json in " + f"{report['seconds']:.0f} s")
    assert report["dry_run"] and report["machine"]["cpu"]["model"] and "flags" in report["machine"]["cpu"]
    assert report["parity"]["passed"] and set(report["parity"]) == {"timm_classifier", "hf_classifier", "hf_upernet", "passed"}
    assert all(report["train"][mode]["finite"] and len(report["train"][mode]["losses"]) == 2 for mode in ("fp32", "bf16", "fp16"))
    for label in ("fp32", "bf16", "compiled"):
        impls = {(r["case"], r["impl"]) for r in report["speed"][label]}
        assert {("classify", "swinseg"), ("classify", "timm"), ("classify", "hf"), ("segment", "swinseg"), ("segment", "hf")} <= impls
    assert any(key.startswith("attention/cpu/") for key in report["kernels"])
