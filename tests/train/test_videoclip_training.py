"""VideoCLIP on the world's how-to videos (objective.kind=videoclip): per-second features, naive and
overlapped (clip, text) pairs, MMPT's caption layout, and a run that trains, evaluates retrieval and
saves a model that loads."""

import json

import numpy as np
import pytest
import torch

import polymodal
from polymodal.modalities.text import load_tokenizer
from polymodal.train.config import ConfigError, load_config
from polymodal.models.videoclip import mmpt_caps
from polymodal.train.howto_data import HowToFeatures, clip_seconds, pair
from polymodal.world.sources.video import world_howto_features
from polymodal.train.trainer import Trainer, run
from polymodal.train.videoclip import frame_embedder


def _cfg(tmp_path, tower, minilm_dir, *extra):
    return load_config(None, ["objective.kind=videoclip", "model.preset=videoclip-tiny", f"data.frame_tower={tower}",
                              f"data.tokenizer={minilm_dir}", "data.context_length=32", "data.train_n=12",
                              "data.val_n=6", "train.batch_size=8", "train.steps=2", "train.threads=1",
                              "optim.warmup_steps=1", f"train.out={tmp_path}", *extra])


def _toy(shift: float) -> HowToFeatures:
    """One 20 s video whose second s has feature s; one segment truly at 8–11 s, narrated ``shift`` later."""
    features = torch.arange(20.0)[:, None].repeat(1, 4)
    return HowToFeatures([features], [{"video": 0, "start": 8 + shift, "end": 11 + shift, "text": "the step",
                                       "true_start": 8.0, "true_end": 11.0, "visible": True}])


def test_naive_pairs_take_the_timestamps_and_overlapped_ones_a_span_around_a_centre_inside():
    data = _toy(0.0)
    clip, text = pair(data, 0, "naive", np.random.default_rng(0), 16)
    assert clip[:, 0].tolist() == [8, 9, 10] and text == "the step"
    rng = np.random.default_rng(0)
    for _ in range(50):
        clip, text = pair(data, 0, "overlapped", rng, 16)
        seconds = clip[:, 0]
        assert 3 <= len(seconds) <= 7 and seconds[-1] >= 8 and seconds[0] <= 11  # around a centre in 8–11 s
    assert clip_seconds(data.features[0], 18.5, 40.0, 16)[:, 0].tolist() == [18, 19]  # clipped to the video
    with pytest.raises(ValueError, match="naive' or 'overlapped"):
        pair(data, 0, "exact", rng, 16)


def test_under_a_shift_overlapped_pairs_see_the_true_step_more_often():
    """The mechanism of the paper's claim: a sentence narrated 2.5 s late has a naive clip that
    misses most of the true step; clips around a centre reach back into it."""
    data, rng = _toy(2.5), np.random.default_rng(1)

    def overlap(clip):
        return len({int(s) for s in clip[:, 0]} & {8, 9, 10}) / 3

    naive = overlap(pair(data, 0, "naive", rng, 16)[0])
    overlapped = np.mean([overlap(pair(data, 0, "overlapped", rng, 16)[0]) for _ in range(200)])
    assert naive == pytest.approx(1 / 3) and overlapped > naive + 0.1


def test_captions_follow_mmpt_layout(minilm_dir):
    tokenizer = load_tokenizer(minilm_dir, 16)
    caps, cmasks = mmpt_caps(tokenizer, ["a red circle moves left", "hello"])
    assert caps[:, 0].tolist() == [101, 101] and caps[:, 1].tolist() == [102, 102]
    assert caps[1, 3].item() == 102 and cmasks[1].tolist() == [1, 1, 1, 1] + [0] * (caps.shape[1] - 4)


def test_world_features_are_per_second(tower):
    data = world_howto_features("train", 3, 0, frame_embedder(str(tower)))
    for v, feats in enumerate(data.features):
        segs = data.by_video(v)
        assert feats.dim() == 2 and feats.shape[0] >= max(s["true_end"] for s in segs)
    assert all(s["video"] in (0, 1, 2) for s in data.segments)


