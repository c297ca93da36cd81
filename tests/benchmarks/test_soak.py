"""The soak script: its growth measure finds a leak in a hand-made series, and the short run
(200 images, 200 training iterations with validation) opens no descriptor it does not close and
keeps its memory bounded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import soak  # noqa: E402


def test_growth_measures_a_steady_leak_and_ignores_a_warm_up():
    steady = [(i / 100, 500.0 + (100.0 if i < 10 else 0.0), 12) for i in range(101)]  # a high start, then flat
    assert soak.growth(steady)["rss_growth_pct"] == 0.0 and soak.growth(steady)["fds_growth"] == 0
    leak = [(i / 100, 500.0 + i, 12 + i // 20) for i in range(101)]  # 1 MB and a descriptor every 20th item
    result = soak.growth(leak)
    warm, late = 500.0 + 15, 500.0 + 95  # medians of 10..20 and 90..100
    assert result["rss_growth_pct"] == pytest.approx(100 * (late - warm) / warm, abs=0.01)
    assert result["fds_growth"] == 5  # most open after warm-up (17) against the warm-up median (12)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads /proc")
def test_the_short_soak_leaks_no_descriptor_and_bounds_memory(tmp_path):
    out = tmp_path / "soak.json"
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks/soak.py"), "--quick", "--out", str(out)], capture_output=True, text=True, timeout=1200
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(out.read_text())
    for name in ("predict", "train"):
        r = report[name]
        assert r["samples"] > 50, name
        assert r["fds_late"] == r["fds_warm"] and r["fds_growth"] <= 1, (name, r)  # one file may be open at a sample
        assert r["rss_growth_pct"] < 25, (name, r)
