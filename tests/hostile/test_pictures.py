"""Pictures that cost more after decoding than their bytes say: thin strips through the shorter-side
resize (embed, regions, CSV training). Each is an error for that file; the rest of the batch goes on."""

import json

from bounded import one_line_error, run_bounded
from PIL import Image


def _strip(path, w, h):
    Image.new("L", (w, h), 128).save(path, optimize=True)
    return path


def _good(path):
    Image.new("RGB", (48, 40), (200, 30, 30)).save(path)
    return path


def test_a_thin_strip_is_refused_by_embed_and_the_batch_goes_on(tmp_path, tiny_clip):
    thin = _strip(tmp_path / "thin.png", 1, 1_000_000)
    tall = _strip(tmp_path / "tall.png", 1, 100_000)
    good = _good(tmp_path / "good.png")
    assert thin.stat().st_size < 4000 and tall.stat().st_size < 1000
    ran = run_bounded("embed", thin, good, tall, "--checkpoint", tiny_clip, "--out", tmp_path / "out")
    assert ran.returncode == 1
    one_line_error(ran, "thin.png", "tall.png", "too thin")
    rows = [json.loads(line) for line in (tmp_path / "out" / "index.jsonl").read_text().splitlines()]
    assert [r["file"].rsplit("/", 1)[-1] for r in rows] == ["good.png"]


def test_a_thin_strip_is_refused_by_regions_and_the_rest_are_written(tmp_path, tiny_clip):
    thin = _strip(tmp_path / "thin.png", 100_000, 1)
    good = _good(tmp_path / "good.png")
    (tmp_path / "boxes.json").write_text(json.dumps({"thin.png": [[0, 0, 10, 1]], "good.png": [[0, 0, 20, 20]]}))
    ran = run_bounded("regions", thin, good, "--boxes", tmp_path / "boxes.json", "--checkpoint", tiny_clip,
                      "--out", tmp_path / "out")
    assert ran.returncode == 1
    one_line_error(ran, "thin.png", "too thin")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["good.npz"]


def test_a_thin_strip_in_a_training_csv_is_skipped_with_its_row(tmp_path, minilm_dir):
    _strip(tmp_path / "thin.png", 1, 1_000_000)
    for k in range(4):
        _good(tmp_path / f"g{k}.png")
    (tmp_path / "pairs.csv").write_text("filepath,caption\nthin.png,a line\n" +
                                        "".join(f"g{k}.png,a red picture\n" for k in range(4)))
    ran = run_bounded("train", "configs/clip-csv.yaml", f"data.path={tmp_path / 'pairs.csv'}",
                      "model.preset=clip-minilm-tiny", "model.text_weights=null", f"data.tokenizer={minilm_dir}",
                      "train.steps=1", "train.batch_size=4", "train.precision=fp32", f"train.out={tmp_path / 'run'}",
                      cwd=__import__("pathlib").Path(__file__).resolve().parents[2])
    assert ran.returncode == 0, ran.output
    skipped = (tmp_path / "run" / "skipped.txt").read_text()
    assert "pairs.csv:2" in skipped and "thin.png" in skipped and "too thin" in skipped
