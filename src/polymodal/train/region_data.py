"""Training data for the region models (VisualBERT, ViLBERT): pictures as region features (the
whole picture first, as the bottom-up features' convention, then its boxes) with tokenised captions
or questions, and masked-LM / image–text-matching / VQA batches that are a pure function of
(seed, step), so that a resumed run sees the batches an uninterrupted one would.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..modalities.text import TextTokenizer
from ..objectives.masked_lm import mask_tokens
from .data import batch_indices

@dataclass
class RegionCaptions:
    """Pictures as regions with their captions. ``word_groups`` names groups of words whose filling-in
    the evaluation measures with and without the regions (e.g. {"colour": [...], "shape": [...]});
    ``region_targets`` [N, R, C] is each region's class distribution (ViLBERT's masked-region
    targets) and ``metrics`` what the source measured of them (e.g. its classifier's accuracy)."""
    regions: torch.Tensor  # [N, R, D] float32 (padded)
    region_mask: torch.Tensor  # [N, R] int64
    locations: torch.Tensor  # [N, R, 5] (x0, y0, x1, y1, area) in [0, 1], for ViLBERT
    ids: torch.Tensor  # [N, P, L] int64 (P paraphrases)
    mask: torch.Tensor  # [N, P, L] int64
    texts: list[list[str]]
    word_groups: dict[str, list[str]] = field(default_factory=dict)
    region_targets: torch.Tensor | None = None
    metrics: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return self.regions.shape[0]


@dataclass
class RegionQuestions:
    """Questions about scenes: regions per scene, and per question its scene, tokens and answers."""
    regions: torch.Tensor  # [N, R, D] float32 (padded), one row per scene
    region_mask: torch.Tensor  # [N, R] int64
    locations: torch.Tensor  # [N, R, 5]
    scene_of: torch.Tensor  # [Q] int64: the scene each question is about
    ids: torch.Tensor  # [Q, L] int64
    mask: torch.Tensor  # [Q, L] int64
    questions: list[str]
    answers: list[list[str]]  # each question's reference answers (one per annotator)
    kinds: list[str]  # question types (the world's: count, exists, colour, shape, relation, compare)
    answer_types: list[str] = field(default_factory=list)  # VQA v2's answer types (yes/no, number, other), if known

    def __len__(self) -> int:
        return len(self.questions)


def vqa_batch(data: RegionQuestions, targets: torch.Tensor, step: int, batch_size: int, seed: int,
              rank: int = 0, world_size: int = 1) -> dict:
    """This rank's slice of global batch ``step``: questions, their scenes' regions (with boxes for
    two-stream models) and soft answer targets [B, A]."""
    idx, _ = batch_indices(step, batch_size, len(data), seed)
    b = batch_size // world_size
    idx = idx[rank * b:(rank + 1) * b]
    return {**question_rows(data, idx), "targets": targets[idx]}


def question_rows(data: RegionQuestions, idx: torch.Tensor) -> dict:
    """Model inputs for questions ``idx``: ids and mask cut to the longest, their scenes' regions and boxes."""
    mask = data.mask[idx]
    length = int(mask.sum(dim=1).max())
    scenes = data.scene_of[idx]
    return {"ids": data.ids[idx, :length], "attention_mask": mask[:, :length], "regions": data.regions[scenes],
            "region_mask": data.region_mask[scenes], "boxes": data.locations[scenes]}


def special_ids(tokenizer: TextTokenizer) -> dict[str, int]:
    """[MASK] and the ids masking must never pick ([CLS], [SEP], [PAD]) of a WordPiece tokenizer."""
    tok = tokenizer.tokenizer
    ids = {name: tok.token_to_id(f"[{name}]") for name in ("MASK", "CLS", "SEP", "PAD")}
    missing = [name for name, i in ids.items() if i is None]
    if missing:
        raise ValueError(f"masked-LM training needs a WordPiece tokenizer with [MASK], [CLS], [SEP], [PAD]; "
                         f"this one lacks {missing}")
    return ids


def word_group_ids(tokenizer: TextTokenizer, groups: dict[str, list[str]]) -> dict[str, set[int]]:
    """The words of each group that are one token each → {group: ids}; groups with none are left out."""
    ids = {group: {tokenizer.tokenizer.token_to_id(w) for w in words} - {None} for group, words in groups.items()}
    return {group: found for group, found in ids.items() if found}


def mask_words(ids: torch.Tensor, word_ids: set[int], mask_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every occurrence of ``word_ids`` → [MASK]: (masked ids, labels: the word there, -100 elsewhere)."""
    chosen = torch.isin(ids, torch.tensor(sorted(word_ids)))
    return torch.where(chosen, torch.full_like(ids, mask_id), ids), torch.where(chosen, ids, torch.full_like(ids, -100))


def mlm_itm_batch(data: RegionCaptions, step: int, batch_size: int, seed: int, tokenizer_ids: dict[str, int],
                  vocab_size: int, rank: int = 0, world_size: int = 1) -> dict:
    """This rank's slice of global batch ``step``: the first half of its pairs keep their caption,
    the second half take the caption of the next sample in that half (another scene: label 1, the
    reference's "does not match"); then 15 % of the words are masked (BERT's 80/10/10). ``scenes``
    are the rows of ``data`` whose regions (and ``boxes``, for ViLBERT) the batch holds."""
    idx, epoch = batch_indices(step, batch_size, len(data), seed)
    b = batch_size // world_size
    idx = idx[rank * b:(rank + 1) * b]
    paraphrase = (epoch + idx) % data.ids.shape[1]
    caption_of = idx.clone()
    half = b // 2
    if b - half > 1:
        caption_of[half:] = idx[half:].roll(1)
    itm = torch.zeros(b, dtype=torch.long)
    itm[half:] = (caption_of[half:] != idx[half:]).long()
    ids, mask = data.ids[caption_of, paraphrase], data.mask[caption_of, paraphrase]
    length = int(mask.sum(dim=1).max())
    ids, mask = ids[:, :length], mask[:, :length]
    g = torch.Generator().manual_seed(seed * 1_000_003 + step * 7 + rank)
    masked, labels = mask_tokens(ids, mask, mask_id=tokenizer_ids["MASK"], vocab_size=vocab_size, generator=g,
                                 special_ids=(tokenizer_ids["CLS"], tokenizer_ids["SEP"], tokenizer_ids["PAD"]))
    return {"ids": masked, "attention_mask": mask, "regions": data.regions[idx], "region_mask": data.region_mask[idx],
            "boxes": data.locations[idx], "mlm_labels": labels, "itm_labels": itm, "scenes": idx}
