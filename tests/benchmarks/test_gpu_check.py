"""The GPU check's dry run: the same sections as on a GPU, on the CPU with tiny sizes, without
pytest or anything from tests/ on the GPU machine."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = ("parity", "cpu_vs_device", "ddp", "train_cli", "predict_cli", "precision", "speed", "backends")


def test_the_check_imports_nothing_from_the_tests():
    tree = ast.parse((ROOT / "benchmarks/gpu_check.py").read_text())
    modules = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    modules |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not {m for m in modules if m.split(".")[0] in ("tests", "pytest")}


def test_gpu_check_dry_run_writes_its_report_after_each_section(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "OUT": str(tmp_path / "unused")}
    run = subprocess.run(
        ["bash", str(ROOT / "benchmarks/gpu_check.sh"), str(tmp_path), "--dry-run"], env=env, capture_output=True, text=True, timeout=900
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    log = (tmp_path / "gpu_check.log").read_text()
    assert log.strip().endswith("gpu_check.json in " + f"{report['seconds']:.0f} s")
    assert report["dry_run"] and report["machine"]["cpu"]["model"] and "flags" in report["machine"]["cpu"]
    assert all(report[s]["passed"] for s in SECTIONS), {s: report[s] for s in SECTIONS if not report[s]["passed"]}
    assert report["seconds"] < 360
    assert [line.split(":")[0] for line in log.splitlines() if line.split(":")[0] in SECTIONS] == list(SECTIONS)
    assert set(report["parity"]) >= {"timm_classifier", "hf_classifier", "hf_upernet"}
    assert report["train_cli"]["killed_after_s"] is not None and "iteration 10" in report["train_cli"]["resumed"]
    fp16 = report["precision"]["fp16"]
    assert fp16["skipped_steps"] < fp16["steps"] and fp16["losses"][-1] < fp16["losses"][0]
    assert report["speed"]["segment_fp32_fps"] > 0 and report["ddp"]["backend"] == "gloo"
    assert report["backends"]["torch fp32"]["labels_as_fp32"] == 1.0 and report["backends"]["torch bf16"]["s_per_image"] > 0
