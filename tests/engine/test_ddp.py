"""Two CPU processes (gloo) train and evaluate as one process with the same global batch."""

from __future__ import annotations

import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from swinseg.engine.evaluate import evaluate
from swinseg.engine.trainer import Trainer
from swinseg.tools.synthetic import write_dataset
from tests.helpers import tiny_train_config

NO_DROPOUT = ["model.decode_head.dropout_ratio=0", "model.auxiliary_head.dropout_ratio=0", "model.backbone.drop_path_rate=0"]


def _run(root, work, batch_size):
    """One training step in float64 (so that what is compared is the arithmetic, not float32
    rounding, which BatchNorm's cancellations amplify), then evaluation in float32."""
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    try:
        trainer = Trainer(tiny_train_config(root, f"data.batch_size={batch_size}", *NO_DROPOUT), work, device="cpu", progress=False)
        batches = trainer.batches
        trainer.batches = ((x.double(), y, skipped) for x, y, skipped in batches)
        values = trainer.train_step()
    finally:
        torch.set_default_dtype(torch.float32)
    grads = {n: p.grad.clone() for n, p in trainer.model.named_parameters()}
    metric = evaluate(trainer.model.float(), trainer.val_set, progress=False)
    return {"values": values, "grads": grads, "areas": metric.areas, "confusion": metric.confusion, "state": trainer.model.state_dict()}


def _worker(rank, world_size, root, work, port):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    result = _run(root, work / f"rank{rank}", batch_size=1)
    losses = torch.tensor([result["values"]["loss"]], dtype=torch.float64)
    dist.all_reduce(losses)
    result["values"]["loss"] = losses.item() / world_size  # the global batch's mean loss
    torch.save(result, work / f"rank{rank}.pt")
    dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_equal_one_process_with_the_same_global_batch(tmp_path):
    root = write_dataset(tmp_path / "data", train=6, val=5, size=(48, 64))
    mp.spawn(_worker, args=(2, root, tmp_path, _free_port()), nprocs=2)
    single = _run(root, tmp_path / "single", batch_size=2)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]

    assert abs(ranks[0]["values"]["loss"] - single["values"]["loss"]) < 1e-5
    for name, grad in single["grads"].items():
        for ddp in ranks:
            assert (ddp["grads"][name] - grad).abs().max() < 1e-5, name
    # after the AdamW step the weights and the synchronized BatchNorm statistics agree as well
    for name, value in single["state"].items():
        assert torch.allclose(ranks[0]["state"][name].float(), value.float(), atol=1e-5), name
    # evaluation: each rank a shard, counts summed
    assert torch.equal(ranks[0]["areas"], single["areas"]) and torch.equal(ranks[1]["areas"], single["areas"])
    assert single["areas"][3].sum() > 0
    assert all(torch.equal(r["confusion"], single["confusion"]) for r in ranks) and single["confusion"].sum() == single["areas"][3].sum()
