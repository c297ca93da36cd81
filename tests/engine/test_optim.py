"""The Swin recipe's optimizer and schedule against MMEngine's definitions."""

from __future__ import annotations

import copy

import pytest
import torch

import swinseg
from swinseg.engine.optim import WarmupPolyLR, build_optimizer, no_decay_names
from swinseg.weights.formats import from_native

TINY = "swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512"
KEYS = ("absolute_pos_embed", "relative_position_bias_table", "norm")


def _mmengine_chain(base: float, iters: int) -> list[float]:
    """MMEngine's LinearLR(start_factor=1e-6, begin=0, end=1500) and PolyLR(power=1, eta_min=0,
    begin=1500, end=160000) in their chainable (multiplicative) form, stepped once per iteration;
    entry t is the rate iteration t trains with."""
    linear_total, poly_total = 1500 - 0 - 1, 160000 - 1500 - 1
    lr, out = base, []
    for step in range(iters):  # each scheduler's _global_step == step
        if step < 1500:
            k = step  # LinearLR.last_step
            lr = lr * 1e-6 if k == 0 else lr * (1.0 + (1 - 1e-6) / (linear_total * 1e-6 + (k - 1) * (1 - 1e-6)))
        else:
            k = step - 1500  # PolyLR.last_step
            if k > 0:
                lr = lr * (1 - 1 / (poly_total - k + 1)) ** 1.0
        out.append(lr)
    return out


def test_lr_trace_equals_mmengine_linear_then_poly():
    schedule = WarmupPolyLR()
    chain = _mmengine_chain(6e-5, 160000)
    for t in (0, 1, 750, 1499, 1500, 1501, 80000, 159999):
        assert schedule.lr(6e-5, t) == pytest.approx(chain[t], rel=1e-9, abs=1e-15), t
    # closed forms by hand
    assert schedule.lr(6e-5, 0) == pytest.approx(6e-11)
    assert schedule.lr(6e-5, 750) == pytest.approx(6e-5 * (1e-6 + (1 - 1e-6) * 750 / 1499))
    assert schedule.lr(6e-5, 1499) == pytest.approx(6e-5)
    assert schedule.lr(6e-5, 1500) == pytest.approx(6e-5)
    assert schedule.lr(6e-5, 1501) == pytest.approx(6e-5 * (1 - 1 / 158499))
    assert schedule.lr(6e-5, 80000) == pytest.approx(6e-5 * (1 - 78500 / 158499))
    assert schedule.lr(6e-5, 159999) == 0.0


def test_schedule_sets_every_group_from_its_initial_rate():
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.AdamW([{"params": [model.weight], "lr": 1.0}, {"params": [model.bias], "lr": 2.0}])
    schedule = WarmupPolyLR(max_iters=10, warmup_iters=0)
    schedule.apply(opt, 5)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([1 - 5 / 9, 2 * (1 - 5 / 9)])
    with pytest.raises(ValueError, match="warmup_iters"):
        WarmupPolyLR(max_iters=10, warmup_iters=10)


def test_no_decay_parameters_of_upernet_swin_tiny():
    model = swinseg.create_model(TINY)
    exempt = set(no_decay_names(model, KEYS))
    # What MMSegmentation's custom_keys select on its own parameter names: per block
    # norm1/norm2 weight+bias and the bias table; patch-embed, patch-merging and output norms.
    # The heads' BatchNorms are called "bn" there and keep their weight decay.
    depths = [2, 2, 6, 2]
    expected = {"backbone.patch_embed.norm.weight", "backbone.patch_embed.norm.bias"}
    for i, depth in enumerate(depths):
        for j in range(depth):
            block = f"backbone.stages.{i}.blocks.{j}"
            expected |= {f"{block}.{n}.{p}" for n in ("norm1", "norm2") for p in ("weight", "bias")}
            expected.add(f"{block}.attn.w_msa.relative_position_bias_table")
        if i < 3:
            expected |= {f"backbone.stages.{i}.downsample.norm.{p}" for p in ("weight", "bias")}
        expected |= {f"backbone.norm{i}.{p}" for p in ("weight", "bias")}
    # our checkpoint converter gives each MMSegmentation name its parameter: mark every tensor
    # with its index, convert, and read the marks back
    ours = list(model.state_dict())
    marked = {n: torch.full(t.shape, float(i)) for i, (n, t) in enumerate(model.state_dict().items())}
    buffers = ("relative_position_index", "running_mean", "running_var", "num_batches_tracked")
    mmseg_to_ours = {k: ours[int(v.flatten()[0])] for k, v in from_native(marked, "mmseg").items() if not k.endswith(buffers)}
    assert len(mmseg_to_ours) == len(list(model.parameters()))
    selected = {k for k in mmseg_to_ours if any(key in k for key in KEYS)}
    assert selected == expected and len(expected) == 76
    assert exempt == {mmseg_to_ours[k] for k in selected}

    opt = build_optimizer(model)
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0
    assert opt.defaults["lr"] == 6e-5 and opt.defaults["betas"] == (0.9, 0.999)
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[id(p)] for p in no_decay["params"]} == exempt
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_absolute_position_embedding_is_exempt_too():
    model = swinseg.create_model(TINY, backbone=dict(use_abs_pos_embed=True, depths=[1, 1, 1, 1]))
    assert "backbone.absolute_pos_embed" in no_decay_names(model, KEYS)


def test_fused_update_equals_the_reference_loop():
    model = swinseg.create_model(TINY, backbone=dict(depths=[1, 1, 1, 1]))
    reference, initial = copy.deepcopy(model), copy.deepcopy(model)
    ours, loop = build_optimizer(model), build_optimizer(reference)
    for group in loop.param_groups:
        group["fused"] = False
    assert ours.param_groups[0]["fused"]
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        for p, q in zip(model.parameters(), reference.parameters(), strict=True):
            p.grad = torch.randn(p.shape, generator=gen)
            q.grad = p.grad.clone()
        ours.step()
        loop.step()
    for (name, p), q in zip(model.named_parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-7, msg=name)
    moved = [not torch.equal(p, q) for p, q in zip(model.parameters(), initial.parameters(), strict=True)]
    assert all(moved)
