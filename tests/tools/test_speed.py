"""FLOPs as the papers count them and a config's images per second (timings are never asserted)."""

from __future__ import annotations

import pytest
import torch

from swinseg.cli import main
from swinseg.tools.speed import count_flops


def test_flops_command_reports_the_papers_numbers(capsys):
    import re

    assert main(["flops", "swin_tiny_patch4_window7_224", "--shape", "224", "224"]) == 0
    out = capsys.readouterr().out
    # the paper: 28M parameters, 4.5 G(multiply-add)s; norms, GELU and softmax are not counted here
    assert "28.29M parameters" in out
    gmacs = float(re.search(r"([\d.]+) GMACs", out).group(1))
    assert 4.3 <= gmacs <= 4.5
    assert re.search(r"addmm\s+[\d.]+ GMACs", out)
    # attention: the scores (baddbmm) and the weighted values (bmm) each take, per block,
    # tokens x 49 x channels multiply-adds; Swin-T's stages have 3136 / 4^i tokens of 96 x 2^i
    # channels in (2, 2, 6, 2) blocks
    per_product = sum(d * 3136 / 4**i * 49 * 96 * 2**i for i, d in enumerate((2, 2, 6, 2))) / 1e9
    attention = [float(v) for v in re.findall(r"\b(?:badd)?bmm\s+([\d.]+) GMACs", out)]
    assert attention == [pytest.approx(per_product, abs=0.005)] * 2


def test_count_flops_of_a_head_convolution_counts_the_direct_algorithm():
    """On the CPU the 3x3 convolution runs as Winograd products; the count is the direct one's."""
    from swinseg.models.heads import ConvModule

    module = ConvModule(16, 8, 3).eval()
    x = torch.zeros(1, 16, 64, 48)
    with torch.no_grad():
        total, per_op = count_flops(lambda: module(x))
    assert per_op["convolution"] == 2 * 64 * 48 * 16 * 8 * 9


def test_count_flops_of_a_linear_layer():
    layer = torch.nn.Linear(3, 5, bias=False)
    total, per_op = count_flops(lambda: layer(torch.zeros(7, 3)))
    assert total == 2 * 7 * 3 * 5 and per_op == {"mm": pytest.approx(total)}


def test_config_fps_as_mmsegmentation_measures_it(tmp_path, capsys):
    from swinseg.tools.synthetic import write_dataset
    from tests.helpers import DEMO_CONFIG, TINY_OVERRIDES

    root = write_dataset(tmp_path / "data", train=1, val=3, size=(48, 64))
    args = ["benchmark", DEMO_CONFIG, "--images", "12", "--warmup", "2", "--set", f"data.root={root}", *TINY_OVERRIDES]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "12 passes over 3 validation images (the first 2 untimed)" in out
    assert float(out.split("Overall fps: ")[1].split()[0]) > 0
