"""ImageBind's binding stage, the library part: freeze towers, and train one encoder so that its
normalised output picks its own row of fixed target embeddings — through the one training engine
with :class:`~polymodal.objectives.BindToTargets` (symmetric InfoNCE, the same ``ClipLoss``).

The world recipe that uses it (emergent vs supervised, evaluation) is
:mod:`polymodal.world.recipes.imagebind`.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable

import torch
from torch import nn

from ..models.imagebind import ImageBindConfig, build_encoder
from ..objectives import BindToTargets
from .config import OptimConfig, TrainConfig
from .data import batch_indices
from .engine import Engine


def freeze(module: nn.Module) -> None:
    for p in module.parameters():
        p.requires_grad_(False)
    module.eval()


def train_encoder(encoder: nn.Module, scale: float, inputs: torch.Tensor, targets: torch.Tensor, *,
                  optim: OptimConfig, train: TrainConfig, log: Callable[[dict], None] | None = None) -> list[float]:
    """Train ``encoder`` (input → [B, E]) so that its normalised output picks its own row of
    ``targets`` ([N, E], or [N, P, E] with P paraphrases rotated per epoch) within each batch.

    Batches are a pure function of (``train.seed``, step), as in the CLIP recipe. ``log`` gets the
    mean loss of every ``train.log_every`` steps. Returns per-step losses.
    """
    n = inputs.shape[0]

    def batches(step: int) -> dict:
        idx, epoch = batch_indices(step, train.batch_size, n, train.seed)
        target = targets[idx] if targets.dim() == 2 else targets[idx, (epoch + idx) % targets.shape[1]]
        return {"inputs": inputs[idx], "targets": target}

    start, window = time.perf_counter(), []

    def progress(record: dict) -> None:
        window.append(record["loss"])
        if log is not None and record["step"] % train.log_every == 0:
            log({"step": record["step"], "loss": sum(window) / len(window), "lr": record["lr"],
                 "seconds": round(time.perf_counter() - start, 1)})
            window.clear()

    engine = Engine(encoder, BindToTargets(scale), batches, optim=optim,
                    train=dataclasses.replace(train, accum_freq=1, fsdp=False, eval_every=0))
    records = engine.fit(progress)
    encoder.eval()
    return [r["loss"] for r in records]


def fresh_encoder(config: ImageBindConfig, modality: str, seed: int) -> nn.Module:
    """A newly initialised encoder for ``modality`` (the supervised baseline's, same size)."""
    torch.manual_seed(seed)
    return build_encoder(config, modality)
