"""Symmetric InfoNCE (CLIP): N positives on the diagonal, N² − N negatives, learnable temperature.

Distributed form (open_clip's ``local_loss`` + ``gather_with_grad``): every rank scores its *local*
features against the features gathered from all ranks, with labels offset by the rank, so the
logits are [B_local, B_global] and memory grows linearly with the global batch. The gather
keeps gradients (its backward sums each rank's gradient back to the owner), so with DDP's
gradient averaging the update equals the single-process loss on the concatenated batch.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from .base import Objective, split_batch


class _GatherWithGrad(torch.autograd.Function):
    """all_gather forward; backward sums every rank's gradient of the gathered tensor and keeps
    this rank's slice (an all-reduce, which gloo and NCCL both support)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.rank, ctx.batch = dist.get_rank(), x.shape[0]
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad[ctx.rank * ctx.batch: (ctx.rank + 1) * ctx.batch]


def gather_features(features: torch.Tensor) -> torch.Tensor:
    """All-gather [B, E] from every rank into [world·B, E] in rank order, keeping gradients.

    Every rank must pass the same B (use ``drop_last`` in the sampler)."""
    return _GatherWithGrad.apply(features)


class ClipLoss(nn.Module):
    """``loss = (CE(logits_per_image, labels) + CE(logits_per_text, labels)) / 2``.

    ``forward(image_features [B, E], text_features [B, E], logit_scale [])`` expects
    L2-normalised features and the (already exponentiated) scale, i.e. ``CLIP.forward``'s output.
    With ``torch.distributed`` initialised and world size > 1 it uses the gathered form.
    """

    def __init__(self, label_smoothing: float = 0.0):
        super().__init__()
        self.label_smoothing = label_smoothing

    def logits(self, image_features: torch.Tensor, text_features: torch.Tensor, logit_scale: torch.Tensor):
        """(logits_per_image [B, B_global], logits_per_text [B, B_global], labels [B])."""
        if image_features.shape != text_features.shape:
            raise ValueError(f"image features {tuple(image_features.shape)} and text features "
                             f"{tuple(text_features.shape)} must have the same shape [B, E]")
        b = image_features.shape[0]
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            all_images, all_texts = gather_features(image_features), gather_features(text_features)
            offset = dist.get_rank() * b
        else:
            all_images, all_texts, offset = image_features, text_features, 0
        per_image = logit_scale * image_features @ all_texts.T
        per_text = logit_scale * text_features @ all_images.T
        labels = torch.arange(b, device=image_features.device) + offset
        return per_image, per_text, labels

    def forward(self, image_features: torch.Tensor, text_features: torch.Tensor,
                logit_scale: torch.Tensor) -> torch.Tensor:
        per_image, per_text, labels = self.logits(image_features, text_features, logit_scale)
        ce = lambda logits: F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)  # noqa: E731
        return (ce(per_image) + ce(per_text)) / 2


class Contrastive(Objective):
    """CLIP training: a batch of (image, caption) pairs, every pair contrasted with every other.

    Batch: ``pixels`` [B, 3, S, S] and either ``ids``/``mask`` [B, L] (the text tower runs) or
    ``text_pooled`` [B, width] (a frozen text tower's pooled output, computed once: only its
    projection trains). ``clip`` is the unwrapped model (its towers, projection and temperature).
    """

    def __init__(self, clip: nn.Module, loss_fn: ClipLoss | None = None):
        self.clip, self.loss_fn = clip, loss_fn or ClipLoss()

    def features(self, model: nn.Module, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Normalised (image [b, E], text [b, E]) features in fp32 and the logit scale (from the
        forward, where a sharded model's parameters are gathered)."""
        if "text_pooled" in batch:
            image = self.clip.encode_image(batch["pixels"], normalize=True)
            text = F.normalize(self.clip.text.proj(batch["text_pooled"]), dim=-1)
            scale = self.clip.scale()
        else:
            out = model(batch["pixels"], batch["ids"], batch["mask"])
            image, text, scale = out["image_features"], out["text_features"], out["logit_scale"]
        return image.float(), text.float(), scale

    def loss(self, model, batch):
        image, text, scale = self.features(model, batch)
        return self.loss_fn(image, text, scale), {"logit_scale": scale.detach()}

    def loss_and_grads(self, model, batch, accum, sync, autocast, check):
        """With ``accum`` k > 1 (open_clip's accum-freq): a no-grad pass caches every micro-batch's
        features, then each micro-batch is recomputed with gradients and its features placed among
        the cached ones, so the loss always contrasts the whole batch. The temperature takes its
        gradient in the first pass only, which makes the accumulated gradient equal the one-pass one."""
        if accum == 1:
            return super().loss_and_grads(model, batch, accum, sync, autocast, check)
        chunks = split_batch(batch, accum)
        with torch.no_grad(), autocast:
            cached = [self.features(model, c) for c in chunks]
        images, texts = [c[0] for c in cached], [c[1] for c in cached]
        for j, chunk in enumerate(chunks):
            with sync(j == accum - 1):
                with autocast:
                    image, text, scale = self.features(model, chunk)
                loss = self.loss_fn(torch.cat([*images[:j], image, *images[j + 1:]]),
                                    torch.cat([*texts[:j], text, *texts[j + 1:]]), scale if j == 0 else scale.detach())
                check(loss)
                loss.backward()
        return loss.detach(), {"logit_scale": scale.detach()}


class BindToTargets(Objective):
    """ImageBind's stage 2: an encoder's normalised output [B, E] against fixed target embeddings
    [B, E] (the frozen image tower's), symmetric InfoNCE at a fixed scale.

    Batch: ``inputs`` (the encoder's input) and ``targets`` [B, E] L2-normalised."""

    def __init__(self, scale: float, loss_fn: ClipLoss | None = None):
        self.scale, self.loss_fn = scale, loss_fn or ClipLoss()

    def loss(self, model, batch):
        out = F.normalize(model(batch["inputs"]).float(), dim=-1)
        return self.loss_fn(out, batch["targets"], self.scale), {}
