"""Training runs on CPU: exact resume, checkpoints, logs, accumulation, mixed precision."""

from __future__ import annotations

import json

import pytest
import torch

from swinseg.cli import main
from swinseg.engine.checkpoints import latest_checkpoint, load_state
from swinseg.engine.trainer import Trainer
from swinseg.models import build_segmentor
from swinseg.tools.synthetic import write_dataset
from swinseg.weights import load_checkpoint
from swinseg.weights.io import write_file
from tests.helpers import DEMO_CONFIG, tiny_train_config


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("data") / "synthetic", train=8, val=3, size=(48, 64))


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_resumed_run_equals_straight_run(dataset, tmp_path, monkeypatch):
    config = tiny_train_config(dataset, "model.backbone.drop_path_rate=0.2")
    straight = Trainer(config, tmp_path / "straight", progress=False)
    straight.train()

    original = Trainer._checkpoint

    def killed_after_first_checkpoint(self, iteration, keep):
        original(self, iteration, keep)
        if iteration == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "_checkpoint", killed_after_first_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        Trainer(config, tmp_path / "resumed", progress=False).train()
    monkeypatch.setattr(Trainer, "_checkpoint", original)
    assert latest_checkpoint(tmp_path / "resumed").name == "iter_3.pth"
    resumed = Trainer(config, tmp_path / "resumed", resume="auto", progress=False)
    assert resumed.iteration == 3
    resumed.train()

    a, b = _weights(straight.model), _weights(resumed.model)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert straight.optimizer.state_dict()["state"][0]["step"] == resumed.optimizer.state_dict()["state"][0]["step"] == 6
    # the resumed log holds each iteration once
    iters = [r["iter"] for r in map(json.loads, (tmp_path / "resumed/scalars.jsonl").read_text().splitlines()) if r["mode"] == "train"]
    assert iters == [2, 4, 6]


def test_checkpoints_logs_and_best(dataset, tmp_path, capsys):
    config = tiny_train_config(
        dataset,
        "schedule.max_iters=8",
        "train.checkpoint_interval=2",
        "train.max_keep_ckpts=2",
        "train.val_interval=4",
        "train.vis_images=2",
        "test.metrics=[mIoU,mDice]",
    )
    trainer = Trainer(config, tmp_path, progress=True)
    metrics = trainer.train()
    printed = capsys.readouterr().out
    assert f"training {DEMO_CONFIG} on 8 images for 8 iterations" in printed  # the config trained, not its base model
    kernels = load_state(tmp_path / "iter_8.pth")["meta"]["kernels"]  # what resuming applies again
    assert any(key.startswith("attention/cpu/float32/") and key.endswith("-grad") for key in kernels)
    assert sorted(p.name for p in tmp_path.glob("iter_*.pth")) == ["iter_6.pth", "iter_8.pth"]
    assert latest_checkpoint(tmp_path).name == "iter_8.pth"
    assert not list(tmp_path.glob(".*.tmp"))
    state = load_state(tmp_path / "iter_8.pth")
    assert state["iteration"] == 8 and state["meta"]["dataset_meta"]["classes"][0] == "sky"
    best = json.loads((tmp_path / "best.json").read_text())
    assert best["metric"] == "mIoU" and (tmp_path / best["file"]).is_file() and len(list(tmp_path.glob("best_*.pth"))) == 1

    records = [json.loads(line) for line in (tmp_path / "scalars.jsonl").read_text().splitlines()]
    train = [r for r in records if r["mode"] == "train"]
    assert [r["iter"] for r in train] == [2, 4, 6, 8]
    assert {"loss", "decode.loss_ce", "aux.loss_ce", "decode.acc_seg", "aux.acc_seg", "lr", "time", "memory"} <= train[0].keys()
    assert train[-1]["lr"] == pytest.approx(config["optimizer"]["lr"] * (1 - 5 / 5))  # iteration 7 of 8: the last, at eta_min
    val = [r for r in records if r["mode"] == "val"]
    assert [r["iter"] for r in val] == [4, 8] and val[-1]["mIoU"] == metrics["mIoU"]
    assert {"aAcc", "mIoU", "mAcc", "mDice"} <= val[-1].keys() and "table" not in val[-1] and "per_class" not in val[-1]
    events = list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert events
    # the first 2 validation images, prediction | ground truth, at each validation (SegVisualizationHook)
    names = [p[0].stem for p in trainer.val_set.samples[:2]]
    for iteration in (4, 8):
        assert sorted(p.stem for p in (tmp_path / "vis" / f"iter_{iteration}").iterdir()) == sorted(names)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    board = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"images": 0}).Reload()
    assert sorted(board.Tags()["images"]) == sorted(f"val/{n}" for n in names)
    assert [e.step for e in board.Images(f"val/{names[0]}")] == [4, 8] and "val/mDice" in board.Tags()["scalars"]
    assert (tmp_path / "config.yaml").is_file()

    # a training checkpoint loads as a model (swinseg test / predict)
    model = build_segmentor(config)
    report = load_checkpoint(model, tmp_path / "iter_8.pth")
    assert report.format == "native" and torch.equal(
        model.state_dict()["decode_head.conv_seg.weight"], trainer.model.decode_head.conv_seg.weight
    )


