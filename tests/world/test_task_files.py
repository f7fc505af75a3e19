"""`polymodal world export --format vqa_v2|vcr|refcoco|memes`: the world's region tasks as files in the
field's layouts. Read back through the file sources (with data.boxes=boxes.json), they give the
world source's examples one for one — the same texts, answers and labels, the same region features —
so a run on the files trains as a run on the world does."""

import pytest
import torch
from typer.testing import CliRunner

from polymodal.cli import app
from polymodal.train.config import load_config
from polymodal.train.trainer import Trainer


def _kind(out, tower, minilm_dir, kind, *data):
    cfg = load_config(None, [f"objective.kind={kind}", "model.preset=visualbert-tiny", f"data.region_tower={tower}",
                             f"data.tokenizer={minilm_dir}", "data.context_length=32", "train.batch_size=8",
                             "train.steps=2", "train.threads=1", "optim.warmup_steps=1", f"train.out={out}", *data])
    return Trainer(cfg)


def _export(tmp_path, fmt, n_train=12, n_val=4):
    for split, n in (("train", n_train), ("val", n_val)):
        r = CliRunner().invoke(app, ["world", "export", "--out", str(tmp_path / fmt), "--format", fmt, "--split", split,
                                     "--n", str(n)])
        assert r.exit_code == 0, r.output
    return tmp_path / fmt


def _same_regions(a, b):
    assert a.regions.shape == b.regions.shape and torch.equal(a.region_mask, b.region_mask)
    assert torch.allclose(a.regions, b.regions, atol=1e-5) and torch.allclose(a.locations, b.locations)


def test_vqa_v2_files_train_as_the_world_does(tmp_path, tower, minilm_dir):
    out = _export(tmp_path, "vqa_v2")
    world = _kind(tmp_path / "w", tower, minilm_dir, "vqa", "data.train_n=12", "data.val_n=4")
    files = _kind(tmp_path / "f", tower, minilm_dir, "vqa", "data.kind=vqa_v2", f"data.boxes={out / 'boxes.json'}",
                  f"data.questions={out / 'v2_OpenEnded_mscoco_train2014_questions.json'}",
                  f"data.annotations={out / 'v2_mscoco_train2014_annotations.json'}", f"data.images={out / 'train2014'}")
    w, f = world.kind.data, files.kind.data
    _same_regions(w, f)
    assert w.questions == f.questions and w.kinds == f.kinds and torch.equal(w.scene_of, f.scene_of)
    assert [a[0] for a in w.answers] == [a[0] for a in f.answers] and all(len(a) == 10 for a in f.answers)
    assert world.kind.answers == files.kind.answers and torch.equal(world.kind.targets, files.kind.targets)
    losses = [[r["loss"] for r in t.train()] for t in (world, files)]
    assert losses[0] == pytest.approx(losses[1], abs=1e-4)


def test_vcr_refcoco_and_memes_files_give_the_world_sources_examples(tmp_path, tower, minilm_dir):
    out = _export(tmp_path, "vcr")
    world = _kind(tmp_path / "w1", tower, minilm_dir, "vcr", "data.train_n=12", "data.val_n=4")
    files = _kind(tmp_path / "f1", tower, minilm_dir, "vcr", "data.kind=vcr", f"data.path={out / 'train.jsonl'}",
                  f"data.images={out / 'vcr1images'}")
    _same_regions(world.kind.items.texts, files.kind.items.texts)
    assert world.kind.items.texts.texts == files.kind.items.texts.texts
    assert torch.equal(world.kind.items.answer, files.kind.items.answer)
    assert torch.equal(world.kind.items.rationale, files.kind.items.rationale)

    out = _export(tmp_path, "refcoco")
    world = _kind(tmp_path / "w2", tower, minilm_dir, "refexp", "data.train_n=12", "data.val_n=4")
    files = _kind(tmp_path / "f2", tower, minilm_dir, "refexp", "data.kind=refcoco", f"data.path={out / 'refs_train.jsonl'}",
                  f"data.val_path={out / 'refs_val.jsonl'}", f"data.images={out / 'images'}")
    _same_regions(world.kind.data, files.kind.data)
    assert world.kind.data.texts == files.kind.data.texts and torch.equal(world.kind.positives, files.kind.positives)

    out = _export(tmp_path, "memes")
    world = _kind(tmp_path / "w3", tower, minilm_dir, "consistency", "data.train_n=12", "data.val_n=4")
    files = _kind(tmp_path / "f3", tower, minilm_dir, "consistency", "data.kind=memes", f"data.path={out / 'train.jsonl'}",
                  f"data.boxes={out / 'boxes.json'}")
    _same_regions(world.kind.data, files.kind.data)
    assert world.kind.data.texts == files.kind.data.texts and torch.equal(world.kind.labels, files.kind.labels)


def test_world_export_refuses_an_unknown_format(tmp_path):
    r = CliRunner().invoke(app, ["world", "export", "--out", str(tmp_path), "--format", "parquet"])
    assert r.exit_code == 2 and "--format must be webdataset or one of vqa_v2, vcr, refcoco, memes" in r.output
