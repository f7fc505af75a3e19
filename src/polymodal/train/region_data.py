"""Training data for the region models (VisualBERT, ViLBERT): world scenes as region features +
tokenised captions, and masked-LM / image–text-matching batches that are a pure function of
(seed, step), so that a resumed run sees the batches an uninterrupted one would.

Regions per scene: the whole image first (as the bottom-up features' convention), then each
object's ground-truth box, their features read off a frozen image tower by RoI-align
(:class:`~polymodal.tasks.region_extractor.RegionExtractor`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..data.regions import RegionFeatures
from ..world.captions import captions
from ..world.render import noisy_boxes, render
from ..world.scene import Scene, sample_scene
from ..modalities.text import TextTokenizer
from ..objectives.masked_lm import mask_tokens
from ..tasks.region_extractor import RegionExtractor
from .data import batch_indices, tokenize_all

MAX_REGIONS = 5  # the whole image + at most 4 objects
REGION_TOWER_FILE = "region_tower.json"


@dataclass
class RegionCaptions:
    regions: torch.Tensor  # [N, R, D] float32 (padded)
    region_mask: torch.Tensor  # [N, R] int64
    locations: torch.Tensor  # [N, R, 5] (x0, y0, x1, y1, area) in [0, 1], for ViLBERT
    ids: torch.Tensor  # [N, P, L] int64 (P paraphrases)
    mask: torch.Tensor  # [N, P, L] int64
    texts: list[list[str]]

    def __len__(self) -> int:
        return self.regions.shape[0]


@torch.no_grad()
def scene_regions(scenes: list[Scene], size: int, extractor: RegionExtractor,
                  detector: list[np.random.Generator] | None = None) -> RegionFeatures:
    """Each scene rendered at ``size`` px → its regions through ``extractor``: the whole image, then
    the true object boxes or, with ``detector`` (one generator per scene), noisy ones (at most one
    more region then: a false detection)."""
    items = []
    for k, scene in enumerate(scenes):
        r = render(scene, size)
        boxes = r.boxes if detector is None else noisy_boxes(r.boxes, size, detector[k])[0]
        whole = torch.tensor([[0.0, 0.0, size, size]])
        items.append(extractor(Image.fromarray(r.image), torch.cat([whole, torch.from_numpy(boxes).float()])))
    return RegionFeatures.collate(items, MAX_REGIONS + (detector is not None))


def world_regions(split: str, n: int, seed: int, size: int, extractor: RegionExtractor,
                  with_captions: bool = False) -> tuple[RegionFeatures, list[list[str]]]:
    """Render ``n`` scenes of ``split`` at ``size`` px → their regions through ``extractor`` (padded
    to :data:`MAX_REGIONS`), and each scene's captions when asked for."""
    scenes = [sample_scene(seed, split, i) for i in range(n)]
    texts = [[c["text"] for c in captions(s)] if with_captions else [] for s in scenes]
    return scene_regions(scenes, size, extractor), texts


def world_region_captions(split: str, n: int, seed: int, size: int, extractor: RegionExtractor,
                          tokenizer: TextTokenizer) -> RegionCaptions:
    """Render ``n`` scenes of ``split`` at ``size`` px → their regions (through ``extractor``) and captions."""
    batch, texts = world_regions(split, n, seed, size, extractor, with_captions=True)
    return RegionCaptions(batch.features, batch.mask, batch.locations(), *tokenize_all(texts, tokenizer), texts)


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
    kinds: list[str]  # question types (count, exists, colour, shape, relation, compare)

    def __len__(self) -> int:
        return len(self.questions)


def world_region_questions(split: str, n: int, seed: int, size: int, extractor: RegionExtractor,
                           tokenizer: TextTokenizer, per_scene: int = 4) -> RegionQuestions:
    """``n`` scenes of ``split`` with ``per_scene`` VQA questions each (``polymodal.world.labels.vqa``)."""
    from ..world.labels import vqa

    batch, _ = world_regions(split, n, seed, size, extractor)
    scene_of, questions, answers, kinds = [], [], [], []
    for i in range(n):
        for q in vqa(sample_scene(seed, split, i), per_scene):
            scene_of.append(i)
            questions.append(q["question"])
            answers.append([q["answer"]])
            kinds.append(q["type"])
    tokens = tokenizer(questions)  # a question longer than the context is an error, not a silent cut
    return RegionQuestions(batch.features, batch.mask, batch.locations(), torch.tensor(scene_of), tokens.ids,
                           tokens.attention_mask, questions, answers, kinds)


def vqa_batch(data: RegionQuestions, targets: torch.Tensor, step: int, batch_size: int, seed: int,
              rank: int = 0, world: int = 1) -> dict:
    """This rank's slice of global batch ``step``: questions, their scenes' regions (with boxes for
    two-stream models) and soft answer targets [B, A]."""
    idx, _ = batch_indices(step, batch_size, len(data), seed)
    b = batch_size // world
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


def object_word_ids(tokenizer: TextTokenizer) -> dict[str, set[int]]:
    """The world's object words that are one token each: colours, shapes (synonyms and plurals
    included) and counts → {"colour": ids, "shape": ids, "count": ids}."""
    from ..world.captions import NUMBERS, SYNONYMS, plural
    from ..world.scene import COLOURS

    words = {"colour": list(COLOURS), "count": list(NUMBERS.values()),
             "shape": [w for names in SYNONYMS.values() for n in names for w in (n, plural(n))]}
    ids = {group: {tokenizer.tokenizer.token_to_id(w) for w in ws} - {None} for group, ws in words.items()}
    return {group: found for group, found in ids.items() if found}


def mask_words(ids: torch.Tensor, word_ids: set[int], mask_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every occurrence of ``word_ids`` → [MASK]: (masked ids, labels: the word there, -100 elsewhere)."""
    chosen = torch.isin(ids, torch.tensor(sorted(word_ids)))
    return torch.where(chosen, torch.full_like(ids, mask_id), ids), torch.where(chosen, ids, torch.full_like(ids, -100))


def mlm_itm_batch(data: RegionCaptions, step: int, batch_size: int, seed: int, tokenizer_ids: dict[str, int],
                  vocab_size: int, rank: int = 0, world: int = 1) -> dict:
    """This rank's slice of global batch ``step``: the first half of its pairs keep their caption,
    the second half take the caption of the next sample in that half (another scene: label 1, the
    reference's "does not match"); then 15 % of the words are masked (BERT's 80/10/10). ``scenes``
    are the rows of ``data`` whose regions (and ``boxes``, for ViLBERT) the batch holds."""
    idx, epoch = batch_indices(step, batch_size, len(data), seed)
    b = batch_size // world
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


def save_region_tower(folder: Path, tower: str, image_size: int) -> None:
    """Record in a region model's folder which image tower read its regions, at which image size:
    the model means nothing with another tower's features."""
    record = {"tower": str(Path(tower).resolve()), "image_size": image_size, "max_regions": MAX_REGIONS}
    (Path(folder) / REGION_TOWER_FILE).write_text(json.dumps(record, indent=1))


def load_region_tower(folder: Path) -> dict:
    """The record :func:`save_region_tower` wrote: {"tower", "image_size", "max_regions"}."""
    path = Path(folder) / REGION_TOWER_FILE
    if not path.is_file():
        raise ValueError(f"{folder} has no {REGION_TOWER_FILE}: which image tower read its regions is unknown; "
                         "pass --region-tower")
    record = json.loads(path.read_text())
    if not isinstance(record, dict) or not {"tower", "image_size"} <= set(record):
        raise ValueError(f"{path}: expected {{\"tower\": folder, \"image_size\": int}}")
    return record
