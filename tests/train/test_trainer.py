"""The training engine: config validation, exact resume after SIGKILL, 2-process DDP, NaN guard."""

import json
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from polymodal.train.config import ConfigError, load_config
from polymodal.train.trainer import Trainer, TrainingError
from cli_runs import cli_in_process

TINY = ["model.preset=clip-tiny", "data.image_size=32", "data.train_n=256", "data.val_n=64",
        "data.tokenizer_vocab=400", "data.context_length=64", "train.batch_size=32", "train.log_every=1",
        "train.threads=1", "optim.warmup_steps=3"]
# TINY for a user's files: without the world's scene counts, which such a source does not read.
TINY_FILES = [a for a in TINY if not a.startswith(("data.train_n=", "data.val_n="))]


def _losses(out):
    """Loss per step from metrics.jsonl; a last line still being written (no newline yet) is not read."""
    by_step = {}
    text = (out / "metrics.jsonl").read_text()
    for line in text[:text.rfind("\n") + 1].splitlines():
        rec = json.loads(line)
        if "loss" in rec:
            by_step[rec["step"]] = rec["loss"]  # a resumed run re-logs steps: keep the last
    return by_step


def _torchrun(args, **kw):
    """2 processes under torchrun; --standalone lets the rendezvous pick its own free port (no race)."""
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "polymodal.train", *args], capture_output=True, text=True, timeout=300, **kw)


def _train(args, **kw):
    return subprocess.Popen([sys.executable, "-m", "polymodal.train", *args], stdout=subprocess.DEVNULL, **kw)


def test_config_errors_name_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  steps: many\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: train.steps: expected int"):
        load_config(bad)
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['stepz'\]"):
        load_config(None, ["train.stepz=3"])
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="does not match"):
        Trainer(load_config(None, [*TINY, "data.image_size=64", f"train.out={tmp_path / 'x'}"]))
    with pytest.raises(ConfigError, match="not a CLIP"):
        Trainer(load_config(None, [*TINY, "model.preset=vit-tiny", f"train.out={tmp_path / 'y'}"]))


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    """One tokenizer shared by runs that must agree (BPE training itself is not reproducible)."""
    from polymodal.modalities.text import train_tokenizer
    from polymodal.world.pictures import world_captions

    _, texts = world_captions("train", 256, 0, 32)
    folder = tmp_path_factory.mktemp("tok")
    train_tokenizer((t for row in texts for t in row), "clip", 400, 64).save(folder)
    return folder


@pytest.mark.slow
def test_sigkill_and_resume_gives_exactly_the_same_losses(tmp_path, tokenizer_dir):
    common = [*TINY, "train.steps=16", "train.ckpt_every=4", "data.val_n=32", f"data.tokenizer={tokenizer_dir}"]
    _train([*common, f"train.out={tmp_path / 'whole'}"]).wait(timeout=300)
    whole = _losses(tmp_path / "whole")
    assert sorted(whole) == list(range(1, 17))

    proc = _train([*common, f"train.out={tmp_path / 'killed'}"])
    deadline = time.time() + 300
    while time.time() < deadline:
        if (tmp_path / "killed" / "metrics.jsonl").exists() and len(_losses(tmp_path / "killed")) >= 6:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    state = torch.load(tmp_path / "killed" / "checkpoints" / "latest.pt", weights_only=True)
    assert 4 <= state["step"] < 16  # killed after a checkpoint, before the end
    assert _train([*common, f"train.out={tmp_path / 'killed'}"]).wait(timeout=300) == 0
    resumed = _losses(tmp_path / "killed")
    assert resumed == whole  # bit-for-bit, every step


@pytest.mark.slow
def test_two_process_ddp_matches_one_process(tmp_path, tokenizer_dir):
    common = [*TINY, "train.steps=6", "data.val_n=32", f"data.tokenizer={tokenizer_dir}"]
    single = _train([*common, f"train.out={tmp_path / 'one'}"])
    assert single.wait(timeout=300) == 0
    ddp = _torchrun([*common, f"train.out={tmp_path / 'two'}"])
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    one, two = _losses(tmp_path / "one"), _losses(tmp_path / "two")
    assert sorted(one) == sorted(two) == list(range(1, 7))
    assert json.loads((tmp_path / "two" / "run_info.json").read_text())["parallel"] == "ddp"
    assert max(abs(one[s] - two[s]) for s in one) < 1e-4


