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

from ..objectives import MaskedMultimodal, Objective, mask_regions
from .config import ConfigError
from .kinds import register_kind
from .region_data import RegionCaptions, mlm_itm_batch, special_ids
from .region_kinds import RegionKind, evaluate_region_lm, pretraining_outputs

def masked_multimodal_batch(data: RegionCaptions, targets: torch.Tensor, step: int, batch_size: int, seed: int,
                            tokenizer_ids: dict[str, int], vocab_size: int, rank: int = 0, world_size: int = 1) -> dict:
    """:func:`~polymodal.train.region_data.mlm_itm_batch` (masked words, half the captions another
    scene's) plus 15 % of the object regions masked, with their targets [B, R, C]."""
    b = mlm_itm_batch(data, step, batch_size, seed, tokenizer_ids, vocab_size, rank, world_size)
    g = torch.Generator().manual_seed(seed * 1_000_003 + step * 7 + rank + 500_009)
    regions, masked = mask_regions(b["regions"], b["region_mask"], generator=g)
    scenes = b.pop("scenes")
    return {**b, "regions": regions, "masked_regions": masked, "region_targets": targets[scenes],
            "align_labels": b.pop("itm_labels")}


@register_kind("masked_multimodal")
class MaskedMultimodalKind(RegionKind):
    """ViLBERT pretraining: masked multimodal learning + alignment on captioned regions."""

    examples = "region_captions_with_classes"

    def load_data(self) -> None:
        self.load_tokenizer()
        self.data = self.load_examples("train")
        self.targets = self.data.region_targets

    def build_model(self) -> nn.Module:
        if self.cfg.model.preset.startswith("visualbert"):
            raise ConfigError(f"objective.kind masked_multimodal pretrains a ViLBERT; model.preset "
                              f"{self.cfg.model.preset!r} is a VisualBERT (it pretrains with mlm_itm)")
        # the region-class head predicts the classes of the examples' targets (the world's: colour × shape + background)
        return self.trunk(self.data.regions.shape[-1], region_classes=self.targets.shape[-1])

    def objective(self, model: nn.Module) -> Objective:
        return MaskedMultimodal()

    def batch(self, step: int) -> dict:
        t = self.cfg.train
        return masked_multimodal_batch(self.data, self.targets, step, t.batch_size, t.seed, self.special,
                                       self.tokenizer.vocab_size, self.rank, self.world_size)

    def evaluate(self, model: nn.Module) -> dict:
        val = self.load_examples("val")
        if val is None:
            return {}
        result = evaluate_region_lm(model, val, self.tokenizer, self.cfg.data.seed)
        return {**result, **val.metrics, **evaluate_masked_regions(model, val, self.tokenizer, self.cfg.data.seed)}


@torch.no_grad()
def evaluate_masked_regions(model: nn.Module, val: RegionCaptions, tokenizer, seed: int, batch: int = 128) -> dict:
    """On the validation captions: how often the top class of a masked region is the top class of its
    target (with the caption, fixed masking ``seed``)."""
    model.eval()
    special = special_ids(tokenizer)
    hits = total = 0
    size = min(batch, len(val))
    for step in range(max(1, len(val) // size)):
        b = masked_multimodal_batch(val, val.region_targets, step, size, seed + 1, special, tokenizer.vocab_size)
        out = pretraining_outputs(model, b)
        masked = b["masked_regions"]
        hits += int((out["region_logits"][masked].argmax(-1) == b["region_targets"][masked].argmax(-1)).sum())
        total += int(masked.sum())
    return {"masked_region_accuracy": hits / max(total, 1), "masked_region_n": total}
