"""World scenes as pictures: caption pairs for CLIP (``contrastive``) and labelled pictures for a
ViT's head (``classification``; ``objective.label`` place or count)."""

from __future__ import annotations

from ...train.examples import CaptionPairs, LabelledImages
from ...train.sources import Source, register_source
from ..pictures import world_captions, world_groups, world_labels
from ..recipes.world_clip import evaluate as evaluate_world_clip

SCENES = ("train_n", "val_n", "seed")  # what every world source reads: scene counts and the world's seed


def caption_pairs(kind, split: str) -> CaptionPairs:
    """Rendered scenes with their three paraphrased captions; ``data.hard_negatives`` > 0 groups the
    training scenes that share place and colours into runs of that many per batch."""
    d = kind.cfg.data
    n = d.train_n if split == "train" else d.val_n
    pairs = CaptionPairs(*world_captions(split, n, d.seed, d.image_size))
    if split == "train" and d.hard_negatives:
        pairs.groups, pairs.group_size = world_groups(split, n, d.seed), d.hard_negatives
    return pairs


def labelled_images(kind, split: str) -> LabelledImages:
    """Rendered scenes labelled by ``objective.label``: their place or their object count."""
    d = kind.cfg.data
    n = d.train_n if split == "train" else d.val_n
    return LabelledImages(*world_labels(split, n, d.seed, d.image_size, kind.cfg.objective.label))


def _evaluate_clip(kind, model) -> dict:
    return evaluate_world_clip(model, kind.tokenizer, kind.cfg)


register_source(Source("world", "caption_pairs", caption_pairs, SCENES + ("image_size", "hard_negatives"),
                       evaluate=_evaluate_clip, about="rendered scenes and their captions"))
register_source(Source("world", "labelled_images", labelled_images, SCENES + ("image_size",),
                       about="rendered scenes labelled by place or object count"))
