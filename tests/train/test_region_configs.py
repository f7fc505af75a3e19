"""The README's commands for the region tasks on files, as a user runs them: `polymodal world export
--format F` writes files in the field's layout, and `polymodal train configs/F.yaml` (from the folder
holding them, with tiny sizes) trains on them and prints its evaluation."""

import pytest
from region_files import coco_pictures, write_coco
from typer.testing import CliRunner

from polymodal.cli import app

TINY = ["model.preset=visualbert-tiny", "model.text_weights=null", "data.context_length=32", "train.steps=2",
        "train.batch_size=8", "train.precision=fp32", "train.threads=1", "optim.warmup_steps=1"]
CONFIGS = {"vqa_v2": ("vqa-v2", "val_accuracy"), "vcr": ("vcr-files", "val_q_ar_accuracy"),
           "refcoco": ("refcoco", "val_accuracy_grid_boxes"), "memes": ("memes", "val_auroc")}


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["visualbert-tiny", "vilbert-tiny"])
@pytest.mark.parametrize("fmt", list(CONFIGS))
def test_readme_commands_train_on_exported_files(fmt, preset, tmp_path, monkeypatch, tower, minilm_dir):
    config, metric = CONFIGS[fmt]
    repo = __import__("pathlib").Path(__file__).resolve().parents[2]
    monkeypatch.chdir(tmp_path)
    folder = {"vqa_v2": "vqa-files", "vcr": "vcr-files", "refcoco": "ref-files", "memes": "meme-files"}[fmt]
    runner = CliRunner()
    for split, n in (("train", 12), ("val", 4)):
        r = runner.invoke(app, ["world", "export", "--format", fmt, "--split", split, "--n", str(n), "--out", folder])
        assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["train", str(repo / "configs" / f"{config}.yaml"), *TINY, f"model.preset={preset}",
                            f"data.region_tower={tower}",
                            f"data.tokenizer={minilm_dir}", f"train.out={tmp_path / 'run'}"])
    assert r.exit_code == 0, r.output
    assert metric in r.output and (tmp_path / "run" / "model" / "region_tower.json").is_file()


@pytest.mark.slow
def test_readme_commands_pretrain_on_coco_captions(tmp_path, monkeypatch, photos, tower, minilm_dir):
    repo = __import__("pathlib").Path(__file__).resolve().parents[2]
    monkeypatch.chdir(tmp_path)
    train = coco_pictures(photos[:8], tmp_path / "coco" / "train2017", "train2017")
    val = coco_pictures(photos[8:], tmp_path / "coco" / "val2017", "val2017", first_id=100)
    (tmp_path / "coco" / "annotations").mkdir()
    _, instances = write_coco(tmp_path / "coco" / "annotations", train, "train2017")
    _, val_instances = write_coco(tmp_path / "coco" / "annotations", val, "val2017")
    runner = CliRunner()
    r = runner.invoke(app, ["train", str(repo / "configs" / "coco-captions.yaml"), *TINY, f"data.region_tower={tower}",
                            f"data.tokenizer={minilm_dir}", f"train.out={tmp_path / 'vb'}"])
    assert r.exit_code == 0, r.output
    assert "itm_accuracy" in r.output
    r = runner.invoke(app, ["train", str(repo / "configs" / "coco-captions.yaml"), *TINY, "model.preset=vilbert-tiny",
                            "objective.kind=masked_multimodal", f"data.instances={instances}",
                            f"data.val_instances={val_instances}", f"data.region_tower={tower}",
                            f"data.tokenizer={minilm_dir}", f"train.out={tmp_path / 'vl'}"])
    assert r.exit_code == 0, r.output
    assert "masked_region_accuracy" in r.output
