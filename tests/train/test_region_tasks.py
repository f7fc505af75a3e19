"""The region tasks besides VQA through `polymodal train` (objective.kind consistency, refexp, vcr):
their world data, the scoring heads and objectives, the single-modality inputs, the metrics, and
`polymodal eval` on a saved folder."""

import json

import pytest
import torch
from typer.testing import CliRunner

from polymodal.cli import app
from polymodal.eval.metrics import auroc, box_iou
from polymodal.models.region_scorer import RegionScorer, RegionScorerConfig
from polymodal.objectives import BinaryMatch, MultipleChoice
from polymodal.registry import preset
from polymodal.train.config import ConfigError, load_config
from polymodal.train.region_kinds import keep_inputs, region_extractor
from polymodal.world.sources.regions import world_consistency, world_refexps, world_vcr
from polymodal.train.trainer import Trainer, run


@pytest.fixture(scope="module")
def tokenizer(minilm_dir):
    from polymodal.modalities.text import load_tokenizer

    return load_tokenizer(minilm_dir, 32)


def _cfg(tmp_path, tower, minilm_dir, kind, *extra, preset_name="visualbert-tiny"):
    return load_config(None, [f"objective.kind={kind}", f"model.preset={preset_name}", f"data.region_tower={tower}",
                              f"data.tokenizer={minilm_dir}", "data.context_length=32", "data.train_n=48",
                              "data.val_n=24", "train.batch_size=16", "train.steps=2", "train.ckpt_every=2",
                              "train.threads=1", "optim.warmup_steps=1", f"train.out={tmp_path}", *extra])


def test_auroc_and_box_iou_match_hand_computed_values():
    assert auroc(torch.tensor([0.1, 0.4, 0.35, 0.8]), torch.tensor([0, 0, 1, 1])) == pytest.approx(0.75)
    assert auroc(torch.tensor([2.0, 2.0, 1.0]), torch.tensor([1, 0, 0])) == pytest.approx(0.75)  # a tie counts half
    with pytest.raises(ValueError, match="both classes"):
        auroc(torch.tensor([0.1, 0.2]), torch.tensor([1, 1]))
    iou = box_iou(torch.tensor([[0.0, 0, 10, 10], [0, 0, 0, 5]]), torch.tensor([[5.0, 0, 15, 10], [0, 0, 10, 10]]))
    assert iou.tolist() == [[pytest.approx(1 / 3), 1.0], [0.0, 0.0]]


def test_multiple_choice_counts_every_right_option_and_refuses_rows_without_one():
    class Fixed(torch.nn.Module):
        def forward(self, ids, regions, attention_mask, region_mask, boxes):
            return {"logits": torch.tensor([[0.0, 0.0, float("-inf")]])}

    batch = {"ids": None, "regions": None, "attention_mask": None, "region_mask": None}
    loss, logs = MultipleChoice().loss(Fixed(), {**batch, "positives": torch.tensor([[True, True, False]])})
    assert loss.item() == pytest.approx(0.0, abs=1e-6) and logs["accuracy"] == 1.0  # all mass on the right two
    loss, _ = MultipleChoice().loss(Fixed(), {**batch, "positives": torch.tensor([[True, False, False]])})
    assert loss.item() == pytest.approx(torch.log(torch.tensor(2.0)).item())
    with pytest.raises(ValueError, match="at least one right option"):
        MultipleChoice().loss(Fixed(), {**batch, "positives": torch.tensor([[False, False, False]])})


@pytest.mark.parametrize("name", ["visualbert-tiny", "vilbert-tiny"])
def test_region_scorer_learns_to_pick_the_marked_region(name):
    """Plumbing that could be wrong (masking, head width, per-region rows): the referred region is the
    one whose first feature is large; a few dozen steps must find it well above chance (1/4)."""
    torch.manual_seed(0)
    model = RegionScorer(RegionScorerConfig(preset(name), per_region=True))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    dim = model.config.trunk.visual_dim

    def batch(n):
        regions, target = torch.randn(n, 4, dim), torch.randint(0, 4, (n,))
        regions[torch.arange(n), target, 0] = 4.0
        mask = torch.ones(n, 4, dtype=torch.long)
        return {"ids": torch.randint(5, 100, (n, 5)), "attention_mask": torch.ones(n, 5, dtype=torch.long),
                "regions": regions, "region_mask": mask, "boxes": torch.rand(n, 4, 5),
                "positives": torch.nn.functional.one_hot(target, 4).bool()}

    for _ in range(60):
        loss, _ = MultipleChoice().loss(model, batch(32))
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        _, logs = MultipleChoice().loss(model, batch(256))
    assert logs["accuracy"] > 0.8
    b = batch(2)
    b["region_mask"][1, 2:] = 0
    logits = model(b["ids"], b["regions"], b["attention_mask"], b["region_mask"], b["boxes"])["logits"]
    assert logits.shape == (2, 4) and (logits[1, 2:] == torch.finfo(logits.dtype).min).all()
    assert logits[0].abs().max() < 1e6