@pytest.mark.slow
def test_two_process_fsdp_matches_one_process_and_saves_our_layout(tmp_path, tokenizer_dir):
    common = [*TINY, "train.steps=6", "train.ckpt_every=3", "data.val_n=32", f"data.tokenizer={tokenizer_dir}"]
    assert _train([*common, f"train.out={tmp_path / 'one'}"]).wait(timeout=300) == 0
    fsdp = _torchrun([*common, "train.fsdp=true", f"train.out={tmp_path / 'two'}"])
    assert fsdp.returncode == 0, fsdp.stderr[-2000:]
    # Parameters were sharded, not replicated (FSDP quietly running as DDP would hold all of them).
    info = json.loads((tmp_path / "two" / "run_info.json").read_text())
    assert info["parallel"] == "fsdp" and info["processes"] == 2
    assert 0.45 * info["parameters"] < info["local_parameters"] < 0.6 * info["parameters"]
    one, two = _losses(tmp_path / "one"), _losses(tmp_path / "two")
    assert sorted(two) == list(range(1, 7))
    assert max(abs(one[s] - two[s]) for s in one) < 1e-4
    # The gathered checkpoint is an ordinary one: a single process resumes it (at its last step).
    resumed = Trainer(load_config(None, [*common, f"train.out={tmp_path / 'two'}"]))
    assert resumed.step == 6
    from safetensors.torch import load_file

    saved = load_file(tmp_path / "two" / "model" / "model.safetensors")
    assert all(torch.equal(saved[k], v) for k, v in resumed.model.state_dict().items())
    # The same training evaluates the same (32 val pairs: within one retrieval of each other).
    one_eval, two_eval = (json.loads((tmp_path / run / "eval.json").read_text()) for run in ("one", "two"))
    assert abs(one_eval["text_to_image_R@1"] - two_eval["text_to_image_R@1"]) <= 1 / 32
    with pytest.raises(ConfigError, match="torchrun"):
        Trainer(load_config(None, [*common, "train.fsdp=true", f"train.out={tmp_path / 'x'}"]))


def test_nan_loss_stops_with_the_step_and_keeps_the_last_checkpoint(tmp_path):
    trainer = Trainer(load_config(None, [*TINY, "train.steps=6", "train.ckpt_every=2", f"train.out={tmp_path}"]))
    real = trainer.objective.loss_fn
    calls = []

    def poisoned(*args):
        calls.append(1)
        loss = real(*args)
        return loss * float("nan") if len(calls) == 5 else loss

    trainer.objective.loss_fn = poisoned
    with pytest.raises(TrainingError, match=r"at step 5; the last good checkpoint \(step 4\)"):
        trainer.train()
    assert torch.load(tmp_path / "checkpoints" / "latest.pt", weights_only=True)["step"] == 4


def test_resume_from_a_different_model_is_refused(tmp_path):
    Trainer(load_config(None, [*TINY, "train.steps=2", "train.ckpt_every=2", f"train.out={tmp_path}"])).train()
    with pytest.raises(TrainingError, match="different model"):
        Trainer(load_config(None, [*TINY, "train.steps=2", "data.context_length=48", f"train.out={tmp_path}"]))


@pytest.mark.slow
def test_cli_train_runs_the_yaml_recipe_with_overrides(tmp_path, tokenizer_dir):
    exe = [sys.executable, "-m", "polymodal.cli", "train", "configs/clip-world-tiny.yaml"]
    ok = subprocess.run(exe + [*TINY, "train.steps=3", "data.val_n=32", f"data.tokenizer={tokenizer_dir}",
                               f"train.out={tmp_path / 'run'}"], capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr[-2000:]
    result = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert {"text_to_image_R@1", "image_to_text_R@5", "zero_shot_held_out_top1"} <= set(result)
    assert json.loads((tmp_path / "run" / "config.yaml").read_text())["train"]["steps"] == 3
    # People read a rounded table; the full values stay in eval.json.
    assert "text_to_image_R@1" in ok.stdout and not re.search(r"\d\.\d{5,}", ok.stdout.split("step 3/3")[-1]), ok.stdout
    # not a terminal: progress comes as plain lines (the first logged step and the last), not a live bar
    assert re.search(r"^step 3/3  loss \d+\.\d{4}  \d+ samples/s$", ok.stdout, re.M), ok.stdout
    # the rest in this process (click's runner): no Python and torch start-up each
    bad = cli_in_process("train", "configs/clip-world-tiny.yaml", "train.stepz=3")
    assert bad.returncode == 2 and "stepz" in bad.stderr
    again = cli_in_process("eval", "configs/clip-world-tiny.yaml", "--checkpoint", tmp_path / "run" / "model", *TINY,
                           "data.val_n=32")
    assert again.returncode == 0, again.stderr[-2000:]
    # The saved model and tokenizer reproduce the run's own evaluation exactly.
    assert json.loads((tmp_path / "run" / "model" / "eval.json").read_text()) == result
    assert "| text_to_image_R@1 |" in (tmp_path / "run" / "model" / "eval.md").read_text()
    from PIL import Image

    with Image.open(tmp_path / "run" / "curves.png") as img:  # drawn automatically at the end
        assert img.width > 800
    drawn = cli_in_process("plot", tmp_path / "run", "--out", tmp_path / "c.png")
    assert drawn.returncode == 0 and (tmp_path / "c.png").stat().st_size > 10_000
    missing = cli_in_process("plot", tmp_path / "nope")
    assert missing.returncode == 2 and "metrics.jsonl" in missing.stderr


@pytest.mark.parametrize("frozen_text", [False, True])
@pytest.mark.slow
def test_gradient_accumulation_equals_one_big_batch(tmp_path, tokenizer_dir, minilm_dir, frozen_text):
    """accum_freq=4 (features cached, each micro-batch recomputed with gradients) follows the same
    losses and reaches the same weights as one pass over the whole contrastive batch."""
    from polymodal.train.trainer import Trainer

    if frozen_text:
        common = ["model.preset=clip-minilm-tiny", "model.text_weights=minilm", "model.freeze_text=true",
                  "data.image_size=64", "data.train_n=64", "data.val_n=32", "train.batch_size=32",
                  "train.threads=1", "optim.warmup_steps=1", "train.steps=3", "train.log_every=1"]
    else:
        common = [*TINY, "train.steps=3", "data.train_n=64", f"data.tokenizer={tokenizer_dir}"]
    runs = {}
    for k in (1, 4):
        trainer = Trainer(load_config(None, [*common, f"train.accum_freq={k}", f"train.out={tmp_path / str(k)}"]))
        assert (trainer.kind.text_cache is not None) == frozen_text
        runs[k] = (trainer.train(), trainer.model.state_dict())
    for a, b in zip(runs[1][0], runs[4][0]):
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-5)
    for name, value in runs[1][1].items():
        torch.testing.assert_close(runs[4][1][name], value, rtol=1e-4, atol=1e-5, msg=name)
    with pytest.raises(ConfigError, match="accum_freq 3 must be ≥ 1 and divide the per-process batch 32"):
        Trainer(load_config(None, [*common, "train.accum_freq=3", f"train.out={tmp_path / 'bad'}"]))