def test_accumulation_sees_the_samples_of_a_larger_batch(dataset, tmp_path, monkeypatch):
    # BatchNorm statistics differ between 2 x 1 and 1 x 2 images, so compare with BN in eval mode
    big = Trainer(tiny_train_config(dataset, "data.batch_size=2"), tmp_path / "a", progress=False)
    acc = Trainer(tiny_train_config(dataset, "data.batch_size=1", "train.accumulate=2"), tmp_path / "b", progress=False)
    acc.model.load_state_dict(big.model.state_dict())
    for t in (big, acc):
        monkeypatch.setattr(t.model, "train", lambda mode=True, m=t.model: torch.nn.Module.train(m, False))
    v_big, v_acc = big.train_step(), acc.train_step()
    assert float(v_big["loss"]) == pytest.approx(float(v_acc["loss"]), rel=1e-5)
    for (n, p), q in zip(big.model.named_parameters(), acc.model.parameters(), strict=True):
        assert torch.allclose(p.grad, q.grad, atol=1e-6, rtol=1e-4), n


def test_bf16_and_fp16_steps_run_and_nan_stops(dataset, tmp_path, monkeypatch):
    for amp in ("bf16", "fp16"):
        t = Trainer(tiny_train_config(dataset, f"train.amp={amp}"), tmp_path / amp, progress=False)
        values = t.train_step()
        assert torch.isfinite(torch.tensor(values["loss"]))
        assert t.scaler.is_enabled() == (amp == "fp16")
    t = Trainer(tiny_train_config(dataset), tmp_path / "nan", progress=False)
    monkeypatch.setattr(t.model, "loss", lambda x, y: {"decode.loss_ce": torch.tensor(float("nan"), requires_grad=True)})
    t.train_step()  # nothing waits for the device here; the check before logging, saving or validating stops it
    with pytest.raises(FloatingPointError, match="loss is nan at iteration 1"):
        t.check_finite()
    with pytest.raises(ValueError, match="train.amp='fp8': must be one of null, 'bf16', 'fp16'"):
        Trainer(tiny_train_config(dataset, "train.amp=fp8"), tmp_path / "x", progress=False)


def test_resume_refuses_a_weights_only_file(dataset, tmp_path):
    trainer = Trainer(tiny_train_config(dataset), tmp_path, progress=False)
    path = write_file(trainer._state(full=False), tmp_path / "weights.pth")
    with pytest.raises(ValueError, match="not a training checkpoint"):
        Trainer(tiny_train_config(dataset), tmp_path, resume=path, progress=False)


def test_pretrained_backbone_is_downloaded_and_loaded(dataset, tmp_path, http_server, swinseg_home):
    import swinseg

    config = tiny_train_config(dataset)
    backbone = swinseg.SwinTransformer(**{**config["model"]["backbone"], "drop_path_rate": 0.0})
    torch.nn.init.normal_(backbone.patch_embed.proj.weight)
    www, url = http_server
    swinseg.save_checkpoint(backbone, www / "backbone.pth")
    trainer = Trainer(tiny_train_config(dataset, f"pretrained={url}/backbone.pth"), tmp_path, progress=False)
    assert torch.equal(trainer.model.backbone.patch_embed.proj.weight, backbone.patch_embed.proj.weight)
    assert list((swinseg_home / "checkpoints").glob("backbone.pth"))


def test_logged_time_is_per_iteration_after_the_device_finishes(tmp_path, monkeypatch):
    """A GPU queues work and returns: the logged time waits for the device, spans the window's
    iterations and leaves out what came between windows (validation, checkpoints)."""
    from swinseg.engine import logger as logger_module

    now, waits = [100.0], []
    monkeypatch.setattr(logger_module.time, "perf_counter", lambda: now[0])
    monkeypatch.setattr(logger_module, "synchronize", lambda device: waits.append(device))
    log = logger_module.TrainLogger(tmp_path, max_iters=8, start_iter=0, interval=4, progress=False)
    for _ in range(4):
        now[0] += 0.5
        log.update({"lr": 0.1, "loss": torch.tensor(1.0)})
    log.log(4, torch.device("cpu"))
    now[0] += 30.0  # a validation
    log.restart_clock()
    for _ in range(4):
        now[0] += 0.25
        log.update({"lr": 0.1, "loss": torch.tensor(1.0)})
    log.log(8, torch.device("cpu"))
    log.close()
    times = [json.loads(line)["time"] for line in (tmp_path / "scalars.jsonl").read_text().splitlines()]
    assert times == [0.5, 0.25] and len(waits) == 2


