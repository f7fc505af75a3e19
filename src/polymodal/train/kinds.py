"""What ``objective.kind`` names: a :class:`TrainKind` knows a run's data, model, objective, batches,
evaluation and the files its model folder needs. The :class:`~polymodal.train.trainer.Trainer` calls
them in order and owns nothing kind-specific, so a new kind is a new class where its code lives:

    @register_kind("refexp")
    class RefExpKind(TrainKind):
        def load_data(self): ...                      # self.tokenizer, the training rows
        def build_model(self) -> nn.Module: ...
        def objective(self, model) -> Objective: ...
        def batch(self, step) -> dict: ...            # a pure function of the step (exact resume)
        def evaluate(self, model) -> dict: ...        # validation metrics, next to their baselines
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from torch import nn

from ..objectives import Objective
from .config import ConfigError, RunConfig

_KINDS: dict[str, type["TrainKind"]] = {}


def register_kind(name: str) -> Callable[[type], type]:
    def add(cls: type) -> type:
        if name in _KINDS and _KINDS[name] is not cls:
            raise ValueError(f"objective.kind {name!r} is registered twice ({_KINDS[name].__name__}, {cls.__name__})")
        cls.name = name
        _KINDS[name] = cls
        return cls
    return add


def _load_builtin() -> None:
    from ..plugins import import_all

    import_all(__package__)  # every module of polymodal.train registers the kinds it defines


def kind_names() -> tuple[str, ...]:
    _load_builtin()
    return tuple(_KINDS)


def make_kind(cfg: RunConfig, out: Path | None = None, rank: int = 0, world: int = 1,
              evaluate_fn: Callable | None = None) -> "TrainKind":
    _load_builtin()
    if cfg.objective.kind not in _KINDS:
        raise ConfigError(f"objective.kind: {cfg.objective.kind!r} is not one of {tuple(_KINDS)}")
    return _KINDS[cfg.objective.kind](cfg, out, rank, world, evaluate_fn)


class TrainKind:
    """One objective kind for one run. ``out`` is the run folder (None: in memory); ``rank`` /
    ``world`` this process's place under torchrun; ``evaluate_fn`` replaces the kind's evaluation
    where the kind allows it (the world CLIP recipe adds zero-shot metrics)."""

    name = "?"
    tokenizer = None  # a TextTokenizer, saved beside the model, or None
    # True when batch(step) reads the model being trained (so it cannot run in DataLoader workers)
    model_dependent_batches = False

    def __init__(self, cfg: RunConfig, out: Path | None, rank: int = 0, world: int = 1,
                 evaluate_fn: Callable | None = None):
        self.cfg, self.out, self.rank, self.world, self.evaluate_fn = cfg, out, rank, world, evaluate_fn

    def load_data(self) -> None:
        raise NotImplementedError

    def build_model(self) -> nn.Module:
        raise NotImplementedError

    def objective(self, model: nn.Module) -> Objective:
        raise NotImplementedError

    def ready(self, model: nn.Module) -> None:
        """Called once the engine holds ``model`` (and has restored a checkpoint, if any)."""

    def batch(self, step: int) -> dict:
        raise NotImplementedError

    def evaluate(self, model: nn.Module) -> dict:
        return {}

    def save(self, folder: Path) -> None:
        """Write what the saved model needs beside its weights and tokenizer."""

    def evaluate_saved(self, model: nn.Module, folder: Path, tokenizer) -> dict:
        """``polymodal eval``: :meth:`evaluate` for a model saved in ``folder`` by a run of this kind."""
        self.tokenizer = tokenizer
        return self.evaluate(model)

    def rank_slice(self, idx):
        """This process's rows of a global batch's indices."""
        b = len(idx) // self.world
        return idx[self.rank * b:(self.rank + 1) * b]
