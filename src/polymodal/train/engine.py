"""The one training loop: a model, an objective and batches.

    engine = Engine(model, objective, batches, optim=cfg.optim, train=cfg.train, out=folder)
    engine.fit()

What it owns, for every model and objective: the device (``train.device``: the model, its
optimiser state and every batch live there; under torchrun each process takes its LOCAL_RANK's
GPU), AdamW with warmup + cosine (fused on CUDA), bf16 autocast, gradient accumulation
(``train.accum_freq``), gradient clipping, DDP or FSDP2 under torchrun, batches prepared ahead by
DataLoader workers (``train.loader_workers``), a NaN guard that names the step and keeps the last
good checkpoint, atomic device-independent checkpoints with exact resume (model, optimiser,
scheduler, RNG, step), JSONL metrics and ``run_info.json``.

* ``batches(step) → dict`` — this process's batch of global step ``step`` (a pure function of the
  step, so a resumed run sees the batches an uninterrupted one would); a ``"skipped"`` entry lists
  bad samples to report.
* ``objective`` — a :class:`polymodal.objectives.Objective`: ``loss(model, batch) → (loss, logs)``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist
from torch import nn

from ..devices import resolve, to_device
from ..objectives import Objective
from ..fileio import atomic_write
from .config import ConfigError, OptimConfig, TrainConfig
from .metrics_log import MetricsLog
from .optim import param_groups, warmup_cosine
from .sharding import full_state, load_full_state, reduce_replicated_grads, shard

CHECKPOINT = "latest.pt"


class TrainingError(RuntimeError):
    """Training stopped (NaN loss, unusable checkpoint); the message says where."""


def distributed(device: str = "auto") -> tuple[int, int]:
    """(rank, world size), starting the process group under torchrun: NCCL when this process trains
    on its GPU (``device`` resolves to CUDA), Gloo on CPUs."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        where = resolve(device)
        if where.type == "cuda":
            torch.cuda.set_device(where)  # before NCCL starts, so each rank's communicator uses its GPU
        dist.init_process_group("nccl" if where.type == "cuda" else "gloo")
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class Engine:
    """Trains ``model`` in place. ``out`` None: no checkpoints, metrics files or run info (an
    in-memory run, e.g. one encoder of the binding recipe); ``identity`` is stored in checkpoints
    and must match on resume (e.g. the model's config)."""

    def __init__(self, model: nn.Module, objective: Objective, batches: Callable[[int], dict], *,
                 optim: OptimConfig, train: TrainConfig, out: str | Path | None = None, identity: dict | None = None,
                 rank: int = 0, world_size: int = 1):
        self.model, self.objective, self.batches = model, objective, batches
        self.optim_cfg, self.train_cfg = optim, train
        self.out = Path(out) if out is not None else None
        self.identity = identity
        self.rank, self.world_size = rank, world_size
        self.device = resolve(train.device)
        self.check_micro_batches = self.device.type == "cpu"  # elsewhere: once per step, see train_step
        if train.accum_freq < 1 or (train.batch_size // world_size) % train.accum_freq:
            raise ConfigError(f"train.accum_freq {train.accum_freq} must be ≥ 1 and divide the per-process batch "
                              f"{train.batch_size // world_size}")
        if train.fsdp:
            if world_size < 2:
                raise ConfigError("train.fsdp=true shards the model across processes: start the run with "
                                  "torchrun --nproc_per_node N (N ≥ 2)")
            model.to(self.device)
            self.wrapped = shard(model, self.device)  # in place: self.model is the sharded model
        else:
            model.to(self.device)
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.wrapped = nn.parallel.DistributedDataParallel(model, device_ids=ids) if world_size > 1 else model
        self._write_run_info()
        # Fused AdamW: one kernel for the whole update on CUDA (the CPU keeps the foreach default).
        self.optimizer = torch.optim.AdamW(param_groups(model, optim.weight_decay), lr=optim.lr,
                                           betas=(optim.beta1, optim.beta2), eps=optim.eps,
                                           fused=True if self.device.type == "cuda" else None)
        self.scheduler = warmup_cosine(self.optimizer, optim.warmup_steps, train.steps)
        self.step = 0
        self.resume()

    # ----------------------------------------------------------------- checkpoints
    def _write_run_info(self) -> None:
        """``run_info.json``: how the run is parallelised and how many parameter elements this
        process holds (under FSDP about 1/N of them: the proof that they are sharded)."""
        local = sum(p.to_local().numel() if hasattr(p, "to_local") else p.numel() for p in self.model.parameters())
        if self.rank == 0 and self.out is not None:
            info = {"processes": self.world_size,
                    "parallel": "fsdp" if self.train_cfg.fsdp else ("ddp" if self.world_size > 1 else "none"),
                    "parameters": sum(p.numel() for p in self.model.parameters()), "local_parameters": local}
            (self.out / "run_info.json").write_text(json.dumps(info, indent=1))

    @property
    def checkpoint_path(self) -> Path | None:
        return self.out / "checkpoints" / CHECKPOINT if self.out is not None else None

    def resume(self) -> None:
        path = self.checkpoint_path
        if path is None or not path.is_file():
            return
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 — any unreadable file is reported the same way
            raise TrainingError(f"cannot resume from {path}: {e}") from e
        if state.get("model_config") != self.identity:
            raise TrainingError(f"{path} holds a checkpoint of a different model "
                                f"({(state.get('model_config') or {}).get('family')}); use another train.out")
        if self.train_cfg.fsdp:
            load_full_state(self.model, self.optimizer, state["model"], state["optimizer"])
        else:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        if self.device.type == "cuda" and "cuda_rng" in state:  # absent in a run from a CPU
            torch.cuda.set_rng_state(state["cuda_rng"], self.device)
        self.step = state["step"]

    def save_checkpoint(self) -> None:
        if self.out is None:
            return
        if self.train_cfg.fsdp:  # every process takes part in gathering the full state
            model_state, optim_state = full_state(self.model, self.optimizer)
        elif self.rank == 0:  # on the CPU: the file does not say which device wrote it
            cpu = torch.device("cpu")
            model_state, optim_state = to_device(self.model.state_dict(), cpu), to_device(self.optimizer.state_dict(), cpu)
        if self.rank != 0:
            return
        folder = self.out / "checkpoints"
        folder.mkdir(exist_ok=True)
        state = {"model": model_state, "optimizer": optim_state, "scheduler": self.scheduler.state_dict(),
                 "rng": torch.get_rng_state(), "step": self.step, "model_config": self.identity}
        if self.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        atomic_write(folder / CHECKPOINT, lambda tmp: torch.save(state, tmp))

    def _saved_step(self) -> int | None:
        path = self.checkpoint_path
        return torch.load(path, map_location="cpu", weights_only=True)["step"] if path is not None and path.is_file() else None

    # ----------------------------------------------------------------- loop
    def autocast(self):
        if self.train_cfg.precision != "bf16":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def fit(self, progress: Callable[[dict], None] | None = None,
            evaluate: Callable[[], dict] | None = None) -> list[dict]:
        """Run to ``train.steps`` (from the resumed step); returns the per-step records. ``evaluate``
        runs on rank 0 every ``train.eval_every`` steps and its metrics are logged as ``val/…``."""
        cfg, log = self.train_cfg, []
        metrics = MetricsLog(self.out, cfg.tensorboard) if self.rank == 0 and self.out is not None else None
        self.wrapped.train()
        start, seen = time.perf_counter(), 0
        try:
            for batch in self._batch_stream():
                self._report_skipped(batch)
                loss, logs = self.train_step(to_device(batch, self.device))
                seen += cfg.batch_size
                if self.world_size > 1:
                    dist.all_reduce(loss)
                    loss /= self.world_size
                # The step's one wait for the device: its scalars, fetched together.
                values = torch.stack([loss.float(), *(torch.as_tensor(v, dtype=torch.float32, device=loss.device)
                                                      for v in logs.values())]).tolist()
                if not math.isfinite(values[0]):  # off the CPU the loss is checked here, before any checkpoint
                    self._fail(values[0], self.step)
                record = {"step": self.step, "loss": values[0], "lr": self.scheduler.get_last_lr()[0],
                          **dict(zip(logs, values[1:])), "samples_per_s": seen / (time.perf_counter() - start)}
                log.append(record)
                if self.rank == 0:
                    if metrics and (self.step % cfg.log_every == 0 or self.step == cfg.steps):
                        metrics.write(record)
                    if progress:
                        progress(record)
                if self.step % cfg.ckpt_every == 0 or self.step == cfg.steps:
                    self.save_checkpoint()
                if evaluate and cfg.eval_every and self.step % cfg.eval_every == 0 and self.rank == 0:
                    result = evaluate()
                    if metrics:
                        metrics.write({"step": self.step, **{f"val/{k}": v for k, v in result.items()}})
                    self.wrapped.train()
        finally:
            if metrics:
                metrics.close()
        return log

    def train_step(self, batch: dict) -> tuple[torch.Tensor, dict]:
        """One optimiser step on ``batch`` (already on the device) → (loss, logs) as device tensors."""
        cfg = self.train_cfg
        self.optimizer.zero_grad(set_to_none=True)
        # On the CPU each micro-batch's loss is checked before its backward (free there); on a GPU that
        # would wait for the device, so fit() checks the step's loss with the values it logs.
        check = self._check if self.check_micro_batches else (lambda loss: None)
        loss, logs = self.objective.loss_and_grads(self.wrapped, batch, cfg.accum_freq, self._sync,
                                                   self.autocast(), check)
        if cfg.fsdp:
            reduce_replicated_grads(self.model)
        if self.optim_cfg.clip_grad > 0:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.optim_cfg.clip_grad)
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        return loss.detach().clone(), logs

    def _batch_stream(self):
        """The batches of steps ``self.step`` … ``train.steps - 1``: made here, or ahead of the loop by
        ``train.loader_workers`` DataLoader processes (pinned for CUDA). Either way batch k is
        ``batches(k)``, so resuming stays exact."""
        steps = range(self.step, self.train_cfg.steps)
        if self.train_cfg.loader_workers == 0:
            return (self.batches(k) for k in steps)
        return iter(torch.utils.data.DataLoader(_StepBatches(self.batches), batch_size=None, sampler=steps,
                                                num_workers=self.train_cfg.loader_workers,
                                                pin_memory=self.device.type == "cuda", prefetch_factor=4))

    def _report_skipped(self, batch: dict) -> None:
        skipped = batch.pop("skipped", None)
        if skipped and self.rank == 0 and self.out is not None:
            with open(self.out / "skipped.txt", "a") as f:
                f.write("\n".join(skipped) + "\n")

    def _check(self, loss: torch.Tensor) -> None:
        if not torch.isfinite(loss):
            self._fail(loss.item(), self.step + 1)

    def _fail(self, value: float, step: int) -> None:
        """Stop: the loss of ``step`` is ``value`` (NaN or inf)."""
        where = (f"; the last good checkpoint (step {self._saved_step()}) is kept in {self.out / 'checkpoints'}"
                 if self.out is not None else "")
        raise TrainingError(f"loss is {value} at step {step}{where}")

    @contextlib.contextmanager
    def _sync(self, sync: bool):
        """Reduce gradients across processes only in the last micro-batch's backward."""
        if self.world_size == 1 or sync:
            yield
        elif self.train_cfg.fsdp:
            self.model.set_requires_gradient_sync(False)
            try:
                yield
            finally:
                self.model.set_requires_gradient_sync(True)
        else:
            with self.wrapped.no_sync():
                yield


class _StepBatches(torch.utils.data.Dataset):
    """``batches`` as a map-style dataset indexed by step (for DataLoader workers)."""

    def __init__(self, batches: Callable[[int], dict]):
        self.batches = batches

    def __getitem__(self, step: int) -> dict:
        return self.batches(step)
