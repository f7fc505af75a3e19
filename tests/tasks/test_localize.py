"""Step localisation: per-second scores from a VideoCLIP, recall against true spans with its chance,
the timeline PNG, and `polymodal video localize`."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import polymodal
from polymodal.cli import app
from polymodal.modalities.text import load_tokenizer
from polymodal.tasks.localize import localisation_recall, plot_timeline, step_scores


def test_recall_counts_best_seconds_inside_spans():
    scores = torch.zeros(10, 2)
    scores[3, 0] = 1.0  # step 0 best at 3 s, inside 2.5–4.2 → [2, 5)
    scores[9, 1] = 1.0  # step 1 best at 9 s, outside 0–2
    recall, chance = localisation_recall(scores, [(2.5, 4.2), (0.0, 2.0)])
    assert recall == 0.5 and chance == pytest.approx((3 / 10 + 2 / 10) / 2)


def test_scores_and_the_command(tmp_path, fixtures, minilm_dir):
    torch.manual_seed(0)
    model = polymodal.load(fixtures / "videoclip")
    wordpiece = load_tokenizer(minilm_dir, 16)
    feats = torch.randn(7, model.config.input_dim)

    class Small:  # the fixture's vocabulary has 200 words: MiniLM's ids folded into it
        def __call__(self, texts, truncate=False):
            out = wordpiece(texts, truncate=truncate)
            out.ids = out.ids % 200
            return out

    scores = step_scores(model, feats, ["cut the onion", "stir"], Small())
    assert scores.shape == (7, 2) and torch.isfinite(scores).all()
    # a window of 1 scores each second alone: the first second's score is its one-second clip's
    one = step_scores(model, feats, ["stir"], Small(), window=1)
    single = step_scores(model, feats[:1], ["stir"], Small(), window=1)
    assert torch.allclose(one[0], single[0], atol=1e-5)
    png = plot_timeline(scores, ["cut the onion", "stir"], tmp_path / "t.png", spans=[(1.0, 3.0), (4.0, 6.5)])
    assert Image.open(png).size[0] > 300
    with pytest.raises(ValueError, match="per-second features"):
        step_scores(model, torch.zeros(0, 32), ["x"], Small())


@pytest.mark.slow
def test_video_localize_command(tmp_path, tower, minilm_dir):
    from polymodal.train.config import load_config
    from polymodal.train.trainer import run

    cfg = load_config(None, ["objective.kind=videoclip", "model.preset=videoclip-tiny", f"data.frame_tower={tower}",
                             f"data.tokenizer={minilm_dir}", "data.context_length=32", "data.train_n=8", "data.val_n=3",
                             "train.batch_size=8", "train.steps=1", "train.threads=1", f"train.out={tmp_path / 'run'}"])
    result = run(cfg)
    assert 0 <= result["val_localisation_chance"] < 1 and 0 <= result["val_localisation_recall"] <= 1
    model = tmp_path / "run" / "model"
    dim = polymodal.load(model).config.input_dim
    np.save(tmp_path / "v.npy", np.random.default_rng(0).normal(size=(9, dim)).astype(np.float32))
    (tmp_path / "steps.txt").write_text("the red circle moves left\n\na blue star appears\n")
    from polymodal.tasks.video_search import frame_tower_record

    made_by, fps = frame_tower_record(model)
    record = {"backbone": "clip", "weights": str(made_by), "fps": fps, "size": 64, "dim": dim}
    (tmp_path / "backbone.json").write_text(json.dumps({**record, "fps": fps + 2}))
    wrong_fps = CliRunner().invoke(app, ["video", "localize", str(model), str(tmp_path / "v.npy"), "--steps",
                                         str(tmp_path / "steps.txt"), "--out", str(tmp_path / "tl.png")])
    assert wrong_fps.exit_code == 2 and f"at {fps + 2} fps" in " ".join(wrong_fps.output.split())
    (tmp_path / "backbone.json").write_text(json.dumps(record))
    out = CliRunner().invoke(app, ["video", "localize", str(model), str(tmp_path / "v.npy"), "--steps",
                                   str(tmp_path / "steps.txt"), "--out", str(tmp_path / "tl.png")])
    assert out.exit_code == 0, out.output
    assert "theredcirclemovesleft" in "".join(out.output.split()) and (tmp_path / "tl.png").is_file()
    np.save(tmp_path / "wrong.npy", np.zeros((9, dim + 1), np.float32))
    bad = CliRunner().invoke(app, ["video", "localize", str(model), str(tmp_path / "wrong.npy"), "--steps",
                                   str(tmp_path / "steps.txt")])
    assert bad.exit_code == 2 and "wrong.npy:expected[seconds," in "".join(bad.output.split())  # rich wraps lines
