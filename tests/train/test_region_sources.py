"""The region sources on the user's own files (VQA v2, VCR, RefCOCO, Hateful Memes, COCO captions):
each reader on small files in the real layout about real pictures, bad rows named while the rest load,
a few steps through `polymodal train`, and evaluation next to its baselines."""

import json

import pytest
import torch
from region_files import coco_pictures, write_coco, write_memes, write_refcoco, write_vcr, write_vqa_v2
from typer.testing import CliRunner

from polymodal.cli import app
from polymodal.data.memes import read_memes
from polymodal.data.records import AnnotationFormatError
from polymodal.data.refcoco import load_plain_pickle, read_ref_table
from polymodal.data.vcr import read_vcr
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


def test_memes_train_as_consistency_and_report_auroc_next_to_the_majority(tmp_path, photos, tower, minilm_dir):
    train = write_memes(tmp_path, photos[:8], "train")
    val = write_memes(tmp_path, photos[8:], "dev", first_id=100)
    lines = train.read_text().splitlines()
    lines += ['{"id": 5, "img": "img/00001.png", "label": 1, "text": "   "}',  # no text
              '{"id": 6, "img": "../../etc/passwd", "label": 0, "text": "x"}',  # outside the folder
              '{"id": 7, "img": "img/00001.png", "label": 3, "text": "x"}', "{not json"]
    train.write_text("\n".join(lines) + "\n")
    memes, problems = read_memes(train)
    assert len(memes) == 16 and len(problems) == 4
    assert any(":17: the meme has no text" in p for p in problems)
    assert any(":18: '../../etc/passwd' lies outside" in p for p in problems)
    assert any("label 3 is not 0 or 1" in p for p in problems) and any(":20: not JSON" in p for p in problems)
    cfg = _cfg(tmp_path / "run", tower, minilm_dir, "consistency", "memes", f"data.path={train}", f"data.val_path={val}")
    result = run(cfg)
    assert result["val_n"] == 10 and 0 <= result["val_auroc"] <= 1 and result["val_majority_baseline"] == 0.5
    assert "no text" in (tmp_path / "run" / "skipped.txt").read_text()
    text_only = run(_cfg(tmp_path / "text", tower, minilm_dir, "consistency", "memes", f"data.path={train}",
                         f"data.val_path={val}", "objective.inputs=text"))
    assert 0 <= text_only["val_auroc"] <= 1


def test_coco_captions_pretrain_visualbert_and_vilbert_with_object_classes(tmp_path, photos, tower, minilm_dir):
    train = coco_pictures(photos[:8], tmp_path / "train2017", "train2017")
    val = coco_pictures(photos[8:], tmp_path / "val2017", "val2017", first_id=100)
    captions, instances = write_coco(tmp_path, train, "train2017")
    val_captions, val_instances = write_coco(tmp_path, val, "val2017")
    common = [f"data.path={captions}", f"data.images={tmp_path / 'train2017'}", f"data.val_path={val_captions}",
              f"data.val_images={tmp_path / 'val2017'}"]
    result = run(_cfg(tmp_path / "vb", tower, minilm_dir, "mlm_itm", "coco_captions", *common))
    assert 0 <= result["mlm_accuracy"] <= 1 and 0 <= result["itm_accuracy"] <= 1
    with pytest.raises(ConfigError, match="needs each region's class distribution"):
        Trainer(_cfg(tmp_path / "vl0", tower, minilm_dir, "masked_multimodal", "coco_captions", *common,
                     "model.preset=vilbert-tiny"))
    cfg = _cfg(tmp_path / "vl", tower, minilm_dir, "masked_multimodal", "coco_captions", *common,
               "model.preset=vilbert-tiny", f"data.instances={instances}", f"data.val_instances={val_instances}")
    trainer = Trainer(cfg)
    targets = trainer.kind.targets
    assert targets.shape == (8, 3, 3)  # the whole picture + person + dog; classes background, dog, person
    assert targets[0].argmax(-1).tolist() == [0, 2, 1]
    result = run(cfg)
    assert 0 <= result["masked_region_accuracy"] <= 1 and result["masked_region_majority_baseline"] == 0.5
    assert result["object_words_n"] > 0 and 0 <= result["object_words_without_regions_accuracy"] <= 1


