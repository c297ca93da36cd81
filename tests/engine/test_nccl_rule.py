"""Collectives on GPUs, emulated on a CPU: NCCL reduces CUDA tensors only, so a CPU tensor in a
collective of a group created as plain ``"nccl"`` raises. The group swinseg creates on GPUs
must still let every collective it makes on CPU data work (validation's IoU counts, barriers)."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist

from swinseg.engine import distributed
from swinseg.engine.evaluate import evaluate
from swinseg.engine.metrics import IoUMetric
from swinseg.tools.synthetic import write_dataset
from tests.helpers import tiny_train_config


def _device_types(backend: str) -> set[str]:
    """The device types a backend string serves: ``"nccl"`` -> {cuda}; ``"cpu:gloo,cuda:nccl"`` -> {cpu, cuda}."""
    if ":" not in backend:
        return {"cuda"} if backend == "nccl" else {"cpu", "cuda"}
    return {item.split(":")[0] for item in backend.split(",")}


@pytest.fixture
def emulated_gpu_group(monkeypatch, request):
    """``init_distributed("cuda")`` under torchrun's environment, on a one-process gloo group that
    refuses, as NCCL does, tensors of a device type without a backend in the requested string."""
    served: set[str] = set()
    real_init = dist.init_process_group

    def init(backend, **kwargs):
        served.update(_device_types(backend))
        real_init("gloo", store=dist.HashStore(), rank=0, world_size=1)

    def refusing(collective):
        def call(tensor, *args, **kwargs):
            tensors = tensor if isinstance(tensor, list) else [tensor]
            for t in tensors:
                if t.device.type not in served:
                    raise RuntimeError(f"No backend type associated with device type {t.device.type}")
            return collective(tensor, *args, **kwargs)

        return call

    monkeypatch.setattr(dist, "init_process_group", init)
    for name in ("all_reduce", "broadcast", "reduce", "all_gather"):
        monkeypatch.setattr(dist, name, refusing(getattr(dist, name)))
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: None)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")
    if getattr(request, "param", None):
        monkeypatch.setitem(distributed.BACKENDS, "cuda", request.param)
    device = distributed.init_distributed("cuda")
    yield device, served
    distributed.close_distributed()


@pytest.mark.parametrize("emulated_gpu_group", ["nccl"], indirect=True)
def test_the_emulation_refuses_cpu_counts_in_a_plain_nccl_group(emulated_gpu_group):
    """What a group created as plain "nccl" did at the first validation of an 8-GPU run."""
    metric = IoUMetric(3)
    with pytest.raises(RuntimeError, match="No backend type associated with device type cpu"):
        metric.all_reduce()


def test_validation_counts_reduce_in_the_group_made_for_gpus(emulated_gpu_group, tmp_path):
    device, served = emulated_gpu_group
    assert device == torch.device("cuda", 0)
    metric = IoUMetric(3)
    metric.update(torch.tensor([[0, 1], [2, 2]]), torch.tensor([[0, 1], [2, 1]]))
    metric.all_reduce()  # raised "No backend type associated with device type cpu" with plain "nccl"
    assert metric.areas[0].tolist() == [1, 1, 1]

    from swinseg.models import build_segmentor

    config = tiny_train_config(write_dataset(tmp_path / "data", train=1, val=2, size=(32, 40)))
    model = build_segmentor(config).eval()
    from swinseg.data.dataset import build_dataset

    val = build_dataset(config["data"], "val", model.num_classes, model.ignore_index)
    with distributed.rank_zero_first():
        result = evaluate(model, val, progress=False).compute()
    dist.barrier()
    assert 0 <= result["aAcc"] <= 100
    distributed.close_distributed()
    assert not dist.is_initialized()


def test_a_resume_on_fewer_gpus_restores_the_states_of_those_that_exist(monkeypatch):
    """A checkpoint of an 8-GPU machine holds 8 CUDA generator states; a machine with 2 GPUs
    restores the first 2 (``set_rng_state_all`` raised IndexError)."""
    from swinseg.engine.checkpoints import rng_state, set_rng_state

    restored = {}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    state = rng_state()
    state["cuda"] = [torch.full((16,), i, dtype=torch.uint8) for i in range(8)]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda s, device: restored.__setitem__(device, int(s[0])))
    set_rng_state(state)
    assert restored == {0: 0, 1: 1}
