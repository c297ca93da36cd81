"""Synchronized BatchNorm where several processes train (the two-process run is test_ddp.py)."""

from __future__ import annotations

import torch
from torch import nn

import swinseg
from swinseg.engine import distributed

SMALL = dict(backbone=dict(embed_dims=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2]), decode_head=dict(channels=8))
NAME = "swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512"


def _kinds(model):
    return {type(m) for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)}


def test_one_process_keeps_batchnorm():
    model = distributed.sync_batchnorm(swinseg.create_model(NAME, **SMALL), "cuda")
    assert _kinds(model) == {nn.BatchNorm2d}


def test_several_gpu_processes_get_syncbatchnorm(monkeypatch):
    monkeypatch.setattr(distributed, "get_world_size", lambda: 8)
    model = distributed.sync_batchnorm(swinseg.create_model(NAME, **SMALL), "cuda:0")
    assert _kinds(model) == {nn.SyncBatchNorm}
    model = swinseg.create_model(NAME, **SMALL)
    before = model.state_dict()
    cpu = distributed.sync_batchnorm(model, "cpu")
    assert _kinds(cpu) == {distributed.CPUSyncBatchNorm}
    after = cpu.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


def test_cpu_syncbatchnorm_in_one_process_is_batchnorm():
    torch.manual_seed(0)
    bn, sync = nn.BatchNorm2d(3), distributed.CPUSyncBatchNorm(3)
    x = torch.randn(2, 3, 5, 4)
    assert torch.equal(bn(x), sync(x)) and torch.equal(bn.running_var, sync.running_var)