@pytest.mark.slow
def test_a_videoclip_run_trains_evaluates_and_saves(tmp_path, tower, minilm_dir):
    trainer = Trainer(_cfg(tmp_path / "a", tower, minilm_dir, "data.pairs=naive"))
    b = trainer._batch(1)
    assert b["vfeats"].shape[0] == 8 and b["vfeats"].shape[2] == trainer.model.config.input_dim
    assert all(torch.equal(v, trainer._batch(1)[k]) for k, v in b.items())  # a pure function of the step
    result = run(_cfg(tmp_path / "b", tower, minilm_dir))
    assert 0 <= result["val_text_to_video_R@1"] <= result["val_text_to_video_R@5"] <= 1
    assert result["val_chance_R@1"] == pytest.approx(1 / result["val_clips"])
    model = polymodal.load(tmp_path / "b" / "model")
    assert type(model).__name__ == "VideoCLIP" and model.config.cls_id == 101
    assert json.loads((tmp_path / "b" / "eval.json").read_text())["val_clips"] == result["val_clips"]


@pytest.mark.slow
def test_videoclip_needs_a_frame_tower_and_a_videoclip_preset(tmp_path, tower, minilm_dir):
    with pytest.raises(ConfigError, match="needs data.frame_tower"):
        Trainer(_cfg(tmp_path / "a", tower, minilm_dir, "data.frame_tower=null"))
    with pytest.raises(ConfigError, match="is not a VideoCLIP"):
        Trainer(_cfg(tmp_path / "b", tower, minilm_dir, "model.preset=bert-tiny"))
    with pytest.raises(ConfigError, match="data.pairs"):
        _cfg(tmp_path / "c", tower, minilm_dir, "data.pairs=exact")


def test_feature_cache_is_written_once_and_serves_every_shift_rate(tmp_path, tower):
    from polymodal.world.sources.video import feature_cache_file

    file = feature_cache_file(tmp_path, tower, "train", 3, 0, 64)
    embed = frame_embedder(str(tower))
    fresh = world_howto_features("train", 3, 0, embed, 0.0, cache=file)
    assert file.is_file()

    def refuse(frames):
        raise AssertionError("the cache should have served these features")

    cached = world_howto_features("train", 3, 0, refuse, 1.0, cache=file)
    assert all(torch.equal(a, b) for a, b in zip(fresh.features, cached.features))
    assert sorted(s["true_start"] for s in cached.segments) == sorted(s["true_start"] for s in fresh.segments)
    assert sorted(s["start"] for s in cached.segments) != sorted(s["start"] for s in fresh.segments)  # re-narrated
    with pytest.raises(ValueError, match="features of 3 videos, expected 4"):
        world_howto_features("train", 4, 0, refuse, 0.0, cache=file)


@pytest.mark.slow
def test_retrieval_batches_come_from_saved_clusters_after_the_first_epoch(tmp_path, tower, minilm_dir):
    from safetensors.torch import load_file

    cfg = _cfg(tmp_path / "r", tower, minilm_dir, "data.batches=retrieval", "data.clusters=3",
               f"data.feature_cache={tmp_path / 'cache'}")
    trainer = Trainer(cfg)
    epoch = len(trainer.kind.data.segments) // 8
    assert trainer._batch(epoch - 1)["vfeats"].shape[0] == 8 and not (tmp_path / "r" / "clusters.safetensors").exists()
    b = trainer._batch(epoch)
    saved = load_file(str(tmp_path / "r" / "clusters.safetensors"))
    assert int(saved["step"][0]) == epoch and saved["assign"].shape == (12,) and saved["order"].shape == (3, 3)
    # A resumed run (a new process whose model has moved on) batches from the saved clusters, not new ones.
    again = Trainer(cfg)
    with torch.no_grad():
        for p in again.model.parameters():
            p.add_(torch.randn_like(p))
    assert all(torch.equal(v, again._batch(epoch)[k]) for k, v in b.items())
    assert len(list((tmp_path / "cache").glob("howto-*-train-12-s0-64px.safetensors"))) == 1


def test_world_questions_have_one_true_option_and_hard_distractors():
    from polymodal.world.howto import howto_video
    from polymodal.world.video_qa import howto_questions

    qs = howto_questions(0, "val", 20)
    assert qs == howto_questions(0, "val", 20)  # a pure function of its arguments
    steps = {(v, s.start): s.text for v in range(20) for s in howto_video(0, "val", v, frames=False).steps}
    counts = np.bincount([q.answer for q in qs], minlength=5)
    assert counts.min() > len(qs) / 5 / 2  # the right answer is not always in the same place
    for q in qs:
        truth = steps[(q.video, q.start)]
        assert q.options[q.answer] == truth and len(set(q.options)) == 5
        obj = truth.split()[1:3]
        same_object = [o for o in q.options if o != truth and o.split()[1:3] == obj]
        assert len(same_object) == 2  # two say something else happened to the same object


