"""``objective.kind masked_multimodal``: ViLBERT's pretraining on the world's captions and regions —
masked words, masked regions whose class distribution is regressed (KL), and alignment.

The class distributions come from a small region classifier
(:mod:`polymodal.world.region_classifier`) fitted first, on the same frozen tower's features of
the training scenes' true object boxes and of boxes that cover nothing; its validation accuracy is
reported with the run's metrics, as the quality of the "detector" the targets come from.
"""

from __future__ import annotations

import torch
from torch import nn

from ..world.labels import REGION_CLASSES
from ..objectives import MaskedMultimodal, Objective, mask_regions
from ..world.region_classifier import RegionClassifier, train_region_classifier, world_region_labels
from .config import ConfigError
from .kinds import register_kind
from .region_data import RegionCaptions, mlm_itm_batch, special_ids, world_region_captions
from .region_kinds import RegionKind, evaluate_region_lm, pretraining_outputs


def region_targets(classifier: RegionClassifier, data: RegionCaptions) -> torch.Tensor:
    """The classifier's class distribution of every region of ``data``: [N, R, C]."""
    return classifier.distribution(data.regions)


def masked_multimodal_batch(data: RegionCaptions, targets: torch.Tensor, step: int, batch_size: int, seed: int,
                            tokenizer_ids: dict[str, int], vocab_size: int, rank: int = 0, world: int = 1) -> dict:
    """:func:`~polymodal.train.region_data.mlm_itm_batch` (masked words, half the captions another
    scene's) plus 15 % of the object regions masked, with their targets [B, R, C]."""
    b = mlm_itm_batch(data, step, batch_size, seed, tokenizer_ids, vocab_size, rank, world)
    g = torch.Generator().manual_seed(seed * 1_000_003 + step * 7 + rank + 500_009)
    regions, masked = mask_regions(b["regions"], b["region_mask"], generator=g)
    scenes = b.pop("scenes")
    return {**b, "regions": regions, "masked_regions": masked, "region_targets": targets[scenes],
            "align_labels": b.pop("itm_labels")}


@register_kind("masked_multimodal")
class MaskedMultimodalKind(RegionKind):
    """ViLBERT pretraining: masked multimodal learning + alignment on world captions."""

    def load_data(self) -> None:
        self.load_tokenizer()
        d = self.cfg.data
        self.data = world_region_captions("train", d.train_n, d.seed, d.image_size, self.extractor, self.tokenizer)
        features, labels = world_region_labels("train", d.train_n, d.seed, d.image_size, self.extractor)
        self.classifier = train_region_classifier(features, labels, len(REGION_CLASSES), seed=d.seed)
        self.targets = region_targets(self.classifier, self.data)

    def build_model(self) -> nn.Module:
        if self.cfg.model.preset.startswith("visualbert"):
            raise ConfigError(f"objective.kind masked_multimodal pretrains a ViLBERT; model.preset "
                              f"{self.cfg.model.preset!r} is a VisualBERT (it pretrains with mlm_itm)")
        # the region-class head predicts the world's classes (colour × shape + background)
        return self.trunk(self.data.regions.shape[-1], region_classes=len(REGION_CLASSES))

    def objective(self, model: nn.Module) -> Objective:
        return MaskedMultimodal()

    def batch(self, step: int) -> dict:
        t = self.cfg.train
        return masked_multimodal_batch(self.data, self.targets, step, t.batch_size, t.seed, self.special,
                                       self.tokenizer.vocab_size, self.rank, self.world)

    def evaluate(self, model: nn.Module) -> dict:
        result = evaluate_region_lm(model, self.cfg, self.extractor, self.tokenizer)
        return {**result, **evaluate_masked_regions(model, self)}


@torch.no_grad()
def evaluate_masked_regions(model: nn.Module, kind: MaskedMultimodalKind, batch: int = 128) -> dict:
    """On the validation scenes: how often the top class of a masked region is the classifier's top
    class for it (with the caption, fixed masking seed), the classifier's own accuracy on the val
    scenes' true labels, and the share of the most common class (what a blind guess gets)."""
    model.eval()
    d = kind.cfg.data
    val = world_region_captions("val", d.val_n, d.seed, d.image_size, kind.extractor, kind.tokenizer)
    features, labels = world_region_labels("val", d.val_n, d.seed, d.image_size, kind.extractor)
    classifier = getattr(kind, "classifier", None)
    result = {}
    if classifier is None:  # polymodal eval: refit it, as the run did
        tf, tl = world_region_labels("train", d.train_n, d.seed, d.image_size, kind.extractor)
        classifier = train_region_classifier(tf, tl, len(REGION_CLASSES), seed=d.seed)
    result["region_classifier_val_accuracy"] = (classifier(features).argmax(-1) == labels).float().mean().item()
    targets = region_targets(classifier, val)
    special = special_ids(kind.tokenizer)
    hits = total = 0
    size = min(batch, len(val))
    for step in range(max(1, len(val) // size)):
        b = masked_multimodal_batch(val, targets, step, size, d.seed + 1, special, kind.tokenizer.vocab_size)
        out = pretraining_outputs(model, b)
        masked = b["masked_regions"]
        hits += int((out["region_logits"][masked].argmax(-1) == b["region_targets"][masked].argmax(-1)).sum())
        total += int(masked.sum())
    result["masked_region_accuracy"] = hits / max(total, 1)
    result["masked_region_majority_baseline"] = torch.bincount(labels[labels > 0]).max().item() / max(
        int((labels > 0).sum()), 1)
    result["masked_region_n"] = total
    return result