def test_tensorboard_events_hold_the_logged_scalars(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    Trainer(load_config(None, [*TINY, "train.steps=3", "train.tensorboard=true", f"train.out={tmp_path}"])).train()
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert {"loss", "lr", "logit_scale", "samples_per_s"} <= set(events.Tags()["scalars"])
    logged = {e.step: e.value for e in events.Scalars("loss")}
    assert logged == pytest.approx(_losses(tmp_path), rel=1e-6) and sorted(logged) == [1, 2, 3]


def test_a_causal_text_tower_trains_without_the_padding_mask_and_loses_nothing(tmp_path):
    """Right padding cannot reach a causal tower's EOT, so contrastive batches drop the mask (SDPA's
    causal kernel runs); the features equal the masked forward's. A BERT tower keeps its mask."""
    from polymodal.train.data import get_batch

    cfg = load_config(None, ["model.preset=clip-tiny", "data.image_size=32", "data.train_n=16", "data.val_n=8",
                             "train.batch_size=8", "data.tokenizer_vocab=300", "data.context_length=64",
                             f"train.out={tmp_path}"])
    trainer = Trainer(cfg)
    assert trainer._batch(0)["mask"] is None
    pixels, ids, mask = get_batch(trainer.kind.data, 0, 8, 0)
    assert (mask == 0).any()  # there is padding to ignore
    model = trainer.model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(pixels, ids, None)["text_features"], model(pixels, ids, mask)["text_features"])
    left = torch.flip(mask, dims=[1])  # padding first: not safe to drop
    assert torch.equal(trainer.kind.text_mask(left), left)
    trainer.kind.causal_text = False
    assert torch.equal(trainer.kind.text_mask(mask), mask)


def test_batches_made_ahead_by_loader_workers_train_exactly_as_batches_made_in_the_loop(tmp_path):
    common = ["model.preset=clip-tiny", "data.image_size=32", "data.train_n=32", "data.val_n=8", "train.batch_size=8",
              "data.tokenizer_vocab=300", "data.context_length=32", "train.steps=3", "train.threads=1",
              "optim.warmup_steps=1"]
    losses, tokenizer = {}, []  # the second run reads the first's tokenizer (BPE training breaks ties by hash order)
    for workers in (0, 2):
        trainer = Trainer(load_config(None, [*common, *tokenizer, f"train.loader_workers={workers}",
                                             f"train.out={tmp_path / str(workers)}"]))
        losses[workers] = [r["loss"] for r in trainer.train()]
        tokenizer = [f"data.tokenizer={tmp_path / '0' / 'tokenizer'}"]
    assert len(losses[2]) == 3 and losses[2] == losses[0]
    with pytest.raises(ConfigError, match="train.loader_workers 2: data.kind wds streams through its own readers"):
        files = [a for a in common if not a.startswith(("data.train_n=", "data.val_n="))]
        Trainer(load_config(None, [*files, "data.kind=wds", f"data.path={tmp_path}", "train.loader_workers=2",
                                   f"train.out={tmp_path / 'w'}"]))