def test_refcoco_from_the_released_pickle_and_from_a_table(tmp_path, photos, tower, minilm_dir):
    train = coco_pictures(photos[:8], tmp_path / "train2014")
    val = coco_pictures(photos[8:], tmp_path / "train2014", first_id=100)
    refs, instances = write_refcoco(tmp_path, train, val)
    cfg = _cfg(tmp_path / "run", tower, minilm_dir, "refexp", "refcoco", f"data.path={refs}",
               f"data.instances={instances}", f"data.images={tmp_path / 'train2014'}")
    trainer = Trainer(cfg)
    assert len(trainer.kind.data) == 8 * 4 and trainer.kind.positives.shape == (32, 3)
    assert trainer.kind.positives[0].tolist() == [False, True, False]  # "the person top left": region 1
    result = run(cfg)
    assert result["val_expressions"] == 20
    assert result["val_ceiling_truth_boxes"] == 1.0 and 0 < result["val_chance_truth_boxes"] < 1
    assert 0 <= result["val_accuracy_grid_boxes"] <= result["val_ceiling_grid_boxes"] <= 1

    # a table: one expression's box lies outside its picture, one is empty
    rows = [{"image": f.name, "expression": "the dog", "box": [f_w / 2, f_h / 2, f_w, f_h]}
            for f, (f_w, f_h) in ((f, _size(f)) for _, f in train)]
    rows.append({"image": train[0][1].name, "expression": "the sky", "box": [0, 0, 99999, 10]})
    rows.append({"image": train[0][1].name, "expression": " ", "box": [0, 0, 5, 5]})
    table = tmp_path / "refs.jsonl"
    table.write_text("".join(json.dumps(r) + "\n" for r in rows))
    found, problems = read_ref_table(table)
    assert len(found) == 9 and any("empty expression" in p for p in problems)
    with pytest.warns(UserWarning):
        trainer = Trainer(_cfg(tmp_path / "table", tower, minilm_dir, "refexp", "refcoco", f"data.path={table}",
                               f"data.images={tmp_path / 'train2014'}"))
    assert len(trainer.kind.data) == 8
    assert "box [0.0, 0.0, 99999.0, 10.0] is outside its" in (tmp_path / "table" / "skipped.txt").read_text()


def _size(path):
    from region_files import picture_size

    return picture_size(path)


def test_a_refs_pickle_that_names_a_class_is_refused_without_running_it(tmp_path):
    import pickle

    class Boom:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "refs.p").write_bytes(pickle.dumps([{"ref_id": 1, "x": Boom()}], protocol=2))
    with pytest.raises(AnnotationFormatError, match=r"refs.p: refusing to load (__builtin__|builtins).print"):
        load_plain_pickle(tmp_path / "refs.p")
    (tmp_path / "cut.p").write_bytes(pickle.dumps([{"ref_id": 1}] * 3, protocol=2)[:-5])
    with pytest.raises(AnnotationFormatError, match="cut.p: (pickle data was truncated|not a readable pickle)"):
        load_plain_pickle(tmp_path / "cut.p")


def test_vcr_items_train_and_report_q_a_qa_r_q_ar(tmp_path, photos, tower, minilm_dir):
    train = write_vcr(tmp_path, photos[:8], "train")
    val = write_vcr(tmp_path, photos[8:], "val")
    lines = [json.loads(line) for line in train.read_text().splitlines()]
    bad = dict(lines[0], question=["Why", "is", [7], "here", "?"])  # object 7 of 2
    train.write_text("".join(json.dumps(line) + "\n" for line in [*lines, bad]))
    items, problems = read_vcr(train, tmp_path / "vcr1images")
    assert len(items) == 8 and items[0].question == "How is person related to dog?"
    assert items[0].rationales[0] == "person and dog sit together."
    assert problems == [f"{train}:9 question: object index 7 is out of range (the picture has 2 objects)"]
    cfg = _cfg(tmp_path / "run", tower, minilm_dir, "vcr", "vcr", f"data.path={train}", f"data.val_path={val}",
               f"data.images={tmp_path / 'vcr1images'}")
    trainer = Trainer(cfg)
    assert len(trainer.kind.items) == 8 and len(trainer.kind.items.texts) == 64
    assert trainer.kind.items.texts.regions.shape[1] == 3  # the whole picture + its two objects
    result = run(cfg)
    assert result["val_items"] == 5
    for key in ("val_q_a_accuracy", "val_qa_r_accuracy", "val_q_ar_accuracy"):
        assert 0 <= result[key] <= 1


