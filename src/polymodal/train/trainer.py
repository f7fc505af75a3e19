"""``polymodal train``: a run config's objective kind (:mod:`~polymodal.train.kinds`), fed by the
source its ``data.kind`` names (:mod:`~polymodal.train.sources`), trained through the one
:mod:`engine <polymodal.train.engine>`.

Run: ``polymodal train CONFIG.yaml [key=value …]`` or
``torchrun --nproc_per_node N -m polymodal.train CONFIG.yaml``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
import torch.distributed as dist

from ..devices import DeviceError, host_io, resolve
from ..registry import build, config_to_dict
from .config import ConfigError, RunConfig
from .engine import Engine, TrainingError, distributed  # noqa: F401  (TrainingError: callers catch it from here)
from .kinds import make_kind
from .sharding import full_model_state


class Trainer:
    """One run of ``polymodal train``: the objective kind's data, model and objective (see
    :mod:`polymodal.train.kinds`) through the :class:`~polymodal.train.engine.Engine` (which owns
    the loop, checkpoints and parallelism)."""

    def __init__(self, cfg: RunConfig):
        self.cfg = cfg
        try:
            resolve(cfg.train.device)
        except DeviceError as e:
            raise ConfigError(f"train.device: {e}") from e
        self.rank, self.world_size = distributed(cfg.train.device)
        if cfg.train.batch_size % self.world_size:
            raise ConfigError(f"train.batch_size {cfg.train.batch_size} is not divisible by {self.world_size} processes")
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        self.out = Path(cfg.train.out)
        if self.out.exists() and not self.out.is_dir():
            raise ConfigError(f"train.out {self.out} exists and is not a folder")
        self.out.mkdir(parents=True, exist_ok=True)
        self.kind = make_kind(cfg, self.out, self.rank, self.world_size)
        if cfg.train.loader_workers and (self.kind.source.streams or self.kind.model_dependent_batches):
            raise ConfigError(f"train.loader_workers {cfg.train.loader_workers}: "
                              + (f"data.kind {cfg.data.kind} streams through its own readers (data.workers)"
                                 if self.kind.source.streams else
                                 f"objective.kind {cfg.objective.kind}'s batches depend on the model being trained")
                              + "; set train.loader_workers=0")
        self.kind.load_data()
        torch.manual_seed(cfg.train.seed)
        self.model = self.kind.build_model()
        self.objective = self.kind.objective(self.model)
        if cfg.train.compile:
            self.model.compile()  # nn.Module.compile: in place, so state_dict keys stay ours
        self.engine = Engine(self.model, self.objective, self.kind.batch, optim=cfg.optim, train=cfg.train,
                             out=self.out, identity=config_to_dict(self.model.config), rank=self.rank, world_size=self.world_size)
        self.kind.ready(self.model)
        if self.rank == 0:
            (self.out / "config.yaml").write_text(json.dumps(cfg.to_dict(), indent=1))  # JSON is valid YAML

    @property
    def tokenizer(self):
        """The run's :class:`~polymodal.modalities.text.TextTokenizer`, or None."""
        return self.kind.tokenizer

    def _batch(self, step: int) -> dict:
        """This rank's rows of global batch ``step`` (a pure function of the step)."""
        return self.kind.batch(step)

    @property
    def step(self) -> int:
        return self.engine.step

    def train(self, progress=None) -> list[dict]:
        every = (lambda: self.kind.evaluate(host_io(self.model))) if self.cfg.train.eval_every else None
        return self.engine.fit(progress, every)


def run(cfg: RunConfig, progress=None) -> dict:
    """Train (resuming if ``train.out`` has a checkpoint), evaluate, write ``eval.json`` and the
    final model (with its tokenizer) to ``train.out/model``."""
    trainer = Trainer(cfg)
    log = trainer.train(progress)
    result, model = {}, trainer.model
    if cfg.train.fsdp:  # evaluate and save an unsharded copy
        state = full_model_state(trainer.model)
        if trainer.rank == 0:
            model = build(trainer.model.config)
            model.load_state_dict(state)
    if trainer.rank == 0:
        result = trainer.kind.evaluate(host_io(model))  # on the model's device, results on the CPU
        (trainer.out / "eval.json").write_text(json.dumps(result, indent=1))
        from ..weights import save

        save(model, trainer.out / "model")
        if trainer.tokenizer is not None:
            trainer.tokenizer.save(trainer.out / "model")
        trainer.kind.save(trainer.out / "model")
        from .plot import plot_run

        plot_run(trainer.out)
    if dist.is_initialized():
        dist.barrier()
    return {"final_loss": log[-1]["loss"] if log else math.nan, **result}
