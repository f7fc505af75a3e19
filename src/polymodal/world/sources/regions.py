"""World scenes as regions (the whole picture, then each object's box, read by the run's frozen
region tower) with what the region kinds learn from them: captions (``mlm_itm``; with region class
targets for ``masked_multimodal``), questions (``vqa``), statements (``consistency``), referring
expressions (``refexp``) and VCR items (``vcr``).

``data.boxes=detector`` reads jittered, sometimes missed or false boxes in place of the true ones."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from ...data.regions import RegionFeatures
from ...modalities.text import TextTokenizer
from ...tasks.region_extractor import RegionExtractor
from ...tasks.region_tower import MAX_REGIONS
from ...train.config import ConfigError
from ...train.data import tokenize_all
from ...train.region_data import RegionCaptions, RegionQuestions
from ...train.region_task_data import References, Statements, VCRItems, refexp_hits, scene_texts
from ...train.sources import Source, register_source
from ..captions import NUMBERS, SYNONYMS, captions, plural
from ..labels import REGION_CLASSES, consistency, referring_expressions, vcr, vqa
from ..region_classifier import train_region_classifier, world_region_labels
from ..render import noisy_boxes, render
from ..scene import COLOURS, Scene, sample_rng, sample_scene
from .images import SCENES

REGIONS = SCENES + ("image_size",)  # + data.boxes where detector boxes apply


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
    return RegionCaptions(batch.features, batch.mask, batch.locations(), *tokenize_all(texts, tokenizer), texts,
                          object_words())


def world_region_questions(split: str, n: int, seed: int, size: int, extractor: RegionExtractor,
                           tokenizer: TextTokenizer, per_scene: int = 4) -> RegionQuestions:
    """``n`` scenes of ``split`` with ``per_scene`` VQA questions each (``polymodal.world.labels.vqa``)."""
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


def object_words() -> dict[str, list[str]]:
    """The world's object words: colours, shapes (synonyms and plurals included) and counts."""
    return {"colour": list(COLOURS), "count": list(NUMBERS.values()),
            "shape": [w for names in SYNONYMS.values() for n in names for w in (n, plural(n))]}


def _detector(seed: int, split: str, indices: list[int], boxes: str) -> list[np.random.Generator] | None:
    if boxes not in ("truth", "detector"):
        raise ConfigError(f"data.boxes: the world's regions are its objects' true boxes (truth) or a detector's "
                          f"(detector), got {boxes!r}")
    return [sample_rng(seed, split, i, "detector") for i in indices] if boxes == "detector" else None


def world_consistency(split: str, n: int, seed: int, size: int, extractor: RegionExtractor,
                      tokenizer: TextTokenizer, boxes: str = "truth") -> Statements:
    """One statement per scene index, shown with the (maybe edited) scene; its kind is the edit
    (colour, count, relation)."""
    items = [consistency(sample_scene(seed, split, i)) for i in range(n)]
    batch = scene_regions([it["scene"] for it in items], size, extractor, _detector(seed, split, list(range(n)), boxes))
    data = scene_texts(batch, list(range(n)), [it["statement"] for it in items], tokenizer)
    return Statements(data, torch.tensor([it["label"] for it in items]), [it["kind"] for it in items])


def world_refexps(split: str, n: int, seed: int, size: int, extractor: RegionExtractor, tokenizer: TextTokenizer,
                  boxes: str = "truth") -> References:
    """Every referring expression of ``n`` scenes, with the referred object's true box."""
    scenes = [sample_scene(seed, split, i) for i in range(n)]
    batch = scene_regions(scenes, size, extractor, _detector(seed, split, list(range(n)), boxes))
    scene_of, texts, targets = [], [], []
    for i, scene in enumerate(scenes):
        true_boxes = render(scene, size).boxes
        for e in referring_expressions(scene):
            scene_of.append(i)
            texts.append(e["phrase"])
            targets.append(true_boxes[e["object"]])
    data = scene_texts(batch, scene_of, texts, tokenizer)
    target = torch.from_numpy(np.stack(targets)).float()
    return References(data, target, refexp_hits(data.boxes[data.scene_of], data.region_mask[data.scene_of], target))


def vcr_scenes(split: str, n: int, seed: int) -> tuple[list[Scene], list[dict], list[int]]:
    """``n`` VCR items: scene i, or the next scene i + k·n that has one (as ``VCRDataset``) → (scenes,
    items, scene indices)."""
    scenes, items, indices = [], [], []
    for i in range(n):
        k, scene = 0, sample_scene(seed, split, i)
        while (item := vcr(scene)) is None:
            k += 1
            scene = sample_scene(seed, split, i + k * n)
        scenes.append(scene)
        items.append(item)
        indices.append(i + k * n)
    return scenes, items, indices


