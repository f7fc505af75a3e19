"""The CLIP world recipe's evaluation: retrieval on the val gallery plus what only the world can
measure — the R@1 ceiling set by ambiguous captions, and zero-shot colour–shape classification
(48 classes, prompt ensemble) of single-object val scenes, split into seen and held-out pairs."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..captions import captions
from ..pictures import world_captions
from ..scene import COLOURS, HELD_OUT, SHAPES, sample_scene
from ...eval.metrics import accuracy, retrieval_metrics
from ...modalities.text import TextTokenizer
from ...models.clip import CLIP
from ...train.config import RunConfig
from ...tasks.embedder import Embedder
from ...train.picture_kinds import embed_pairs
from .caption_ceiling import recall_at_1_ceiling

TEMPLATES = ("a {} {}.", "a photo of a {} {}.", "an image of a {} {}.")


@torch.no_grad()
def evaluate(model: CLIP, tokenizer: TextTokenizer, cfg: RunConfig, batch: int = 250) -> dict:
    model.eval()
    d = cfg.data
    images, texts = world_captions("val", d.val_n, d.seed, d.image_size)
    img, txt = embed_pairs(model, tokenizer, images, texts, batch)
    result = retrieval_metrics(img, txt)
    first = [t[0] for t in texts]
    result["duplicate_caption_fraction"] = 1 - len(set(first)) / len(first)
    scenes = [sample_scene(d.seed, "val", i) for i in range(d.val_n)]
    ceiling = recall_at_1_ceiling(scenes, [captions(s)[0] for s in scenes])
    result["text_to_image_R@1_ceiling"] = ceiling["r1_ceiling"]
    result["ambiguous_caption_fraction"] = ceiling["ambiguous_fraction"]
    classes = [(c, s) for c in COLOURS for s in SHAPES]
    cls = Embedder(model, tokenizer).embed_texts([t.format(c, s) for c, s in classes for t in TEMPLATES])
    cls = F.normalize(cls.view(len(classes), len(TEMPLATES), -1).mean(1), dim=-1)
    singles = [i for i in range(d.val_n) if len(scenes[i].objects) == 1]
    labels = torch.tensor([classes.index((o.colour, o.shape)) for i in singles for o in scenes[i].objects])
    held = torch.tensor([classes[k] in HELD_OUT for k in labels.tolist()])
    emb = img[singles]
    for name, keep in (("zero_shot_seen", ~held), ("zero_shot_held_out", held)):
        result[f"{name}_top1"] = accuracy(emb[keep], cls, labels[keep]) if keep.any() else float("nan")
        result[f"{name}_n"] = int(keep.sum())
    result["zero_shot_chance"] = 1 / len(classes)
    return result
