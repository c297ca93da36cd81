"""Conventions of the Swin model checked against hand-written definitions and properties."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from swinseg import SwinTransformer, ops
from swinseg.models.swin import PatchEmbed, PatchMerging, SwinBlock, window_partition, window_reverse
from swinseg.ops import relative_position_index
from swinseg.ops.windows import padded, shift_window_mask, window_order

from ..helpers import max_diff, randomize_


def test_relative_position_index_matches_definition():
    M = 4
    index = relative_position_index(M, M)
    positions = list(itertools.product(range(M), range(M)))
    for p, (yp, xp) in enumerate(positions):
        for q, (yq, xq) in enumerate(positions):
            assert index[p, q] == (yp - yq + M - 1) * (2 * M - 1) + (xp - xq + M - 1)


def test_smaller_window_uses_centre_of_table():
    # window 3 inside a table for 5: offsets stay within +-2, the same entries a 5-window uses for them
    small, big = relative_position_index(3, 5), relative_position_index(5, 5)
    rows = [r * 5 + c for r in range(3) for c in range(3)]
    assert torch.equal(small, big[rows][:, rows])


def _mask_by_slices(H: int, W: int, M: int, s: int) -> torch.Tensor:
    """The reference construction: label 9 regions with slices, partition, compare labels."""
    img = torch.zeros(H, W)
    cnt = 0
    for hs in (slice(0, -M), slice(-M, -s), slice(-s, None)):
        for ws in (slice(0, -M), slice(-M, -s), slice(-s, None)):
            img[hs, ws] = cnt
            cnt += 1
    win = img.view(H // M, M, W // M, M).permute(0, 2, 1, 3).reshape(-1, M * M)
    diff = win[:, None, :] - win[:, :, None]
    return torch.where(diff != 0, torch.tensor(-100.0), torch.tensor(0.0))


@pytest.mark.parametrize("H,W,M", [(14, 14, 7), (7, 7, 7), (12, 18, 6), (8, 4, 4)])
def test_shift_mask_matches_slice_construction(H, W, M):
    assert torch.equal(shift_window_mask(H, W, M, M // 2), _mask_by_slices(H, W, M, M // 2))


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 30), st.integers(1, 30), st.sampled_from([3, 5, 7]), st.booleans())
def test_window_order_is_pad_roll_partition_and_its_inverse(H: int, W: int, M: int, shifted: bool) -> None:
    """The gathers equal MMSegmentation's explicit steps: zero-pad bottom/right, roll by -shift,
    partition into windows; and the inverse gather undoes them (roll back, crop)."""
    s = M // 2 if shifted else 0
    Hp, Wp = padded(H, M), padded(W, M)
    x = torch.randn(1, H, W, 2)
    xp = torch.roll(torch.nn.functional.pad(x, (0, 0, 0, Wp - W, 0, Hp - H)), (-s, -s), dims=(1, 2))
    expected = xp.view(1, Hp // M, M, Wp // M, M, 2).permute(0, 1, 3, 2, 4, 5).reshape(1, -1, 2)
    order, inverse = window_order(H, W, M, s)
    windows = torch.nn.functional.pad(x, (0, 0, 0, Wp - W, 0, Hp - H)).reshape(1, -1, 2)[:, order]
    assert torch.equal(windows, expected)
    assert torch.equal(windows[:, inverse].view(1, H, W, 2), x)


def _identity_linear(n: int) -> nn.Linear:
    layer = nn.Linear(n, n, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(n))
    return layer


def test_patch_merging_order_is_official():
    merge = PatchMerging(dims=1, norm=False)
    merge.reduction = _identity_linear(4)
    x = torch.arange(16.0).view(1, 4, 4, 1)  # value = 4 * row + col
    out = merge(x)
    # neighbours of output (0, 0): (0,0)=0, (1,0)=4, (0,1)=1, (1,1)=5
    assert out[0, 0, 0].tolist() == [0.0, 4.0, 1.0, 5.0]
    assert out[0, 1, 1].tolist() == [10.0, 14.0, 11.0, 15.0]


def test_patch_merging_pads_odd_sizes_with_zeros():
    merge = PatchMerging(dims=1, norm=False)
    merge.reduction = _identity_linear(4)
    x = torch.ones(1, 3, 3, 1)
    out = merge(x)
    assert out.shape == (1, 2, 2, 4)
    assert out[0, 1, 1].tolist() == [1.0, 0.0, 0.0, 0.0]


def test_patch_embed_pads_bottom_right():
    embed = PatchEmbed(3, 5, 4, norm=False)
    x = torch.randn(1, 3, 6, 7)
    padded = torch.zeros(1, 3, 8, 8)
    padded[..., :6, :7] = x
    assert max_diff(embed(x), embed.proj(padded).permute(0, 2, 3, 1)) == 0


def test_drop_path_rates_rise_linearly_and_are_off_in_eval():
    model = SwinTransformer(depths=(2, 2, 2, 2), drop_path_rate=0.7, drop_rate=0.3, attn_drop_rate=0.3)
    rates = [b.drop_path.p for s in model.stages for b in s.blocks]
    assert rates == pytest.approx([0.7 * i / 7 for i in range(8)])
    model.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(model(x), model(x), strict=True):
            assert torch.equal(a, b)


def test_frozen_stages_follow_mmseg():
    model = SwinTransformer(depths=(1, 1, 1, 1), frozen_stages=2)
    model.train()
    frozen = {
        n.split(".")[0] + ("." + n.split(".")[1] if n.startswith("stages") else "")
        for n, p in model.named_parameters()
        if not p.requires_grad
    }
    assert frozen == {"patch_embed", "stages.0", "stages.1", "norm0", "norm1"}
    assert not model.stages[1].training and model.stages[2].training


def test_gradient_checkpointing_gives_same_gradients():
    torch.manual_seed(0)
    plain = SwinTransformer(embed_dims=16, depths=(2, 2), num_heads=(2, 4), strides=(4, 2), out_indices=(0, 1), drop_path_rate=0)
    cp = SwinTransformer(embed_dims=16, depths=(2, 2), num_heads=(2, 4), strides=(4, 2), out_indices=(0, 1), drop_path_rate=0, with_cp=True)
    cp.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 40, 52)
    for m in (plain, cp):
        sum(o.square().mean() for o in m(x)).backward()
    for (n, a), (_, b) in zip(plain.named_parameters(), cp.named_parameters(), strict=True):
        assert max_diff(a.grad, b.grad) < 1e-6, n


def test_absolute_position_embedding_resizes_to_the_grid():
    model = randomize_(
        SwinTransformer(
            use_abs_pos_embed=True, pretrain_img_size=64, embed_dims=8, depths=(1, 1), num_heads=(1, 1), strides=(4, 2), out_indices=(0, 1)
        )
    ).eval()
    assert model.absolute_pos_embed.shape == (1, 256, 8)
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 40, 96))
    assert outs[0].shape == (1, 8, 10, 24)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(strides=(2, 2, 2, 2)), "patch_size"),
        (dict(strides=(4, 3, 2, 2)), "must all be 2"),
        (dict(num_heads=(3, 6)), "one entry per stage"),
        (dict(num_heads=(5, 6, 12, 24)), "divisible"),
        (dict(out_indices=(4,)), "out_indices"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SwinTransformer(**kwargs)


@settings(max_examples=25, deadline=None)
@given(
    h=st.integers(1, 700),
    w=st.integers(1, 700),
    batch=st.integers(1, 3),
    window=st.integers(1, 9),
    classifier=st.booleans(),
)
def test_any_size_gives_ceil_divided_finite_outputs(h, w, batch, window, classifier):
    model = SwinTransformer(
        embed_dims=8, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4), window_size=window, num_classes=5 if classifier else 0
    ).eval()
    x = torch.randn(batch, 3, h, w)
    with torch.no_grad():
        out = model(x)
        single = model(x[:1])
    if classifier:
        assert out.shape == (batch, 5) and torch.isfinite(out).all()
        assert max_diff(out[:1], single) < 1e-5
        return
    for i, o in enumerate(out):
        stride = 4 * 2**i
        assert o.shape == (batch, 8 * 2**i, math.ceil(h / stride), math.ceil(w / stride))
        assert torch.isfinite(o).all()
        assert max_diff(o[:1], single[i]) < 1e-5


@pytest.mark.parametrize("chunk", ["2048", "8192"])
@pytest.mark.parametrize("attention", ["sdpa", "bmm"])
def test_chunked_eval_equals_the_whole_map_computation(chunk: str, attention: str):
    """Eval mode without gradients on a CPU may work on chunks of windows and tokens (each
    candidate of the chunk operation, with each attention kernel); train mode without
    dropout computes the same on whole maps."""
    torch.manual_seed(0)
    model = SwinTransformer(embed_dims=16, depths=[2, 2], num_heads=[1, 2], strides=[4, 2], out_indices=[0, 1], drop_path_rate=0.0)
    x = torch.randn(2, 3, 300, 333)  # 75 x 84 tokens in stage 1: several chunks, padded windows
    assert 2 * 75 * 84 > int(chunk)
    with torch.no_grad(), ops.forced(chunk=chunk, attention=attention):
        chunked = model.eval()(x)
    with torch.no_grad(), ops.forced(attention="sdpa"):
        whole = model.train()(x)
    for a, b in zip(chunked, whole, strict=True):
        assert (a - b).abs().max() < 1e-5


def test_eval_mode_gradients_with_respect_to_the_image():
    """Saliency-style use: eval mode with gradients takes the unchunked path and still matches
    the no-gradient output."""
    model = randomize_(SwinTransformer(embed_dims=16, depths=(2, 2), num_heads=(2, 4), strides=(4, 2), out_indices=(0, 1))).eval()
    x = torch.randn(1, 3, 61, 45, requires_grad=True)
    outs = model(x)
    sum(o.sum() for o in outs).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    with torch.no_grad():
        for a, b in zip(outs, model(x), strict=True):
            assert max_diff(a, b) < 1e-5


def test_training_after_inference_mode_at_the_same_size():
    """The cached window gathers made under inference mode (validation, predict) must serve a
    later training step at the same size."""
    model = randomize_(SwinTransformer(embed_dims=16, depths=(2, 2), num_heads=(2, 4), strides=(4, 2), out_indices=(0, 1)))
    x = torch.randn(1, 3, 57, 43)
    with torch.inference_mode():
        model.eval()(x)
    outs = model.train()(x)
    sum(o.sum() for o in outs).backward()
    assert all(p.grad is not None for p in model.parameters())


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.integers(1, 3), st.sampled_from([2, 3, 7]))
def test_window_reverse_undoes_window_partition(rows: int, cols: int, batch: int, M: int) -> None:
    x = torch.randn(batch, rows * M, cols * M, 2)
    windows = window_partition(x, M)
    assert windows.shape == (batch, rows * cols, M * M, 2)
    assert torch.equal(windows[0, -1], x[0, -M:, -M:].reshape(M * M, 2))  # the bottom-right window, row by row
    assert torch.equal(windows[0, cols - 1], x[0, :M, -M:].reshape(M * M, 2))  # the top-right one
    assert torch.equal(window_reverse(windows, M, rows * M, cols * M), x)


@pytest.mark.parametrize(("H", "W", "shift"), [(14, 21, 3), (9, 17, 3), (9, 17, 0), (5, 4, 2)])
@pytest.mark.parametrize("chunk", ["whole", "2048"])
def test_the_fast_block_equals_its_plain_steps(H: int, W: int, shift: int, chunk: str) -> None:
    """The block as it runs (pad, shift and partition by two gathers; chunks in inference)
    computes bit for bit what its labelled steps compute (pad, roll, partition, attention,
    reverse, roll back, crop), in inference and, with gradients, in training."""
    torch.manual_seed(0)
    block = randomize_(SwinBlock(16, 2, 7, 4.0, True, None, 0.0, 0.0, 0.0, with_cp=False))
    window = 7
    mask = shift_window_mask(padded(H, window), padded(W, window), window, shift) if shift else None
    x = torch.randn(2, H, W, 16)
    with torch.no_grad():
        with ops.forced(windows="steps"):
            plain = block.eval()(x, window, shift, mask)
        with ops.forced(windows="gather", chunk=chunk):
            fast = block(x, window, shift, mask)
    assert torch.equal(fast, plain)
    grads = []
    for windows in ("steps", "gather"):
        block.zero_grad()
        xg = x.clone().requires_grad_()
        with ops.forced(windows=windows):
            out = block.train()(xg, window, shift, mask)
        out.square().sum().backward()
        grads.append((out.detach(), xg.grad, block.attn.qkv.weight.grad.clone()))
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


def test_pretrain_img_size_must_be_a_size():
    for bad in ((112, 112, 112), (0, 64), -3, (64.5, 64)):
        with pytest.raises(ValueError, match=r"pretrain_img_size(=.*must be an integer >= 1| must be an int or an \(H, W\) pair)"):
            SwinTransformer(
                pretrain_img_size=bad,
                use_abs_pos_embed=True,
                embed_dims=8,
                depths=(1, 1),
                num_heads=(1, 1),
                strides=(4, 2),
                out_indices=(0, 1),
            )
    assert SwinTransformer(pretrain_img_size=(96, 64), use_abs_pos_embed=True, embed_dims=8, depths=(1, 1), num_heads=(1, 1),
                           strides=(4, 2), out_indices=(0, 1)).pos_grid == (24, 16)  # fmt: skip


def test_a_three_stage_classifier_ignores_the_backbones_out_indices():
    model = SwinTransformer(embed_dims=8, depths=(1, 1, 1), num_heads=(1, 1, 2), strides=(4, 2, 2), num_classes=10)
    assert model.num_classes == 10
    with pytest.raises(ValueError, match=r"out_indices \[0, 1, 2, 3\] must lie in 0..2"):
        SwinTransformer(embed_dims=8, depths=(1, 1, 1), num_heads=(1, 1, 2), strides=(4, 2, 2))
