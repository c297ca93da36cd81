"""The heads' building blocks (the heads' outputs are checked against HF and MMSegmentation in
test_upernet_reference.py and test_mmseg_parity.py)."""

from __future__ import annotations

import pytest
import torch

from swinseg import ops
from swinseg.models.heads import ConvModule, FCNHead, resize


@pytest.mark.parametrize("kernel", [1, 3])
def test_forward_concat_equals_the_convolution_of_the_concatenation(kernel: int) -> None:
    torch.manual_seed(0)
    module = ConvModule(11, 5, kernel).double().train()
    side = 48
    parts = [torch.randn(2, c, side, side, dtype=torch.float64, requires_grad=True) for c in (4, 2, 5)]

    with ops.forced(conv3x3="direct"):  # the reference: PyTorch's kernel on the concatenation
        expected = module(torch.cat(parts, dim=1))
        expected_grads = torch.autograd.grad(expected.square().sum(), [*parts, module.conv.weight])
    with ops.forced(conv3x3="winograd"):  # the parts go through it one by one
        got = module.forward_concat(iter(parts))
        grads = torch.autograd.grad(got.square().sum(), [*parts, module.conv.weight])

    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    for g, e in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-11, atol=1e-11)
    with torch.no_grad():
        torch.testing.assert_close(module.eval().forward_concat(iter(parts)), module(torch.cat(parts, dim=1)))


def test_forward_concat_backward_finishes_each_part_before_the_next() -> None:
    """With a generator of resized maps, the backward pass takes each part's gradient through its
    resize before it makes the next part's (so one part's gradient exists at a time)."""
    module = ConvModule(6, 4, 3).train()
    sources = [torch.randn(1, 2, s, s, requires_grad=True) for s in (8, 4, 2)]
    events: list[str] = []
    for i, source in enumerate(sources):
        source.register_hook(lambda g, i=i: events.append(f"source {i}"))

    def resized():
        for i, source in enumerate(sources):
            part = resize(source, (8, 8))
            if part.grad_fn is not None:
                part.register_hook(lambda g, i=i: events.append(f"part {i}"))
            yield part

    module.forward_concat(resized()).sum().backward()
    assert events == ["part 2", "source 2", "part 1", "source 1", "source 0"]


def test_forward_concat_names_a_channel_mismatch() -> None:
    module = ConvModule(6, 4, 3)
    with pytest.raises(ValueError, match="5 channels in all, the convolution takes 6"):
        module.forward_concat(iter([torch.randn(1, 2, 8, 8), torch.randn(1, 3, 8, 8)]))


def test_fcn_head_needs_a_non_negative_number_of_convolutions():
    with pytest.raises(ValueError, match="FCNHead: num_convs=-1: must be an integer >= 0"):
        FCNHead(in_channels=8, channels=8, num_convs=-1, num_classes=3)
