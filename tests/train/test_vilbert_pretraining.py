"""ViLBERT pretraining on world regions (objective.kind=masked_multimodal): region masking, the KL to
the region classifier's distributions, the world's region classes, and a run that trains,
evaluates (words and regions) and saves."""

import json

import pytest
import torch

from polymodal.world.labels import REGION_CLASSES
from polymodal.objectives import MaskedMultimodal, mask_regions
from polymodal.world.region_classifier import background_box, train_region_classifier, world_region_labels
from polymodal.train.config import ConfigError, load_config
from polymodal.train.region_kinds import region_extractor
from polymodal.train.trainer import Trainer, run


def _cfg(tmp_path, tower, minilm_dir, *extra):
    return load_config(None, ["objective.kind=masked_multimodal", "model.preset=vilbert-tiny",
                              f"data.region_tower={tower}", f"data.tokenizer={minilm_dir}", "data.context_length=32",
                              "data.train_n=48", "data.val_n=32", "train.batch_size=16", "train.steps=2",
                              "train.threads=1", "optim.warmup_steps=1", f"train.out={tmp_path}", *extra])


def test_mask_regions_picks_real_object_regions_and_zeroes_most():
    g = torch.Generator().manual_seed(0)
    features = torch.ones(400, 6, 3)
    mask = torch.ones(400, 6, dtype=torch.long)
    mask[:, 4:] = 0
    out, chosen = mask_regions(features, mask, generator=g)
    assert not chosen[:, 0].any() and not chosen[:, 4:].any()  # never the whole image, never padding
    rate = chosen[:, 1:4].float().mean().item()
    assert 0.11 < rate < 0.19
    zeroed = (out[chosen] == 0).all(-1).float().mean().item()
    assert 0.8 < zeroed < 0.97 and bool((out[~chosen] == 1).all())


def test_masked_multimodal_loss_is_the_kl_to_the_targets():
    target = torch.tensor([[[1.0, 0.0, 0.0], [0.2, 0.5, 0.3]]])

    def model(ids, regions, boxes, attention_mask, region_mask):
        return {"mlm_logits": torch.zeros(1, 2, 5), "region_logits": target.log().clamp(min=-30),
                "align_logits": torch.tensor([[10.0, -10.0]])}

    batch = {"ids": torch.zeros(1, 2, dtype=torch.long), "regions": None, "boxes": None, "attention_mask": None,
             "region_mask": None, "mlm_labels": torch.full((1, 2), -100), "region_targets": target,
             "masked_regions": torch.tensor([[False, True]]), "align_labels": torch.tensor([0])}
    loss, logs = MaskedMultimodal().loss(model, batch)
    assert logs["region_kl"] == pytest.approx(0.0, abs=1e-6) and loss.item() == pytest.approx(0.0, abs=1e-4)
    uniform = lambda *a: {**model(*a), "region_logits": torch.zeros(1, 2, 3)}  # noqa: E731
    _, logs = MaskedMultimodal().loss(uniform, batch)
    expected = sum(p * torch.log(torch.tensor(p * 3)) for p in (0.2, 0.5, 0.3))
    assert logs["region_kl"] == pytest.approx(expected.item(), rel=1e-5)


def test_world_region_labels_and_classifier(tower):
    assert len(REGION_CLASSES) == 49 and REGION_CLASSES[0] == "background"
    boxes = torch.tensor([[0.0, 0, 64, 64]]).numpy()
    import numpy as np

    assert background_box(boxes, 64, np.random.default_rng(0)) is None  # nowhere free
    features, labels = world_region_labels("train", 30, 0, 64, region_extractor(str(tower)))
    assert len(features) == len(labels) and (labels == 0).sum() >= 25 and (labels > 0).sum() >= 30
    # Separable labels are learnt: the plumbing (shapes, optimiser) works.
    x = torch.randn(600, 8)
    y = x[:, :3].argmax(1)
    clf = train_region_classifier(x, y, 3, steps=300)
    assert (clf(x).argmax(1) == y).float().mean() > 0.9
    assert torch.allclose(clf.distribution(x).sum(-1), torch.ones(600))


@pytest.mark.slow
def test_a_vilbert_pretraining_run_trains_evaluates_and_saves(tmp_path, tower, minilm_dir):
    trainer = Trainer(_cfg(tmp_path / "a", tower, minilm_dir))
    b = trainer._batch(1)
    assert b["region_targets"].shape == (*b["regions"].shape[:2], 49) and b["masked_regions"].dtype == torch.bool
    assert b["align_labels"].tolist() == [0] * 8 + [1] * 8 and b["boxes"].shape[-1] == 5
    assert all(torch.equal(v, trainer._batch(1)[k]) for k, v in b.items())  # a pure function of the step
    result = run(_cfg(tmp_path / "b", tower, minilm_dir))
    for key in ("mlm_accuracy", "mlm_without_regions_accuracy", "itm_accuracy", "masked_region_accuracy",
                "region_classifier_val_accuracy", "masked_region_majority_baseline"):
        assert 0.0 <= result[key] <= 1.0, key
    assert result["masked_region_n"] > 0
    saved = json.loads((tmp_path / "b" / "model" / "config.json").read_text())
    assert saved["family"] == "vilbert" and saved["config"]["region_classes"] == 49
    with pytest.raises(ConfigError, match="pretrains a ViLBERT"):
        Trainer(_cfg(tmp_path / "c", tower, minilm_dir, "model.preset=visualbert-tiny"))
