"""Fine-tuning on your own pictures: a CSV/TSV of (filepath, caption); bad rows are reported, not fatal."""

import json

import pytest
from PIL import Image

from polymodal.world import captions, render, sample_scene
from polymodal.train.config import ConfigError, load_config
from polymodal.train.csv_data import read_pairs
from polymodal.train.trainer import Trainer, run

from test_trainer import TINY_FILES  # noqa: E402  (pytest puts this folder on sys.path)


@pytest.fixture
def table(tmp_path):
    rows = ["filepath\tcaption"]
    (tmp_path / "img").mkdir()
    for i in range(40):
        scene = sample_scene(0, "train", i)
        Image.fromarray(render(scene, 48).image).save(tmp_path / "img" / f"{i}.png")  # resized to 32 on load
        rows.append(f"img/{i}.png\t{captions(scene)[0]['text']}")
    (tmp_path / "img" / "broken.png").write_bytes(b"not a png")
    rows += ["img/broken.png\ta broken file", "img/missing.png\ta missing file", "img/3.png\t"]
    (tmp_path / "pairs.tsv").write_text("\n".join(rows) + "\n")
    return tmp_path / "pairs.tsv"


def test_read_pairs_skips_and_reports_bad_rows(table):
    images, texts, skipped = read_pairs(table, 32)
    assert tuple(images.shape) == (40, 3, 32, 32) and len(texts) == 40
    assert len(skipped) == 3
    assert any("broken.png" in s for s in skipped) and any("missing.png" in s for s in skipped)
    assert any("empty caption" in s for s in skipped)


def test_training_on_a_table_runs_and_lists_skipped_files(table, tmp_path):
    cfg = load_config(None, [*TINY_FILES, "data.kind=csv", f"data.path={table}", f"data.val_path={table}",
                             "train.steps=3", "train.batch_size=16", f"train.out={tmp_path / 'run'}"])
    with pytest.warns(UserWarning, match="skipped 3 train item"):
        result = run(cfg)
    assert "text_to_image_R@1" in result
    assert "broken.png" in (tmp_path / "run" / "skipped.txt").read_text()
    r1 = json.loads((tmp_path / "run" / "eval.json").read_text())["text_to_image_R@1"]
    assert r1 == result["text_to_image_R@1"] and (r1 * 40) == pytest.approx(round(r1 * 40))  # hits among 40 pairs


def test_missing_table_or_columns_are_named(tmp_path):
    with pytest.raises(ConfigError, match="data file not found"):
        Trainer(load_config(None, [*TINY_FILES, "data.kind=csv", f"data.path={tmp_path / 'nope.csv'}",
                                   f"train.out={tmp_path / 'a'}"]))
    (tmp_path / "bad.csv").write_text("image,text\nx.png,hello\n")
    with pytest.raises(ConfigError, match=r"missing column\(s\) \['filepath', 'caption'\]"):
        read_pairs(tmp_path / "bad.csv", 32)
    with pytest.raises(ConfigError, match="needs data.path"):
        Trainer(load_config(None, [*TINY_FILES, "data.kind=csv", f"train.out={tmp_path / 'b'}"]))
