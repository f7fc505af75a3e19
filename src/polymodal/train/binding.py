"""ImageBind's binding stage: freeze the image and text towers (from a CLIP run) and train one
encoder per sensor modality with symmetric InfoNCE against frozen target embeddings.

The emergent recipe binds audio/depth/thermal to the scene's *image* and IMU to its *video clip*
(through the image tower's multi-frame path); no (sensor, text) pair is used. The supervised
upper bound trains an encoder of the same size directly on (sensor, text) pairs.
"""

from __future__ import annotations

import math
import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..models.clip import CLIP
from ..models.imagebind import ImageBind, ImageBindConfig, build_encoder, with_clip_towers
from .data import batch_indices
from .optim import param_groups, warmup_cosine


def imagebind_from_clip(clip: CLIP, sensors: ImageBindConfig) -> ImageBind:
    """An ImageBind whose vision and text encoders are ``clip``'s towers (a 2-D patch weight is
    inflated over ImageBind's 2-frame tubelets, a conv stem runs per frame — either way an image
    embeds exactly as in the CLIP) and whose
    text scale is the CLIP's temperature; the sensor encoders (sized by ``sensors``) are new."""
    model = ImageBind.from_config(with_clip_towers(sensors, clip.config))
    vision = dict(clip.visual.state_dict())
    if clip.config.vision.stem == "conv":  # the same 2-D stem, run per frame
        vision = {"stem." + k if k.startswith("stem.") else k: v for k, v in vision.items()}
    else:
        model.encoders["image"].stem.inflate_from(vision.pop("stem.proj.weight"))
        vision["stem.proj.weight"] = model.encoders["image"].stem.proj.weight.detach().clone()
    model.encoders["image"].load_state_dict(vision)  # strict: every other key has the same name
    model.encoders["text"].load_state_dict(clip.text.state_dict())
    with torch.no_grad():
        model.postprocessors["text"].log_logit_scale.copy_(clip.logit_scale)
    return model


def freeze(module: nn.Module) -> None:
    for p in module.parameters():
        p.requires_grad_(False)
    module.eval()


def info_nce(a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor | float) -> torch.Tensor:
    """Symmetric InfoNCE of matched rows: a, b [B, E] L2-normalised; ``scale`` = 1/temperature."""
    logits = scale * a @ b.T
    labels = torch.arange(a.shape[0], device=a.device)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def train_encoder(encoder: nn.Module, scale: float, inputs: torch.Tensor, targets: torch.Tensor, *, steps: int,
                  batch_size: int, lr: float, weight_decay: float = 0.05, warmup: int = 30, seed: int = 0,
                  precision: str = "bf16", log: Callable[[dict], None] | None = None,
                  log_every: int = 50) -> list[float]:
    """Train ``encoder`` (input → [B, E]) so that its normalised output picks its own row of
    ``targets`` ([N, E], or [N, P, E] with P paraphrases rotated per epoch) within each batch.

    Batches are a pure function of (seed, step), as in the CLIP recipe. Returns per-step losses.
    """
    encoder.train()
    opt = torch.optim.AdamW(param_groups(encoder, weight_decay), lr=lr, betas=(0.9, 0.98), eps=1e-6)
    sched = warmup_cosine(opt, warmup, steps)
    n = inputs.shape[0]
    losses: list[float] = []
    start = time.perf_counter()
    for step in range(steps):
        idx, epoch = batch_indices(step, batch_size, n, seed)
        target = targets[idx] if targets.dim() == 2 else targets[idx, (epoch + idx) % targets.shape[1]]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            out = encoder(inputs[idx])
        loss = info_nce(F.normalize(out.float(), dim=-1), target, scale)
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"loss became {loss.item()} at step {step}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(encoder.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
        if log is not None and (step + 1) % log_every == 0:
            log({"step": step + 1, "loss": sum(losses[-log_every:]) / log_every, "lr": sched.get_last_lr()[0],
                 "seconds": round(time.perf_counter() - start, 1)})
    encoder.eval()
    return losses


def fresh_encoder(config: ImageBindConfig, modality: str, seed: int) -> nn.Module:
    """A newly initialised encoder for ``modality`` (the supervised baseline's, same size)."""
    torch.manual_seed(seed)
    return build_encoder(config, modality)