def world_vcr(split: str, n: int, seed: int, size: int, extractor: RegionExtractor, tokenizer: TextTokenizer,
              boxes: str = "truth") -> VCRItems:
    """``n`` VCR items (:func:`vcr_scenes`)."""
    scenes, items, indices = vcr_scenes(split, n, seed)
    batch = scene_regions(scenes, size, extractor, _detector(seed, split, indices, boxes))
    texts, scene_of = [], []
    for i, it in enumerate(items):
        q, right = it["question"], it["answers"][it["answer"]]
        texts += [f"{q} [SEP] {a}" for a in it["answers"]] + [f"{q} {right} [SEP] {r}" for r in it["rationales"]]
        scene_of += [i] * 8
    return VCRItems(scene_texts(batch, scene_of, texts, tokenizer), torch.tensor([it["answer"] for it in items]),
                    torch.tensor([it["rationale"] for it in items]))


# The sources: each reads the run's region tower (``kind.extractor``) and tokenizer.

def _scenes(kind, split: str) -> tuple[int, int, int]:
    d = kind.cfg.data
    return (d.train_n if split == "train" else d.val_n), d.seed, d.image_size


def region_captions(kind, split: str) -> RegionCaptions:
    n, seed, size = _scenes(kind, split)
    return world_region_captions(split, n, seed, size, kind.extractor, kind.tokenizer)


_classifiers: dict[tuple, object] = {}


def region_classifier(kind):
    """The region classifier whose class distributions are ViLBERT's masked-region targets: fitted
    on the training scenes' true object boxes and on boxes that cover nothing (once per tower and
    scenes: a run's training and validation share it)."""
    d = kind.cfg.data
    key = (str(d.region_tower), d.train_n, d.seed, d.image_size)
    if key not in _classifiers:
        features, labels = world_region_labels("train", d.train_n, d.seed, d.image_size, kind.extractor)
        _classifiers.clear()
        _classifiers[key] = train_region_classifier(features, labels, len(REGION_CLASSES), seed=d.seed)
    return _classifiers[key]


def region_captions_with_classes(kind, split: str) -> RegionCaptions:
    """:func:`region_captions` with each region's class distribution from :func:`region_classifier`;
    validation also reports that classifier's accuracy on the val scenes' true labels and the share
    of the most common object class (what a blind guess of a masked region gets)."""
    n, seed, size = _scenes(kind, split)
    data = region_captions(kind, split)
    classifier = region_classifier(kind)
    data.region_targets = classifier.distribution(data.regions)
    if split != "train":
        features, labels = world_region_labels(split, n, seed, size, kind.extractor)
        objects = labels[labels > 0]
        data.metrics = {
            "region_classifier_val_accuracy": (classifier(features).argmax(-1) == labels).float().mean().item(),
            "masked_region_majority_baseline": torch.bincount(objects).max().item() / max(len(objects), 1)}
    return data


def region_questions(kind, split: str) -> RegionQuestions:
    n, seed, size = _scenes(kind, split)
    return world_region_questions(split, n, seed, size, kind.extractor, kind.tokenizer)


def region_statements(kind, split: str) -> Statements:
    n, seed, size = _scenes(kind, split)
    return world_consistency(split, n, seed, size, kind.extractor, kind.tokenizer, kind.cfg.data.boxes)


def region_references(kind, split: str) -> References | dict[str, References]:
    """Training: on ``data.boxes`` regions. Validation: on both the true and the detector's regions
    ({"truth_boxes": …, "detector_boxes": …}), since what a detector misses cannot be referred to."""
    n, seed, size = _scenes(kind, split)
    if split == "train":
        return world_refexps(split, n, seed, size, kind.extractor, kind.tokenizer, kind.cfg.data.boxes)
    return {f"{boxes}_boxes": world_refexps(split, n, seed, size, kind.extractor, kind.tokenizer, boxes)
            for boxes in ("truth", "detector")}


def region_choices(kind, split: str) -> VCRItems:
    n, seed, size = _scenes(kind, split)
    return world_vcr(split, n, seed, size, kind.extractor, kind.tokenizer, kind.cfg.data.boxes)


for examples, load, reads in (("region_captions", region_captions, REGIONS),
                              ("region_captions_with_classes", region_captions_with_classes, REGIONS),
                              ("region_questions", region_questions, REGIONS),
                              ("region_statements", region_statements, REGIONS + ("boxes",)),
                              ("region_references", region_references, REGIONS + ("boxes",)),
                              ("region_choices", region_choices, REGIONS + ("boxes",))):
    register_source(Source("world", examples, load, reads, about="rendered scenes read as regions"))
