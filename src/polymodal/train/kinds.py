"""What ``objective.kind`` names: a :class:`TrainKind` knows a run's model, objective, batches,
evaluation and the files its model folder needs, and which kind of examples it trains on; the
source that ``data.kind`` names gives them (:mod:`polymodal.train.sources`). The
:class:`~polymodal.train.trainer.Trainer` calls them in order and owns nothing kind-specific, so a new
kind is a new class where its code lives:

    @register_kind("refexp")
    class RefExpKind(TrainKind):
        examples = "region_references"               # what a source must give
        reads = ("region_tower", "image_size")        # the data.* settings the kind itself reads
        def load_data(self): ...                      # self.tokenizer, self.load_examples("train")
        def build_model(self) -> nn.Module: ...
        def objective(self, model) -> Objective: ...
        def batch(self, step) -> dict: ...            # a pure function of the step (exact resume)
        def evaluate(self, model) -> dict: ...        # validation metrics, next to their baselines
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Callable

from torch import nn

from ..objectives import Objective
from .config import ConfigError, RunConfig
from .sources import Source, check_settings, find_source

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


def make_kind(cfg: RunConfig, out: Path | None = None, rank: int = 0, world_size: int = 1) -> "TrainKind":
    """The kind ``objective.kind`` names, with the source of its examples checked against the
    ``data.*`` settings (an unknown kind or source, or a setting neither reads, is named)."""
    _load_builtin()
    if cfg.objective.kind not in _KINDS:
        raise ConfigError(f"objective.kind: {cfg.objective.kind!r} is not one of {tuple(_KINDS)}")
    return _KINDS[cfg.objective.kind](cfg, out, rank, world_size)


class TrainKind:
    """One objective kind for one run. ``out`` is the run folder (None: in memory); ``rank`` /
    ``world_size`` this process's place under torchrun. ``source`` is the
    :class:`~polymodal.train.sources.Source` of its examples."""

    name = "?"
    examples = "?"  # the kind of examples it trains on (see polymodal.train.examples)
    reads: tuple[str, ...] = ()  # the data.* settings the kind reads itself (the source reads the rest)
    tokenizer = None  # a TextTokenizer, saved beside the model, or None
    # True when batch(step) reads the model being trained (so it cannot run in DataLoader workers)
    model_dependent_batches = False

    def __init__(self, cfg: RunConfig, out: Path | None, rank: int = 0, world_size: int = 1):
        self.cfg, self.out, self.rank, self.world_size = cfg, out, rank, world_size
        self.source: Source = find_source(cfg.data.kind, self.examples, self.name)
        check_settings(cfg.data, self.source, self.reads, self.name)

    def load_examples(self, split: str):
        """The source's examples of ``split`` ("train" or "val"; None where it has no validation data)."""
        return self.source.load(self, split)

    def report_skipped(self, skipped: list[str], split: str = "train") -> None:
        """List the items of ``split`` the source could not use in the run's ``skipped.txt`` (validation:
        ``skipped-val.txt``), and warn: they never stop a run, and never go unsaid."""
        if skipped and self.rank == 0 and self.out is not None:
            name = "skipped.txt" if split == "train" else f"skipped-{split}.txt"
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / name).write_text("\n".join(skipped) + "\n")
            warnings.warn(f"skipped {len(skipped)} {split} item(s) of data.kind {self.cfg.data.kind} that could not be "
                          f"used; see {self.out / name}", stacklevel=3)

    def source_evaluation(self, model: nn.Module) -> dict | None:
        """What the source measures in place of the kind's own evaluation (e.g. the world's held-out
        zero-shot), or None."""
        return self.source.evaluate(self, model) if self.source.evaluate is not None else None

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
        b = len(idx) // self.world_size
        return idx[self.rank * b:(self.rank + 1) * b]
