"""Training data for the CLIP recipe: world scenes rendered once into memory, their captions
tokenised, and batches that are a pure function of (seed, step) — so a resumed run sees exactly
the batches an uninterrupted one would, and DDP ranks split each global batch without overlap."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..data.world.captions import captions
from ..data.world.render import render
from ..data.world.scene import sample_scene
from ..modalities.image import CLIP_MEAN, CLIP_STD
from ..modalities.text import TextTokenizer

MEAN = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
STD = torch.tensor(CLIP_STD).view(1, 3, 1, 1)


@dataclass
class CaptionedImages:
    images: torch.Tensor  # [N, 3, S, S] uint8
    ids: torch.Tensor  # [N, P, L] int64 (P paraphrases)
    mask: torch.Tensor  # [N, P, L] int64
    texts: list[list[str]]  # [N][P]

    def __len__(self) -> int:
        return self.images.shape[0]


def world_captions(split: str, n: int, seed: int, size: int) -> tuple[torch.Tensor, list[list[str]]]:
    """Render ``n`` scenes of ``split`` → (images uint8 [n, 3, S, S], captions [n][3])."""
    images = torch.empty((n, 3, size, size), dtype=torch.uint8)
    texts = []
    for i in range(n):
        scene = sample_scene(seed, split, i)
        images[i] = torch.from_numpy(render(scene, size).image).permute(2, 0, 1)
        texts.append([c["text"] for c in captions(scene)])
    return images, texts


def tokenize_all(texts: list[list[str]], tokenizer: TextTokenizer) -> tuple[torch.Tensor, torch.Tensor]:
    flat = [t for row in texts for t in row]
    batch = tokenizer(flat, truncate=True)
    p = len(texts[0])
    return batch.ids.view(len(texts), p, -1), batch.attention_mask.view(len(texts), p, -1)


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 [B, 3, S, S] → CLIP-normalised float32."""
    return (images.float() / 255.0 - MEAN) / STD


def batch_indices(step: int, batch_size: int, n: int, seed: int) -> tuple[torch.Tensor, int]:
    """Indices of global batch ``step`` and its epoch: each epoch is a fresh permutation seeded by
    (seed, epoch); batches never straddle epochs (the tail of a permutation is dropped)."""
    per_epoch = n // batch_size
    if per_epoch == 0:
        raise ValueError(f"batch size {batch_size} is larger than the dataset ({n} samples)")
    epoch, k = divmod(step, per_epoch)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
    return order[k * batch_size:(k + 1) * batch_size], epoch


def batch_rows(data: CaptionedImages, step: int, batch_size: int, seed: int, rank: int = 0, world: int = 1):
    """This rank's rows of global batch ``step`` and the caption paraphrase of each (it rotates with
    the epoch): (idx [b], paraphrase [b])."""
    idx, epoch = batch_indices(step, batch_size, len(data), seed)
    b = batch_size // world
    idx = idx[rank * b:(rank + 1) * b]
    return idx, (epoch + idx) % data.ids.shape[1]


def get_batch(data: CaptionedImages, step: int, batch_size: int, seed: int, rank: int = 0, world: int = 1):
    """This rank's slice of global batch ``step``: (pixels [b, 3, S, S], ids [b, L], mask [b, L])."""
    idx, p = batch_rows(data, step, batch_size, seed, rank, world)
    ids, mask = data.ids[idx, p], data.mask[idx, p]
    length = int(mask.sum(dim=1).max())  # drop all-padding columns: the text tower costs O(L)
    return normalize(data.images[idx]), ids[:, :length], mask[:, :length]
