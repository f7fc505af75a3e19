"""What the training engine minimises: an :class:`Objective` turns (model, batch) into a loss.

The loss modules next to it (``ClipLoss``, cross-entropy) take model outputs; an objective knows
which inputs of a batch go into the model and which outputs into the loss.
"""

from __future__ import annotations

import torch
from torch import nn


class Objective:
    """What to minimise on a batch. Subclasses implement :meth:`loss`; :meth:`loss_and_grads`
    accumulates over micro-batches (override it when micro-batches are not independent, as in
    contrastive learning, where every pair of the whole batch must be contrasted)."""

    def loss(self, model: nn.Module, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        """(scalar loss, scalars to log) of one (micro-)batch; ``model`` may be DDP/FSDP-wrapped."""
        raise NotImplementedError

    def loss_and_grads(self, model: nn.Module, batch: dict, accum: int, sync, autocast, check):
        """The step's loss with its gradients in ``.grad``: ``accum`` equal micro-batches, each loss
        divided by ``accum``; ``sync(last)`` wraps each backward (gradients are reduced in the last)."""
        chunks = split_batch(batch, accum)
        total, logs = 0.0, {}
        for j, chunk in enumerate(chunks):
            with sync(j == len(chunks) - 1):
                with autocast:
                    loss, logs = self.loss(model, chunk)
                check(loss)
                (loss / len(chunks)).backward()
            total = total + loss.detach() / len(chunks)
        return total, logs


def split_batch(batch: dict, k: int) -> list[dict]:
    """A batch dict of tensors [B, ...] → k dicts of [B / k, ...] (other entries are shared)."""
    if k == 1:
        return [batch]
    parts = {key: v.chunk(k) for key, v in batch.items() if isinstance(v, torch.Tensor)}
    return [{**batch, **{key: p[j] for key, p in parts.items()}} for j in range(k)]


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` where ``mask`` [same shape, bool] holds; 0 when it holds nowhere. Computed
    on the device without asking it whether anything is masked (no host sync), and NaN/inf outside
    the mask cannot leak in."""
    mask = mask.bool()
    return torch.where(mask, values, 0.0).sum() / mask.sum().clamp(min=1)
