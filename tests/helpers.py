"""Test helpers: random weights that exercise every parameter."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch import nn

from swinseg.configs import load_config
from swinseg.models import resolve_config
from swinseg.models.segmentor import EncoderDecoder
from swinseg.tools.demo import DEMO_CONFIG, TINY_MODEL

__all__ = ["DEMO_CONFIG", "TINY_MODEL", "TINY_OVERRIDES", "chromium", "max_diff", "randomize_", "tiny_segmentor", "tiny_train_config"]


@torch.no_grad()
def randomize_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Fill every parameter and BatchNorm statistic with random values (norm weights near 1) so no term is trivially zero."""
    gen = torch.Generator().manual_seed(seed)
    norms = {
        f"{m}.{p}"
        for m, mod in model.named_modules()
        if isinstance(mod, (nn.LayerNorm, nn.modules.batchnorm._BatchNorm))
        for p in ("weight", "bias")
    }
    for name, p in model.named_parameters():
        noise = torch.randn(p.shape, generator=gen)
        if name in norms or (p.ndim == 1 and "norm" in name):
            p.copy_(1.0 + 0.1 * noise if name.endswith("weight") else 0.1 * noise)
        else:
            p.copy_(0.05 * noise)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.running_mean.copy_(0.1 * torch.randn(module.running_mean.shape, generator=gen))
            module.running_var.copy_(0.5 + torch.rand(module.running_var.shape, generator=gen))
    return model


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a - b).abs().max().item()


# The demo config shrunk to a very small model, 32x32 crops and 6 iterations.
TINY_OVERRIDES = [
    *TINY_MODEL,
    "data.num_workers=0",
    "schedule.max_iters=6",
    "schedule.warmup_iters=2",
    "train.log_interval=2",
    "train.val_interval=0",
    "train.checkpoint_interval=3",
]


def tiny_train_config(root, *overrides: str) -> dict:
    """:data:`TINY_OVERRIDES` of the demo config on ``root`` (a dataset written by
    ``swinseg.tools.synthetic.write_dataset``), then ``overrides``."""
    return resolve_config(load_config(DEMO_CONFIG, [f"data.root={root}", *TINY_OVERRIDES, *overrides]))


def tiny_segmentor(num_classes: int = 5, **overrides: object) -> nn.Module:
    """A 16-wide Swin-UPerNet without auxiliary head, randomized, in eval mode; test scale 96 x 64
    unless ``overrides`` (EncoderDecoder arguments) say otherwise."""
    torch.manual_seed(0)
    arguments = dict(
        backbone=dict(embed_dims=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4)),
        decode_head=dict(channels=16, num_classes=num_classes),
        auxiliary_head=None,
        test_pipeline=dict(scale=[96, 64]),
    )
    return randomize_(EncoderDecoder(**{**arguments, **overrides})).eval()


@contextlib.contextmanager
def chromium(width: int = 1280, height: int = 1600) -> Iterator[Any]:
    """Debian's headless Chromium driven by Selenium through its chromedriver, its console kept
    (``driver.get_log("browser")``); skips the test where either is missing."""
    webdriver = pytest.importorskip("selenium.webdriver")
    driver_path = shutil.which("chromedriver")
    if driver_path is None:
        pytest.skip("Debian's chromium-driver is not installed (make setup-test installs it)")
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", f"--window-size={width},{height}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver_path))
    try:
        yield driver
    finally:
        driver.quit()
