"""Iteration-based training of a segmentor from a resolved config (:func:`swinseg.configs.load_config`),
in one process or many (``torchrun``): the Swin configs' recipe, checkpoints that resume
exactly, periodic validation, logs."""

from __future__ import annotations

import contextlib
import math
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from .. import ops
from ..configs import dump_config
from ..data.dataset import build_dataset, train_pipeline
from ..data.loader import TrainSet, build_train_loader
from ..files import WriteError, atomic_write, check_writable, exclusive, removed_if_left_empty
from ..models.factory import build_segmentor, resolve_config
from ..predict import PredictOptions, predict
from ..visualize import side_by_side
from ..weights import load_checkpoint, native_meta
from .checkpoints import BestKeeper, latest_checkpoint, load_state, prune, rng_state, save_state, set_rng_state
from .distributed import get_rank, get_world_size, init_distributed, rank_zero_first, sync_batchnorm, wrap_ddp
from .evaluate import evaluate
from .logger import TrainLogger, read_scalars
from .metrics import IoUMetric, config_metrics
from .optim import WarmupPolyLR, build_optimizer

__all__ = ["Trainer", "AMP_DTYPES"]

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class Trainer:
    """Everything a run needs, built from ``config``; :meth:`train` runs it.

    ``resume``: None (start fresh), ``"auto"`` (the newest checkpoint in ``work_dir``, if any)
    or a checkpoint path. Under ``torchrun`` each process trains ``data.batch_size`` images per
    step on its own device, with DistributedDataParallel and synchronized BatchNorm.
    """

    def __init__(
        self,
        config: dict[str, Any],
        work_dir: str | Path,
        *,
        resume: str | Path | None = None,
        device: str | None = None,
        progress: bool = True,
    ) -> None:
        self.config = config = resolve_config(config)
        self.work_dir = Path(work_dir)
        with removed_if_left_empty(self.work_dir):  # a refused run leaves no empty work dir behind
            self._build(config, resume, device, progress)

    def _build(self, config: dict[str, Any], resume: str | Path | None, device: str | None, progress: bool) -> None:
        self.device = init_distributed(device)
        self.rank, self.world_size = get_rank(), get_world_size()
        if self.rank == 0:
            check_writable(self.work_dir, "work dir")
        self.progress = progress
        train_cfg, data_cfg = config["train"], config["data"]
        config_metrics(config)
        self._seed(train_cfg["seed"])
        self._set_tf32(train_cfg["tf32"])

        self.model = build_segmentor(config)
        model_cfg = config["model"]
        classes, ignore = model_cfg["decode_head"]["num_classes"], model_cfg["ignore_index"]
        self.train_set = build_dataset(data_cfg, "train", classes, ignore)
        self.val_set = build_dataset(data_cfg, "val", classes, ignore)
        self.model.dataset_meta = self.train_set.dataset_meta
        self.schedule = WarmupPolyLR(**config["schedule"])
        self.iteration = 0
        self.skipped_samples = 0
        self._unchecked: list[tuple[int, torch.Tensor]] = []  # (iteration, loss) not yet checked for NaN/Inf
        resume_path = self._resume_path(resume)
        if config["pretrained"] and resume_path is None:
            with rank_zero_first():
                report = load_checkpoint(self.model, config["pretrained"])
            self._print(f"initialized from {config['pretrained']}: {report}")
        self.model = sync_batchnorm(self.model, self.device).to(self.device)
        self.optimizer = build_optimizer(self.model, **config["optimizer"])
        self.amp = AMP_DTYPES.get(train_cfg["amp"])
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp is torch.float16)
        self.ddp = wrap_ddp(self.model, self.device) if self.world_size > 1 else None
        if resume_path is not None:
            self._load(resume_path)
        self.best = BestKeeper(self.work_dir, train_cfg["save_best"])
        pre = model_cfg["data_preprocessor"]
        self.batches = build_train_loader(
            TrainSet(self.train_set, train_pipeline(config), train_cfg["seed"], data_cfg["skip_bad_samples"]),
            data_cfg["batch_size"],
            pre["size"],
            pre["pad_val"],
            pre["seg_pad_val"],
            data_cfg["num_workers"],
            self.rank,
            self.world_size,
            start=self.iteration * train_cfg["accumulate"] * data_cfg["batch_size"],
        )

    # --- set-up ----------------------------------------------------------------------------
    def _seed(self, seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)

    def _set_tf32(self, tf32: bool | None) -> None:
        """``train.tf32``: None keeps PyTorch's default (TF32 off for matmuls, on for cuDNN)."""
        if tf32 is None:
            return
        if self.device.type != "cuda":
            print(f"warning: train.tf32={str(tf32).lower()} applies to NVIDIA GPUs only, not to {self.device}", file=sys.stderr)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32

    def _print(self, text: str) -> None:
        if self.rank == 0:
            print(text, flush=True)

    def _resume_path(self, resume: str | Path | None) -> Path | None:
        if resume is None:
            return None
        if str(resume) == "auto":
            path = latest_checkpoint(self.work_dir)
            if path is None:
                self._print(f"no checkpoint in {self.work_dir} to resume from: starting from scratch")
            return path
        path = Path(resume)
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint to resume from {path} does not exist")
        return path

    def _load(self, path: Path) -> None:
        state = load_state(path)
        self.model.load_state_dict(state["state_dict"])
        self.optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler") and self.scaler.is_enabled():
            self.scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        ops.restore(state["meta"].get("kernels", {}))
        self.iteration = int(state["iteration"])
        self._print(f"resumed from {path} at iteration {self.iteration}")

    def _state(self, full: bool = True) -> dict[str, Any]:
        meta = {**native_meta(self.model), "iteration": self.iteration, "kernels": ops.choices()}
        state: dict[str, Any] = {"state_dict": self.model.state_dict(), "meta": meta}
        if full:
            state |= {
                "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
                "rng": rng_state(),
                "iteration": self.iteration,
            }
        return state

    # --- one optimizer step ----------------------------------------------------------------
    def train_step(self) -> dict[str, float | torch.Tensor]:
        """Forward, backward and update over ``train.accumulate`` batches; the learning rate and
        the step's losses and accuracies (averaged over the micro-batches) as 0-d tensors on the
        device: nothing here waits for the device. :meth:`check_finite` checks the losses.
        Gradients stay in the parameters until the next step."""
        accumulate = self.config["train"]["accumulate"]
        lr = self.schedule.apply(self.optimizer, self.iteration)
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        logged: list[dict[str, torch.Tensor]] = []
        net = self.ddp or self.model
        for micro in range(accumulate):
            inputs, labels, skipped = next(self.batches)
            inputs, labels = inputs.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True)
            for error in skipped:
                tqdm.write(f"warning: skipped a bad training sample: {error}", file=sys.stderr)
            self.skipped_samples += len(skipped)
            sync = contextlib.nullcontext() if self.ddp is None or micro == accumulate - 1 else self.ddp.no_sync()
            with sync:
                with torch.autocast(self.device.type, dtype=self.amp, enabled=self.amp is not None):
                    losses = net(inputs, labels)
                loss = sum(v for k, v in losses.items() if "loss" in k)
                self.scaler.scale(loss / accumulate).backward()
            logged.append({"loss": loss.detach(), **{k: v.detach() for k, v in losses.items()}})
        keys = list(logged[0])
        means = torch.stack([torch.stack([m[k].float() for k in keys]) for m in logged]).mean(0)
        if not self.scaler.is_enabled():  # the fp16 scaler skips non-finite steps itself
            self._unchecked.append((self.iteration + 1, means[0]))
        clip = self.config["train"]["clip_grad"]
        if clip:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.iteration += 1
        return {"lr": lr, **dict(zip(keys, means.unbind(), strict=True))}

    def check_finite(self) -> None:
        """Stop on a NaN or Inf loss of any step since the last check: one wait for the device
        for all of them (the trainer checks before it logs, saves or validates, so that no
        checkpoint ever holds the weights a non-finite step produced)."""
        if not self._unchecked:
            return
        iterations, losses = zip(*self._unchecked, strict=True)
        self._unchecked = []
        for iteration, loss in zip(iterations, torch.stack(losses).tolist(), strict=True):
            if not math.isfinite(loss):
                raise FloatingPointError(
                    f"loss is {loss} at iteration {iteration}: stopping "
                    f"(the last checkpoint, {latest_checkpoint(self.work_dir) or 'none'}, is intact)"
                )

    # --- the run -----------------------------------------------------------------------------
    def validate(self) -> IoUMetric:
        with _cudnn_benchmark(False):  # keep-ratio sizes vary: no autotuning per size
            options = PredictOptions.from_config(self.config)
            return evaluate(self.model, self.val_set, options, metrics=self.config["test"]["metrics"], progress=self.progress)

    def train(self) -> dict[str, Any] | None:
        """Train to ``schedule.max_iters``; returns the last validation's metrics (None if none ran).
        The work dir is held for the run (:func:`swinseg.files.exclusive`): a second run on it
        stops at once with the holder's PID."""
        # training crops have one size: cuDNN times its algorithms once and keeps the fastest
        with exclusive(self.work_dir) if self.rank == 0 else contextlib.nullcontext(), _cudnn_benchmark(True):
            return self._train()

    def _train(self) -> dict[str, Any] | None:
        cfg = self.config["train"]
        max_iters = self.schedule.max_iters
        if self.rank == 0:
            atomic_write(self.work_dir / "config.yaml", lambda tmp: tmp.write_text(dump_config(self.config)))
        logger = TrainLogger(self.work_dir, max_iters, self.iteration, cfg["log_interval"], self.rank == 0, self.progress)
        global_batch = self.config["data"]["batch_size"] * self.world_size * cfg["accumulate"]
        self._print(
            f"training {Path(self.config['source']).stem} on {len(self.train_set)} images for {max_iters} iterations "
            f"({self.world_size} process(es) x {self.config['data']['batch_size']} x {cfg['accumulate']} accumulation = "
            f"global batch {global_batch}) on {self.device}; work dir {self.work_dir}"
        )
        last_metrics = None
        logged_kernels = ops.choices()  # a resumed run's were logged before its checkpoint
        try:
            if self.iteration and self._validation_due(self.iteration) and not self._validated(self.iteration):
                last_metrics = self._validate_and_keep_best(self.iteration, logger)  # a kill interrupted it
            while self.iteration < max_iters:
                logger.update(self.train_step())
                it = self.iteration
                log_due = it % cfg["log_interval"] == 0 or it == max_iters
                checkpoint_due = bool(cfg["checkpoint_interval"] and it % cfg["checkpoint_interval"] == 0) or it == max_iters
                if log_due or checkpoint_due or self._validation_due(it):
                    self.check_finite()
                if log_due:
                    logger.log(it, self.device)
                    logger.log_kernels(it, dict(ops.choices().items() - logged_kernels.items()))
                    logged_kernels = ops.choices()
                if checkpoint_due:
                    self._checkpoint(it, cfg["max_keep_ckpts"])
                if self._validation_due(it):
                    last_metrics = self._validate_and_keep_best(it, logger)
                if checkpoint_due or self._validation_due(it):
                    logger.restart_clock()
        finally:
            logger.close()
            if self.skipped_samples:
                print(f"warning: {self.skipped_samples} bad training sample(s) were skipped (rank {self.rank})", file=sys.stderr)
        return last_metrics

    def _validation_due(self, iteration: int) -> bool:
        interval = self.config["train"]["val_interval"]
        return bool(interval and iteration % interval == 0) or iteration == self.schedule.max_iters

    def _validated(self, iteration: int) -> bool:
        scalars = self.work_dir / "scalars.jsonl"
        return scalars.is_file() and any(r.get("mode") == "val" and r.get("iter") == iteration for r in read_scalars(scalars))

    def _validate_and_keep_best(self, iteration: int, logger: TrainLogger) -> dict[str, Any]:
        """Validate, keep the best model, then log (so that a run killed before the log line
        validates again when resumed)."""
        metric = self.validate()
        metrics = metric.compute()
        if self.rank == 0:
            self.best.update(iteration, metrics, self._state(full=False))
            logger.log_images(iteration, self._pictures())
        logger.log_val(iteration, metrics, metric.table(metrics))
        return metrics

    def _pictures(self) -> dict[str, np.ndarray]:
        """The first ``train.vis_images`` validation images, prediction | ground truth, by name."""
        options = PredictOptions.from_config(self.config)
        pictures = {}
        for i in range(min(self.config["train"]["vis_images"], len(self.val_set))):
            image, label = self.val_set[i]
            prediction = predict(self.model, image, options)[0].numpy()
            name = self.val_set.samples[i][0].relative_to(self.val_set.img_dir).with_suffix("")
            pictures[str(name)] = side_by_side(image, prediction, label, self.val_set.classes, self.val_set.palette)
        return pictures

    def _checkpoint(self, iteration: int, keep: int) -> None:
        state = self._state()
        if self.rank == 0:
            try:
                save_state(self.work_dir, iteration, state)
            except WriteError as e:
                last = latest_checkpoint(self.work_dir)
                raise WriteError(f"{e}; the last checkpoint, {last or 'none'}, is intact: free space, then resume", e.errno) from None
            prune(self.work_dir, keep)
        if self.world_size > 1:
            dist.barrier()


@contextlib.contextmanager
def _cudnn_benchmark(on: bool) -> Iterator[None]:
    """``torch.backends.cudnn.benchmark`` set to ``on`` within the block."""
    saved = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = on
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = saved