@pytest.mark.slow
def test_video_mc_fine_tunes_from_a_videoclip_run_and_is_scored_zero_shot(tmp_path, tower, minilm_dir):
    base = run(_cfg(tmp_path / "base", tower, minilm_dir, f"data.feature_cache={tmp_path / 'cache'}"))
    assert base["val_mc_chance"] == 0.2 and 0 <= base["val_mc_accuracy"] <= 1 and base["val_mc_questions"] > 6
    cfg = _cfg(tmp_path / "mc", tower, minilm_dir, "objective.kind=video_mc", f"model.init_from={tmp_path / 'base' / 'model'}",
               f"data.feature_cache={tmp_path / 'cache'}")
    trainer = Trainer(cfg)
    start = polymodal.load(tmp_path / "base" / "model")
    assert all(torch.equal(a, b) for a, b in zip(trainer.model.state_dict().values(), start.state_dict().values()))
    b = trainer._batch(0)
    assert b["ids"].shape[0] == 5 * b["vfeats"].shape[0] and b["positives"].sum(1).tolist() == [1] * 8
    result = run(cfg)
    assert result["val_mc_questions"] == base["val_mc_questions"] and "val_text_to_video_R@1" in result
    with pytest.raises(ConfigError, match="another shape"):
        Trainer(_cfg(tmp_path / "bad", tower, minilm_dir, "objective.kind=video_mc", "model.preset=videoclip-world",
                     f"model.init_from={tmp_path / 'base' / 'model'}"))


def test_videoclip_trains_on_a_users_timed_csv_and_features(tmp_path, tower, minilm_dir):
    """The user-data path end to end: .mp4 files + a video,start,end,text CSV → `polymodal video features`
    → a run on them; bad rows are reported and skipped; the model can search the videos afterwards."""
    from typer.testing import CliRunner

    from polymodal.cli import app
    from polymodal.world.export import export_howto
    from polymodal.tasks.embedder import frame_backbone

    videos = export_howto(tmp_path / "data", "train", 3, seed=0)
    feats = tmp_path / "feats"
    out = CliRunner().invoke(app, ["video", "features", *map(str, videos), "--backbone", "clip", "--weights", str(tower),
                                   "--fps", "4", "--out", str(feats)])
    assert out.exit_code == 0, out.output
    table = tmp_path / "data" / "narration.csv"
    good = table.read_text().splitlines()
    np.save(feats / "nan.npy", np.full((5, 192), np.nan, np.float32))
    table.write_text("\n".join(good + ["missing.mp4,1,3,the red circle moves left", "train-00000.mp4,500,503,too late",
                                       "train-00001.mp4,4,2,backwards", "nan.mp4,0,2,nan features"]) + "\n")
    cfg = load_config(None, ["objective.kind=videoclip", "model.preset=videoclip-tiny", "data.kind=csv",
                             f"data.path={table}", f"data.features={feats}", f"data.val_path={table}",
                             f"data.tokenizer={minilm_dir}", "data.context_length=32", "train.batch_size=8",
                             "train.steps=2", "train.threads=1", "optim.warmup_steps=1", f"train.out={tmp_path / 'run'}"])
    with pytest.warns(UserWarning, match="skipped 4 train item"):
        result = run(cfg)
    skipped = (tmp_path / "run" / "skipped.txt").read_text()
    assert "missing.npy" in skipped and "starts at 500.0 s" in skipped and "start < end" in skipped and "NaN" in skipped
    assert result["val_clips"] == len(good) - 1 and "val_localisation_recall" in result and "val_mc_accuracy" not in result
    assert frame_backbone(tmp_path / "run" / "model").fps == 4  # the features' backbone travels with the model
    with pytest.raises(ConfigError, match="needs data.path"):
        Trainer(load_config(None, ["objective.kind=videoclip", "model.preset=videoclip-tiny", "data.kind=csv",
                                   f"data.tokenizer={minilm_dir}"]))
