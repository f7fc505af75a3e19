"""VisualBERT pretraining on world regions through `polymodal train` (objective.kind=mlm_itm):
batches are a pure function of the step, half the pairs are mismatched, and a run trains,
evaluates with and without its regions, saves and resumes."""

import json

import pytest
import torch

from polymodal.train.config import ConfigError, load_config
from polymodal.tasks.region_tower import MAX_REGIONS
from polymodal.train.region_data import mlm_itm_batch
from polymodal.train.trainer import Trainer, run


def _cfg(tmp_path, tower, minilm_dir, *extra):
    return load_config(None, ["objective.kind=mlm_itm", "model.preset=visualbert-tiny", f"data.region_tower={tower}",
                              f"data.tokenizer={minilm_dir}", "data.context_length=32", "data.train_n=64",
                              "data.val_n=32", "train.batch_size=16", "train.steps=4", "train.ckpt_every=2",
                              "train.threads=1", "train.log_every=1", "optim.warmup_steps=1", f"train.out={tmp_path}", *extra])


@pytest.mark.slow
def test_a_visualbert_pretraining_run_trains_evaluates_and_resumes(tmp_path, tower, minilm_dir,
                                                                  crash_after_first_checkpoint):
    trainer = Trainer(_cfg(tmp_path / "a", tower, minilm_dir))
    data = trainer.kind.data
    assert data.regions.shape == (64, MAX_REGIONS, 192) and bool((data.region_mask[:, :2] == 1).all())
    b1, b2 = trainer._batch(3), trainer._batch(3)
    assert all(torch.equal(b1[k], b2[k]) for k in b1)  # a pure function of the step
    assert b1["itm_labels"].tolist() == [0] * 8 + [1] * 8
    assert not torch.equal(b1["regions"][8:], b1["regions"][:8])
    assert (b1["mlm_labels"] != -100).any() and not ((b1["mlm_labels"] != -100) & (b1["attention_mask"] == 0)).any()
    result = run(_cfg(tmp_path / "b", tower, minilm_dir))
    assert {"mlm_accuracy", "mlm_without_regions_accuracy", "itm_accuracy", "colour_words_accuracy",
            "shape_words_without_regions_accuracy", "count_words_n"} <= set(result)
    assert result["mlm_n"] > 0 and result["itm_n"] == 32 and result["colour_words_n"] >= 16  # a colour per caption
    saved = json.loads((tmp_path / "b" / "model" / "config.json").read_text())
    assert saved["family"] == "visualbert" and saved["config"]["visual_dim"] == 192
    # Killed after its checkpoint at step 2, a run resumes there and ends with the same losses.
    records = [json.loads(line) for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    whole = [r["loss"] for r in records if "loss" in r]
    crash_after_first_checkpoint(Trainer(_cfg(tmp_path / "c", tower, minilm_dir)))  # dies after step 2
    resumed = Trainer(_cfg(tmp_path / "c", tower, minilm_dir))
    assert resumed.step == 2
    assert [r["loss"] for r in resumed.train()] == pytest.approx(whole[2:], rel=0, abs=0)


def test_mlm_itm_needs_regions_a_wordpiece_tokenizer_and_a_region_model(tmp_path, tower, minilm_dir):
    with pytest.raises(ConfigError, match="needs data.region_tower"):
        Trainer(_cfg(tmp_path / "a", tower, minilm_dir, "data.region_tower=null"))
    with pytest.raises(ConfigError, match="'clip-tiny' is not a region model"):
        Trainer(_cfg(tmp_path / "b", tower, minilm_dir, "model.preset=clip-tiny"))
    with pytest.raises(ConfigError, match="needs a WordPiece tokenizer"):
        Trainer(_cfg(tmp_path / "c", tower, minilm_dir, "data.tokenizer=null"))
    with pytest.raises(ConfigError, match="'regression' is not one of"):
        Trainer(load_config(None, ["objective.kind=regression", f"train.out={tmp_path / 'd'}"]))


def test_object_words_are_found_and_masked(minilm_dir):
    from polymodal.modalities.text import load_tokenizer
    from polymodal.train.region_data import mask_words, word_group_ids
    from polymodal.world.sources.regions import object_words

    tok = load_tokenizer(minilm_dir, 16)
    groups = word_group_ids(tok, object_words())
    assert {"colour", "shape", "count"} == set(groups) and len(groups["colour"]) == 8
    ids = tok(["two red squares on a beach"]).ids
    masked, labels = mask_words(ids, groups["colour"], 103)
    red = tok.tokenizer.token_to_id("red")
    assert (labels == red).sum() == 1 and (masked == 103).sum() == 1 and (labels != -100).sum() == 1


def test_mismatched_halves_take_another_scenes_caption():
    from polymodal.train.region_data import RegionCaptions

    n = 8
    data = RegionCaptions(torch.randn(n, 2, 4), torch.ones(n, 2, dtype=torch.long), torch.zeros(n, 2, 5),
                          torch.arange(n).view(n, 1, 1).expand(n, 1, 3).clone() + 10,
                          torch.ones(n, 1, 3, dtype=torch.long), [["x"]] * n)
    b = mlm_itm_batch(data, 0, 8, 0, {"MASK": 1, "CLS": 2, "SEP": 3, "PAD": 0}, 100)
    idx_of_caption = b["ids"].clone()
    keep = b["mlm_labels"] != -100
    idx_of_caption[keep] = b["mlm_labels"][keep]  # undo the masking
    first, second = idx_of_caption[:4, 0] - 10, idx_of_caption[4:, 0] - 10
    regions_of = [int(torch.nonzero((data.regions == r).all(-1).all(-1))[0]) for r in b["regions"]]
    assert first.tolist() == regions_of[:4] and all(c != r for c, r in zip(second.tolist(), regions_of[4:]))
