"""Training data for the picture kinds: pictures held in memory with their captions tokenised, and
batches that are a pure function of (seed, step) — so a resumed run sees exactly
the batches an uninterrupted one would, and DDP ranks split each global batch without overlap."""

from __future__ import annotations

from dataclasses import dataclass

import torch

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
    groups: torch.Tensor | None = None  # [N] int64 hard-negative group of each sample (see batch_indices)
    group_size: int = 0

    def __len__(self) -> int:
        return self.images.shape[0]


def tokenize_all(texts: list[list[str]], tokenizer: TextTokenizer) -> tuple[torch.Tensor, torch.Tensor]:
    flat = [t for row in texts for t in row]
    batch = tokenizer(flat, truncate=True)
    p = len(texts[0])
    return batch.ids.view(len(texts), p, -1), batch.attention_mask.view(len(texts), p, -1)


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 [B, 3, S, S] → CLIP-normalised float32."""
    return (images.float() / 255.0 - MEAN) / STD


def batch_indices(step: int, batch_size: int, n: int, seed: int, groups: torch.Tensor | None = None,
                  group_size: int = 0) -> tuple[torch.Tensor, int]:
    """Indices of global batch ``step`` and its epoch: each epoch is a fresh permutation seeded by
    (seed, epoch); batches never straddle epochs (the tail of a permutation is dropped).

    With ``groups`` [n] and ``group_size`` g, a batch is made of batch_size / g runs of g samples
    that share a group (each sample's hard negatives), the runs themselves in random order."""
    if group_size:
        return _grouped_batch(step, batch_size, seed, groups, group_size)
    per_epoch = n // batch_size
    if per_epoch == 0:
        raise ValueError(f"batch size {batch_size} is larger than the dataset ({n} samples)")
    epoch, k = divmod(step, per_epoch)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
    return order[k * batch_size:(k + 1) * batch_size], epoch


def group_runs(groups: torch.Tensor, group_size: int, generator: torch.Generator) -> torch.Tensor:
    """One epoch's runs [R, g]: each group's samples in random order cut into runs of g (a group's
    remainder waits for another epoch), the runs shuffled."""
    perm = torch.randperm(len(groups), generator=generator)
    keys, order = torch.sort(groups[perm], stable=True)  # by group; random within a group
    ordered = perm[order]
    start = torch.searchsorted(keys, keys, side="left")  # first position of each sample's group
    count = torch.bincount(keys)[keys]
    rank = torch.arange(len(keys)) - start
    keep = rank < count - count % group_size
    runs = ordered[keep].view(-1, group_size)
    return runs[torch.randperm(len(runs), generator=generator)]


def _grouped_batch(step: int, batch_size: int, seed: int, groups: torch.Tensor, group_size: int):
    if batch_size % group_size:
        raise ValueError(f"batch size {batch_size} is not a multiple of the hard-negative group size {group_size}")
    per_batch = batch_size // group_size
    # Every epoch has the same number of runs (each group gives floor(count / g)).
    per_epoch = int((torch.bincount(groups) // group_size).sum()) // per_batch
    if per_epoch == 0:
        raise ValueError(f"too few groups of {group_size} samples for a batch of {batch_size}")
    epoch, k = divmod(step, per_epoch)
    runs = group_runs(groups, group_size, torch.Generator().manual_seed(seed * 1_000_003 + epoch))
    return runs[k * per_batch:(k + 1) * per_batch].flatten(), epoch


def batch_rows(data: CaptionedImages, step: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1):
    """This rank's rows of global batch ``step`` and the caption paraphrase of each (it rotates with
    the epoch): (idx [b], paraphrase [b])."""
    idx, epoch = batch_indices(step, batch_size, len(data), seed, data.groups, data.group_size)
    b = batch_size // world_size
    idx = idx[rank * b:(rank + 1) * b]
    return idx, (epoch + idx) % data.ids.shape[1]


def get_batch(data: CaptionedImages, step: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1):
    """This rank's slice of global batch ``step``: (pixels [b, 3, S, S], ids [b, L], mask [b, L])."""
    idx, p = batch_rows(data, step, batch_size, seed, rank, world_size)
    ids, mask = data.ids[idx, p], data.mask[idx, p]
    length = int(mask.sum(dim=1).max())  # drop all-padding columns: the text tower costs O(L)
    return normalize(data.images[idx]), ids[:, :length], mask[:, :length]
