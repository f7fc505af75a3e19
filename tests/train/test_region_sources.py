"""The region sources on the user's own files (VQA v2, VCR, RefCOCO, Hateful Memes, COCO captions):
each reader on small files in the real layout about real pictures, bad rows named while the rest load,
a few steps through `polymodal train`, and evaluation next to its baselines."""

import json

import pytest
import torch
from region_files import coco_pictures, write_vqa_v2
from typer.testing import CliRunner

from polymodal.cli import app
from polymodal.data.vqa import read_vqa_v2
from polymodal.train.config import ConfigError, load_config
from polymodal.train.trainer import Trainer, run


def _cfg(out, tower, minilm_dir, kind, source, *extra):
    return load_config(None, [f"objective.kind={kind}", "model.preset=visualbert-tiny", f"data.kind={source}",
                              f"data.region_tower={tower}", f"data.tokenizer={minilm_dir}", "data.context_length=32",
                              "train.batch_size=8", "train.steps=2", "train.ckpt_every=2", "train.threads=1",
                              "train.log_every=1", "optim.warmup_steps=1", f"train.out={out}", *extra])


@pytest.fixture(scope="module")
def vqa_files(tmp_path_factory, photos):
    root = tmp_path_factory.mktemp("vqa")
    train = coco_pictures(photos[:10], root / "train2014")
    val = coco_pictures(photos[10:], root / "val2014", "val2014", first_id=100)
    q, a = write_vqa_v2(root, train, "train")
    vq, va = write_vqa_v2(root, val, "val", first_qid=1000)
    return root, q, a, vq, va


def test_vqa_v2_bad_records_are_named_and_the_rest_load(tmp_path, vqa_files):
    root, q, a, *_ = vqa_files
    questions = json.loads(q.read_text())
    annotations = json.loads(a.read_text())
    annotations["annotations"][1]["answers"] = annotations["annotations"][1]["answers"][:7]  # wrong length
    annotations["annotations"].append({**annotations["annotations"][0], "question_id": 99999})  # no question
    (tmp_path / "a.json").write_text(json.dumps(annotations))
    problems = []
    rows = read_vqa_v2(q, tmp_path / "a.json", problems)
    assert len(rows) == len(questions["questions"]) - 1
    assert any("annotation 1 (question 2) has 7 answers, VQA v2 gives 10" in p for p in problems)
    assert any("question 99999 has no question" in p for p in problems)
    assert any("question 1 (id 2) has no usable annotation" in p for p in problems)


def test_vqa_v2_trains_and_evaluates_on_files(tmp_path, vqa_files, tower, minilm_dir):
    root, q, a, vq, va = vqa_files
    questions = json.loads(q.read_text())
    questions["questions"].append({"question_id": 777, "image_id": 555, "question": "where is it?"})  # no picture
    (tmp_path / "q.json").write_text(json.dumps(questions))
    annotations = json.loads(a.read_text())
    annotations["annotations"].append({**annotations["annotations"][0], "question_id": 777, "image_id": 555})
    (tmp_path / "a.json").write_text(json.dumps(annotations))
    cfg = _cfg(tmp_path / "run", tower, minilm_dir, "vqa", "vqa_v2", f"data.questions={tmp_path / 'q.json'}",
               f"data.annotations={tmp_path / 'a.json'}", f"data.images={root / 'train2014'}",
               f"data.val_questions={vq}", f"data.val_annotations={va}", f"data.val_images={root / 'val2014'}")
    with pytest.warns(UserWarning, match="skipped 1 train item"):
        trainer = Trainer(cfg)
    data = trainer.kind.data
    assert len(data) == 30 and data.regions.shape[:2] == (10, 5)  # the whole picture + a 2 × 2 grid
    assert set(data.answer_types) == {"other", "yes/no", "number"}
    assert data.answers[0] == ["black"] * 8 + ["maybe"] * 2
    skipped = (tmp_path / "run" / "skipped.txt").read_text()
    assert "question 777" in skipped and "image 555 is not in" in skipped
    assert sorted(trainer.kind.answers) == sorted(["black", "white", "yes", "no", "1", "2", "maybe"])
    result = run(cfg)
    for key in ("val_accuracy", "val_majority_answer_accuracy", "val_answer_prior_by_type_accuracy",
                "val_accuracy_how many", "val_accuracy_answer_type_yes/no", "val_accuracy_without_regions"):
        assert 0.0 <= result[key] <= 1.0, key
    assert result["val_questions"] == 9
    # the prior per question type: every "how many" question in training is answered "1" or "2" (5 each)
    assert result["val_answer_prior_by_type_accuracy"] >= result["val_majority_answer_accuracy"]
    # the cache: a second run reads every picture's regions from train.out/region_cache
    assert len(list((tmp_path / "run" / "region_cache").glob("*.npz"))) == 13


def test_vqa_v2_refuses_settings_it_does_not_read_and_missing_files(tmp_path, vqa_files, tower, minilm_dir):
    root, q, a, *_ = vqa_files
    with pytest.raises(ConfigError, match="data.path: not read by data.kind vqa_v2"):
        Trainer(_cfg(tmp_path, tower, minilm_dir, "vqa", "vqa_v2", f"data.questions={q}", f"data.annotations={a}",
                     f"data.path={q}"))
    with pytest.raises(ConfigError, match="data.kind vqa_v2 needs data.questions"):
        Trainer(_cfg(tmp_path, tower, minilm_dir, "vqa", "vqa_v2"))
    with pytest.raises(ConfigError, match=r"10 of 10 train pictures have no regions"):
        Trainer(_cfg(tmp_path, tower, minilm_dir, "vqa", "vqa_v2", f"data.questions={q}", f"data.annotations={a}",
                     f"data.images={tmp_path}"))