def test_keep_inputs_removes_one_side_for_both_families():
    for name in ("visualbert-tiny", "vilbert-tiny"):
        model = RegionScorer(RegionScorerConfig(preset(name)))
        c = model.config.trunk
        b = {"ids": torch.randint(5, 100, (2, 6)), "attention_mask": torch.ones(2, 6, dtype=torch.long),
             "regions": torch.randn(2, 3, c.visual_dim), "region_mask": torch.ones(2, 3, dtype=torch.long),
             "boxes": torch.rand(2, 3, 5), "labels": torch.tensor([0, 1])}
        text = keep_inputs(b, "text")
        assert text["regions"].shape == (2, 1, c.visual_dim) and not text["regions"].any() and not text["boxes"].any()
        image = keep_inputs(b, "image")
        assert image["ids"].shape == (2, 1) and torch.equal(image["regions"], b["regions"])
        for x in (text, image):  # one blank region / the [CLS] token alone: still a finite score
            out = model(x["ids"], x["regions"], x["attention_mask"], x["region_mask"], x["boxes"])["logits"]
            assert torch.isfinite(out).all()
        with pytest.raises(ValueError, match="inputs must be"):
            keep_inputs(b, "audio")
    with pytest.raises(ValueError, match="logits"):
        BinaryMatch().loss(lambda *a: {"logits": torch.zeros(3)}, {**b, "labels": torch.tensor([0, 1])})


def test_world_task_data(tower, tokenizer):
    extractor = region_extractor(str(tower))
    statements = world_consistency("val", 40, 0, 64, extractor, tokenizer)
    data, labels, kinds = statements.texts, statements.labels, statements.kinds
    assert len(data) == 40 and set(labels.tolist()) == {0, 1} and set(kinds) <= {"colour", "count", "relation"}
    assert 0.3 < labels.float().mean() < 0.7  # balanced: the statement alone is at chance
    references = world_refexps("val", 20, 0, 64, extractor, tokenizer)
    refs, target, positives = references.texts, references.target, references.positives
    assert len(refs) == len(target) == len(positives) > 20  # several expressions per scene
    assert bool(positives.any(1).all())  # true boxes: the object's own region is always there (IoU 1)
    assert not positives[:, 0].any()  # the whole image is never the object
    noisy = world_refexps("val", 20, 0, 64, extractor, tokenizer, boxes="detector").positives
    assert noisy.shape[1] == positives.shape[1] + 1 and noisy.any(1).float().mean() < 1.0  # a detector misses some
    items = world_vcr("val", 6, 0, 64, extractor, tokenizer)
    assert len(items.texts) == 48 and items.texts.scene_of.tolist()[:9] == [0] * 8 + [1]
    first = items.texts.texts[:8]
    assert all(" [SEP] " in t for t in first) and first[int(items.answer[0])].startswith("what colour is the")
    right = first[int(items.answer[0])].split(" [SEP] ")[1]
    assert all(t.split(" [SEP] ")[0].endswith(right) for t in first[4:])  # QA→R is posed with the right answer


def test_vcr_batches_pose_each_item_four_options_of_one_subtask(tmp_path, tower, minilm_dir):
    trainer = Trainer(_cfg(tmp_path, tower, minilm_dir, "vcr", "train.batch_size=8"))
    b = trainer._batch(0)
    assert b["ids"].shape[0] == 32 and b["positives"].shape == (8, 4) and bool((b["positives"].sum(1) == 1).all())
    assert torch.equal(b["ids"], trainer._batch(0)["ids"])  # a pure function of the step


@pytest.mark.parametrize("kind,keys", [
    ("consistency", {"val_accuracy", "val_auroc", "val_majority_baseline"}),
    ("refexp", {"val_accuracy_truth_boxes", "val_accuracy_detector_boxes", "val_chance_detector_boxes",
                "val_ceiling_detector_boxes"}),
    ("vcr", {"val_q_a_accuracy", "val_qa_r_accuracy", "val_q_ar_accuracy"})])
@pytest.mark.slow
def test_each_task_trains_saves_and_evaluates_from_the_command_line(tmp_path, tower, minilm_dir, kind, keys):
    cfg = _cfg(tmp_path / "run", tower, minilm_dir, kind, preset_name="vilbert-tiny" if kind == "refexp" else
               "visualbert-tiny")
    result = run(cfg)
    assert keys <= set(result) and all(0.0 <= result[k] <= 1.0 for k in keys)
    if kind == "refexp":
        assert result["val_ceiling_truth_boxes"] == 1.0 and result["val_ceiling_detector_boxes"] < 1.0
        assert result["val_chance_truth_boxes"] < 0.5
    folder = tmp_path / "run" / "model"
    assert (folder / "region_tower.json").is_file()
    (tmp_path / "cfg.yaml").write_text(json.dumps(cfg.to_dict()))
    out = CliRunner().invoke(app, ["eval", str(tmp_path / "cfg.yaml"), "--checkpoint", str(folder)])
    assert out.exit_code == 0, out.output
    assert json.loads((folder / "eval.json").read_text()) == {k: result[k] for k in result if k != "final_loss"}


def test_refexp_refuses_text_only_inputs(tmp_path, tower, minilm_dir):
    with pytest.raises(ConfigError, match="refexp picks a region"):
        Trainer(_cfg(tmp_path, tower, minilm_dir, "refexp", "objective.inputs=text"))
    with pytest.raises(ConfigError, match="objective.inputs: 'audio' is not one of"):
        _cfg(tmp_path, tower, minilm_dir, "refexp", "objective.inputs=audio")