@pytest.fixture
def tf32_flags():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = False, True
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def test_tf32_is_set_only_when_asked_and_a_bad_value_is_named(dataset, tmp_path, tf32_flags, capsys):
    Trainer(tiny_train_config(dataset), tmp_path / "a", device="cpu", progress=False)
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == (False, True)  # PyTorch's defaults kept
    Trainer(tiny_train_config(dataset, "train.tf32=true"), tmp_path / "b", device="cpu", progress=False)
    assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    assert "train.tf32=true applies to NVIDIA GPUs only" in capsys.readouterr().err
    with pytest.raises(ValueError, match="train.tf32='fast': must be one of null, true, false"):
        Trainer(tiny_train_config(dataset, "train.tf32=fast"), tmp_path / "c", device="cpu", progress=False)


def test_a_refused_run_leaves_no_empty_work_dir(dataset, tmp_path):
    work = tmp_path / "work"
    bad_schedule = tiny_train_config(dataset, "schedule.warmup_iters=100", "schedule.max_iters=6")
    with pytest.raises(ValueError, match="warmup"):
        Trainer(bad_schedule, work, device="cpu", progress=False)
    assert not work.exists()
    (tmp_path / "kept").mkdir()
    with pytest.raises(ValueError, match="warmup"):
        Trainer(bad_schedule, tmp_path / "kept", device="cpu", progress=False)
    assert (tmp_path / "kept").is_dir()  # a folder that was there stays


def test_eta_follows_the_recent_pace_and_kernels_are_summarized(tmp_path, monkeypatch, capsys):
    """The ETA at iteration 50 said 0:41:42 for a 5-minute run (the first window's start-up
    counted); the Kernels line was ~4 KB."""
    from swinseg.engine import logger as logger_module

    now = [0.0]
    monkeypatch.setattr(logger_module.time, "perf_counter", lambda: now[0])
    log = logger_module.TrainLogger(tmp_path, max_iters=100, start_iter=0, interval=10, progress=False)
    for step in range(30):
        now[0] += 60.0 if step == 0 else 1.0  # a slow first iteration (start-up)
        log.update({"lr": 0.1, "loss": torch.tensor(1.0)})
        if (step + 1) % 10 == 0:
            log.log(step + 1, torch.device("cpu"))
    log.log_kernels(30, {"attention/cpu/float32/N49-w4": "sdpa", "attention/cpu/float32/N49-w8": "bmm", "linear/cpu/float32/96-96": "aten"})
    log.close()
    lines = capsys.readouterr().out.splitlines()
    assert "eta: 0:01:10" in lines[2]  # 70 iterations left at 1 s each
    assert lines[3].endswith("3 new choices: attention bmm x1, attention sdpa x1, linear aten x1 (all in kernels.jsonl)")
    assert json.loads((tmp_path / "kernels.jsonl").read_text())["choices"]["linear/cpu/float32/96-96"] == "aten"


def test_a_bad_pipeline_value_stops_training_before_it_starts(tmp_path, capsys):
    from swinseg.tools.synthetic import write_dataset

    root = write_dataset(tmp_path / "data", train=1, val=1, size=(48, 64))
    args = ["train", DEMO_CONFIG, "--work-dir", str(tmp_path / "w"), "--set", "data.pipeline.flip_prob=1.5", f"data.root={root}"]
    assert main(args) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == "error: data.pipeline.flip_prob=1.5: must be a finite number in [0, 1]"
    assert not (tmp_path / "w" / "iter_1.pth").exists()


def test_the_trainer_resolves_its_config_once(dataset, tmp_path, monkeypatch):
    """The trainer resolves and checks the config, then passes it on: building the model does not
    resolve it again."""
    from swinseg.configs import load_config
    from swinseg.models import factory
    from tests.helpers import TINY_OVERRIDES

    checks = []
    real = factory.check_rules
    monkeypatch.setattr(factory, "check_rules", lambda *a, **k: (checks.append(a[0]), real(*a, **k))[1])
    config = load_config(DEMO_CONFIG, [f"data.root={dataset}", *TINY_OVERRIDES])
    trainer = Trainer(config, tmp_path / "w", progress=False)
    assert len(checks) == 1
    assert trainer.model.backbone.config["embed_dims"] == checks[0]["model"]["backbone"]["embed_dims"]