def _tsv_row(image_id, w, h, boxes, features):
    import base64

    import numpy as np

    b = base64.b64encode(np.asarray(boxes, dtype=np.float32).tobytes()).decode()
    f = base64.b64encode(np.asarray(features, dtype=np.float32).tobytes()).decode()
    return f"{image_id}\t{w}\t{h}\t{len(boxes)}\t{b}\t{f}\n"


def test_vqa_v2_on_a_detectors_features_without_pictures_or_tower(tmp_path, vqa_files, minilm_dir):
    """data.regions: a bottom-up-attention TSV (2048-d, 10 boxes) matched by image id, with no picture
    folder and no region tower; a picture the TSV lacks is reported. Then .npz files `polymodal regions`
    wrote, matched by COCO file name."""
    root, q, a, vq, va = vqa_files
    g = torch.Generator().manual_seed(0)
    rows = [_tsv_row(i, 640, 480, [[0, 0, 64, 48]] * 10, torch.randn(10, 2048, generator=g).tolist()) for i in range(1, 10)]
    (tmp_path / "feats.tsv").write_text("".join(rows) + "bad\trow\n")
    cfg = load_config(None, ["objective.kind=vqa", "model.preset=visualbert-tiny", "data.kind=vqa_v2",
                             f"data.questions={q}", f"data.annotations={a}", f"data.regions={tmp_path / 'feats.tsv'}",
                             f"data.tokenizer={minilm_dir}", "data.context_length=32", "train.batch_size=8",
                             "train.steps=1", "train.threads=1", f"train.out={tmp_path / 'run'}"])
    with pytest.warns(UserWarning, match="skipped"):
        trainer = Trainer(cfg)
    assert trainer.kind.data.regions.shape == (9, 10, 2048)  # picture 10 is not in the TSV
    skipped = (tmp_path / "run" / "skipped.txt").read_text()
    assert "no regions for picture '10'" in skipped and "feats.tsv:10" in skipped
    run(cfg)
    record = json.loads((tmp_path / "run" / "model" / "region_tower.json").read_text())
    assert record["tower"] is None and record["features"].endswith("feats.tsv") and record["max_regions"] == 10


def test_polymodal_regions_files_feed_training_by_file_name(tmp_path, vqa_files, tower, minilm_dir):
    root, q, a, *_ = vqa_files
    pictures = sorted((root / "train2014").iterdir())
    boxes = {p.name: [[0, 0, 20, 20], [10, 10, 40, 40]] for p in pictures}
    (tmp_path / "boxes.json").write_text(json.dumps(boxes))
    r = CliRunner().invoke(app, ["regions", *map(str, pictures), "--boxes", str(tmp_path / "boxes.json"),
                                 "--checkpoint", str(tower), "--out", str(tmp_path / "feats")])
    assert r.exit_code == 0, r.output
    assert len(list((tmp_path / "feats").glob("COCO_train2014_*.npz"))) == 10
    cfg = load_config(None, ["objective.kind=vqa", "model.preset=visualbert-tiny", "data.kind=vqa_v2",
                             f"data.questions={q}", f"data.annotations={a}", f"data.regions={tmp_path / 'feats'}",
                             f"data.tokenizer={minilm_dir}", "data.context_length=32", "train.batch_size=8",
                             "train.steps=1", "train.threads=1", f"train.out={tmp_path / 'run'}"])
    trainer = Trainer(cfg)
    assert trainer.kind.data.regions.shape == (10, 2, 192)
