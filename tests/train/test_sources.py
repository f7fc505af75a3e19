"""Data sources: ``data.kind`` names a registered source; a kind gets its examples from it without
knowing which; a setting nobody reads, a kind no source can feed and an unknown source are named."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from polymodal.train import sources
from polymodal.train.config import ConfigError, load_config
from polymodal.train.examples import CaptionPairs
from polymodal.train.kinds import kind_names, make_kind
from polymodal.train.sources import Source, register_source, source_names
from polymodal.train.trainer import Trainer

CONFIGS = sorted(Path("configs").glob("*.yaml"))
TINY_CSV = ["model.preset=clip-tiny", "data.image_size=32", "data.tokenizer_vocab=300", "data.context_length=64",
            "train.batch_size=8", "train.steps=2", "train.threads=1", "optim.warmup_steps=1"]


@pytest.mark.parametrize("config", [c for c in CONFIGS if c.name != "imagebind-world.yaml"], ids=lambda c: c.name)
def test_every_shipped_config_names_a_source_that_reads_all_its_settings(config):
    cfg = load_config(config)
    kind = make_kind(cfg)
    assert kind.source.name == cfg.data.kind and kind.examples == kind.source.examples


def test_a_setting_the_source_does_not_read_is_named():
    # The world generates its scenes: a questions file given to it would be ignored without a word.
    with pytest.raises(ConfigError, match=r"data.path: not read by data.kind world with objective.kind vqa"):
        make_kind(load_config(Path("configs/vqa-world.yaml"), ["data.path=questions.json"]))
    with pytest.raises(ConfigError, match=r"data.frame_tower: not read by data.kind csv"):
        make_kind(load_config(None, ["data.kind=csv", "data.path=pairs.csv", "data.frame_tower=runs/clip"]))
    with pytest.raises(ConfigError, match=r"data.train_n: not read by data.kind csv"):
        make_kind(load_config(None, ["data.kind=csv", "data.path=pairs.csv", "data.train_n=500"]))
    make_kind(load_config(None, ["data.kind=csv", "data.path=pairs.csv", "data.image_key=file"]))  # read: fine


def test_a_kind_no_source_feeds_lists_those_that_can():
    with pytest.raises(ConfigError, match=r"objective.kind vqa needs region questions: data.kind 'csv' gives "
                                          r"caption pairs, timed video text; sources that give them: vqa_v2, world"):
        make_kind(load_config(Path("configs/vqa-world.yaml"), ["data.kind=csv"]))
    with pytest.raises(ConfigError, match=r"data.kind 'parquet' is not a registered source \(coco_captions, csv, docvqa, folders, funsd, memes, refcoco, vcr, vqa_v2, wds, world\)"):
        make_kind(load_config(None, ["data.kind=parquet"]))


def test_a_new_source_is_one_registration_and_the_kind_trains_on_it(tmp_path):
    def pictures(kind, split):
        g = torch.Generator().manual_seed(0 if split == "train" else 1)
        images = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8, generator=g)
        return CaptionPairs(images, [[f"picture number {i}"] for i in range(16)])

    register_source(Source("memory", "caption_pairs", pictures, ("image_size",)))
    try:
        trainer = Trainer(load_config(None, [*TINY_CSV, "data.kind=memory", f"train.out={tmp_path}"]))
        assert len(trainer.train()) == 2 and trainer.kind.data.images.shape == (16, 3, 32, 32)
        result = trainer.kind.evaluate(trainer.model)  # retrieval on the source's validation pairs
        assert 0 <= result["text_to_image_R@1"] <= 1
        with pytest.raises(ValueError, match="registered twice"):
            register_source(Source("memory", "caption_pairs", lambda kind, split: None))
    finally:
        sources._SOURCES.pop(("memory", "caption_pairs"))


def test_a_user_table_and_the_world_feed_the_same_kind(tmp_path):
    rows = ["filepath\tcaption"]
    for i in range(10):
        Image.new("RGB", (40, 30), (25 * i, 100, 200 - 10 * i)).save(tmp_path / f"{i}.png")
        rows.append(f"{i}.png\ta colour {i}")
    (tmp_path / "pairs.tsv").write_text("\n".join(rows) + "\n")
    user = Trainer(load_config(None, [*TINY_CSV, "data.kind=csv", f"data.path={tmp_path / 'pairs.tsv'}",
                                      f"train.out={tmp_path / 'csv'}"]))
    world = Trainer(load_config(None, [*TINY_CSV, "data.train_n=16", "data.val_n=8", f"train.out={tmp_path / 'w'}"]))
    assert type(user.kind) is type(world.kind) and user.kind.source.name == "csv" and world.kind.source.name == "world"
    assert user.kind.data.images.shape == (10, 3, 32, 32) and world.kind.data.images.shape == (16, 3, 32, 32)
    assert user.kind.evaluate(user.model) == {}  # no data.val_path: no validation pairs, no metrics


@pytest.mark.slow
def test_every_kind_has_a_source_and_the_world_joins_through_its_entry_point():
    from polymodal.train.kinds import _KINDS

    for name in kind_names():
        assert sources.sources_giving(_KINDS[name].examples), name
    assert "world" in source_names()
    # The library finds the world through the polymodal.sources entry point, never by importing it.
    code = ("import sys, polymodal.train.trainer, polymodal.tasks, polymodal.search.ingest; "
            "print(sorted(m for m in sys.modules if m.startswith('polymodal.world')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_class_folders_of_real_pictures_train_a_classifier_and_bad_files_are_listed(tmp_path):
    """``data.kind=folders`` for classification, on pictures matplotlib ships (a photograph, a
    product shot, logos and icons): folders are classes, an unreadable picture is listed and the
    rest train; validation reads its folder with the training classes."""
    import matplotlib

    data = Path(matplotlib.get_data_path())
    photos = [data / "sample_data" / "grace_hopper.jpg", data / "sample_data" / "Minduka_Present_Blue_Pack.png"]
    icons = sorted((data / "images").glob("*_large.png"))[:6]
    for split in ("train", "val"):
        for cls, files in (("photo", photos), ("icon", icons[:3] if split == "val" else icons)):
            (tmp_path / split / cls).mkdir(parents=True)
            for f in files:
                (tmp_path / split / cls / f.name).write_bytes(f.read_bytes())
    (tmp_path / "train" / "photo" / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    (tmp_path / "train" / "icon" / "outside.png").symlink_to(photos[0])  # a link is not followed
    cfg = load_config(None, ["objective.kind=classification", "model.preset=vit-tiny", "data.image_size=32",
                             "data.kind=folders", f"data.path={tmp_path / 'train'}", f"data.val_path={tmp_path / 'val'}",
                             "train.batch_size=4", "train.steps=2", "train.threads=1", "optim.warmup_steps=1",
                             f"train.out={tmp_path / 'run'}"])
    with pytest.warns(UserWarning, match="skipped 1 train item"):
        trainer = Trainer(cfg)
    assert trainer.kind.classes == ["icon", "photo"] and len(trainer.kind.labels) == len(photos) + len(icons)
    assert "broken.jpg" in (tmp_path / "run" / "skipped.txt").read_text()
    trainer.train()
    result = trainer.kind.evaluate(trainer.model)
    assert result["val_n"] == len(photos) + 3 and 0 <= result["val_accuracy"] <= 1
    assert result["val_majority_baseline"] == pytest.approx(3 / 5)
    with pytest.raises(ConfigError, match="no CLASS/ sub-folders with pictures"):
        Trainer(load_config(None, ["objective.kind=classification", "model.preset=vit-tiny", "data.image_size=32",
                                   "data.kind=folders", f"data.path={tmp_path / 'run'}", f"train.out={tmp_path / 'x'}"]))


def test_the_sources_command_lists_every_source_with_what_it_reads():
    from typer.testing import CliRunner

    from polymodal.cli import app

    out = CliRunner().invoke(app, ["sources"], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    for name in source_names():
        assert name in out.output
    assert "region questions" in out.output and "frame_tower" in out.output
