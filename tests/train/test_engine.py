"""The one engine trains any (model, objective, batches): a classifier from a config, micro-batch
accumulation that equals one pass, and CSV columns named by the user."""

import json

import pytest
import torch
from PIL import Image
from torch import nn

from polymodal.objectives import Classification
from polymodal.train.config import ConfigError, OptimConfig, TrainConfig, load_config
from polymodal.train.engine import Engine, TrainingError
from polymodal.train.trainer import Trainer, run

CLASSIFY = ["objective.kind=classification", "model.preset=vit-tiny", "data.image_size=32", "data.train_n=512",
            "data.val_n=128", "train.batch_size=64", "train.threads=1", "optim.lr=1e-3", "optim.warmup_steps=5",
            "train.log_every=10"]


def test_a_classifier_trains_through_the_same_loop_from_a_config(tmp_path):
    result = run(load_config(None, [*CLASSIFY, "train.steps=60", f"train.out={tmp_path}"]))
    # The world's place is visible in every pixel of the background: well above the majority class.
    assert result["val_accuracy"] > result["val_majority_baseline"] + 0.3
    saved = json.loads((tmp_path / "model" / "config.json").read_text())
    assert saved["family"] == "vit" and saved["config"]["num_classes"] == 5
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert "accuracy" in records[-1] and (tmp_path / "curves.png").is_file()


def test_classification_config_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="'clip-tiny' has no classification head"):
        Trainer(load_config(None, [*CLASSIFY, "model.preset=clip-tiny", f"train.out={tmp_path / 'a'}"]))
    with pytest.raises(ConfigError, match="objective.kind: 'regression' is not one of"):
        Trainer(load_config(None, ["objective.kind=regression", f"train.out={tmp_path / 'r'}"]))
    # A source that gives other examples: the error says what it gives and who gives labelled images.
    with pytest.raises(ConfigError, match="needs labelled images: data.kind 'csv' gives caption pairs.*: folders, world"):
        Trainer(load_config(None, [*CLASSIFY, "data.kind=csv", "data.path=x.csv", f"train.out={tmp_path / 'b'}"]))


def _fit(accum_freq: int, steps: int = 3):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.GELU(), nn.Linear(16, 4))
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(64, 6, generator=g), torch.randint(0, 4, (64,), generator=g)
    engine = Engine(model, Classification(), lambda step: {"inputs": x[step * 16:(step + 1) * 16],
                                                           "labels": y[step * 16:(step + 1) * 16]},
                    optim=OptimConfig(warmup_steps=1), train=TrainConfig(steps=steps, batch_size=16,
                                                                          accum_freq=accum_freq))
    return engine.fit(), model.state_dict()


def test_accumulated_micro_batches_equal_one_pass():
    (one, w1), (four, w4) = _fit(1), _fit(4)
    assert [r["loss"] for r in one] == pytest.approx([r["loss"] for r in four], abs=1e-6)
    for k in w1:
        torch.testing.assert_close(w1[k], w4[k], rtol=1e-5, atol=1e-6)


def test_an_in_memory_run_names_the_step_of_a_nan():
    model = nn.Linear(2, 2)
    batches = lambda step: {"inputs": torch.full((4, 2), float("nan") if step == 2 else 1.0),  # noqa: E731
                            "labels": torch.zeros(4, dtype=torch.long)}
    engine = Engine(model, Classification(), batches, optim=OptimConfig(), train=TrainConfig(steps=5, batch_size=4))
    with pytest.raises(TrainingError, match="loss is nan at step 3$"):
        engine.fit()


@pytest.mark.parametrize("per_micro_batch", [True, False])
def test_a_nan_stops_the_run_before_its_checkpoint_however_it_is_checked(tmp_path, per_micro_batch):
    """On the CPU each micro-batch's loss is checked before backward; on a GPU (False here) the step's
    loss is checked with its logged values, after the step — still before a checkpoint could keep it."""
    batches = lambda step: {"inputs": torch.full((4, 2), float("nan") if step == 3 else 1.0),  # noqa: E731
                            "labels": torch.zeros(4, dtype=torch.long)}
    engine = Engine(nn.Linear(2, 2), Classification(), batches, optim=OptimConfig(),
                    train=TrainConfig(steps=6, batch_size=4, ckpt_every=2), out=tmp_path, identity={"family": "toy"})
    engine.check_micro_batches = per_micro_batch
    with pytest.raises(TrainingError, match=r"loss is nan at step 4; the last good checkpoint \(step 2\)"):
        engine.fit()
    saved = torch.load(tmp_path / "checkpoints" / "latest.pt", weights_only=True)
    assert saved["step"] == 2 and all(torch.isfinite(t).all() for t in saved["model"].values())


def test_csv_columns_are_named_by_the_user(tmp_path):
    """A real table whose image column is `path` and caption column `text` (open_clip's
    --csv-img-key / --csv-caption-key)."""
    rows = ["path,text"]
    for i in range(16):
        Image.new("RGB", (40, 40), (i * 15, 255 - i * 15, 90)).save(tmp_path / f"{i}.png")
        rows.append(f"{i}.png,a picture number {i}")
    (tmp_path / "pairs.csv").write_text("\n".join(rows) + "\n")
    common = ["model.preset=clip-tiny", "data.image_size=32", "data.kind=csv", f"data.path={tmp_path / 'pairs.csv'}",
              "data.tokenizer_vocab=300", "data.context_length=16", "train.batch_size=8", "train.steps=2",
              "optim.warmup_steps=1", "train.threads=1"]
    with pytest.raises(ConfigError, match=r"missing column\(s\) \['filepath', 'caption'\]; found \['path', 'text'\]"):
        Trainer(load_config(None, [*common, f"train.out={tmp_path / 'a'}"]))
    trainer = Trainer(load_config(None, [*common, "data.image_key=path", "data.caption_key=text",
                                         f"train.out={tmp_path / 'b'}"]))
    assert len(trainer.kind.data) == 16 and trainer.kind.data.texts[3] == ["a picture number 3"]
    assert len(trainer.train()) == 2
