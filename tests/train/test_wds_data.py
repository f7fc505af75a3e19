"""Streaming WebDataset shards into the trainer: no duplicates across ranks and workers, exact
resume at any step, bad samples reported and skipped, and a training run on shards."""

import io
import json
import tarfile

import pytest
import torch

from polymodal.world.export import export
from polymodal.modalities.text import train_tokenizer
from polymodal.train.config import ConfigError, load_config
from polymodal.train.trainer import Trainer
from polymodal.train.wds_data import ShardBatches, StreamPlan, find_shards, shard_sizes

TINY = ["model.preset=clip-tiny", "data.image_size=32", "data.tokenizer_vocab=400", "data.context_length=64",
        "train.batch_size=16", "train.log_every=1", "train.threads=1", "optim.warmup_steps=2"]


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """7 world shards of 20 samples (the last one 10) and one tokenizer for them."""
    folder = tmp_path_factory.mktemp("shards")
    export(folder, "train", n=130, shard_size=20, modalities=("image", "caption"), image_size=32)
    from polymodal.train.wds_data import shard_captions

    tok = train_tokenizer(shard_captions(find_shards(folder)), "clip", 400, 64)
    return folder, tok


def _plan(folder, world=2, workers=2, batch=8, buffer=16):
    paths = find_shards(folder)
    return StreamPlan(paths, shard_sizes(paths), batch, world, workers, seed=0, buffer=buffer)


def test_ranks_and_workers_read_disjoint_samples(shards):
    folder, tok = shards
    plan = _plan(folder)
    assert shard_sizes(find_shards(folder)) == [20] * 6 + [10]
    seen = []
    steps = plan.batches_per_stream(0) * plan.per_rank
    assert steps > 0
    for rank in range(2):
        stream = ShardBatches(plan, tok, 32, rank)
        for step in range(steps):
            batch = stream.get(step)
            assert batch["pixels"].shape == (8, 3, 32, 32) and batch["ids"].shape[0] == 8
            seen += batch["keys"]
    assert len(seen) == len(set(seen)) == 2 * steps * 8  # every sample of the epoch at most once
    # The next epoch reshuffles the shards: the first batch differs from epoch 0's.
    again = ShardBatches(plan, tok, 32, 0)
    assert again.get(steps)["keys"] != again.get(0)["keys"]


def test_any_step_is_reproduced_by_a_fresh_stream(shards):
    """Resuming opens the stream at the step: each batch equals the uninterrupted stream's."""
    folder, tok = shards
    plan = _plan(folder, world=1)
    steps = plan.batches_per_stream(0) * plan.per_rank
    whole = ShardBatches(plan, tok, 32, 0)
    batches = [whole.get(s) for s in range(steps + 3)]  # into the second epoch
    for s in (1, 2, steps - 1, steps, steps + 2):
        fresh = ShardBatches(plan, tok, 32, 0).get(s)
        assert fresh["keys"] == batches[s]["keys"]
        assert torch.equal(fresh["pixels"], batches[s]["pixels"]) and torch.equal(fresh["ids"], batches[s]["ids"])


def test_bad_samples_are_reported_and_skipped(tmp_path, shards):
    folder, tok = shards
    bad = tmp_path / "bad"
    bad.mkdir()
    source = find_shards(folder)[0]
    with tarfile.open(source) as src, tarfile.open(bad / "mixed-00000.tar", "w") as dst:
        for member in src:
            data = src.extractfile(member).read()
            if member.name.startswith("train-00000003") and member.name.endswith(".png"):
                data = b"not a png"  # corrupt image
            if member.name.startswith("train-00000005") and member.name.endswith(".json"):
                data = json.dumps({"index": 5}).encode()  # no caption
            info = tarfile.TarInfo(member.name)
            info.size = len(data)
            dst.addfile(info, io.BytesIO(data))
    paths = find_shards(bad)
    plan = StreamPlan(paths, shard_sizes(paths), 6, 1, 0, seed=0, buffer=4)
    stream = ShardBatches(plan, tok, 32, 0)
    batches = [stream.get(s) for s in range(plan.batches_per_stream(0))]
    skipped = [line for b in batches for line in b["skipped"]]
    assert any("train-00000003" in s and "mixed-00000.tar" in s for s in skipped)
    assert any("train-00000005" in s and "no caption" in s for s in skipped)
    keys = [k for b in batches for k in b["keys"]]
    assert "train-00000003" not in keys and "train-00000005" not in keys
    assert all(b["pixels"].shape[0] == 6 for b in batches)  # short streams refill: batches stay whole


@pytest.mark.slow
def test_trainer_streams_shards_and_resumes_exactly(tmp_path, shards, crash_after_first_checkpoint):
    folder, tok = shards
    tok.save(tmp_path / "tok")
    common = [*TINY, "data.kind=wds", f"data.path={folder}", "data.workers=2", "data.shuffle_buffer=16",
              f"data.tokenizer={tmp_path / 'tok'}", "train.ckpt_every=3"]
    whole = Trainer(load_config(None, [*common, "train.steps=8", f"train.out={tmp_path / 'whole'}"])).train()
    # The process dies right after its first checkpoint (step 3).
    part = [*common, "train.steps=8", f"train.out={tmp_path / 'part'}"]
    crash_after_first_checkpoint(Trainer(load_config(None, part)))
    resumed = Trainer(load_config(None, part))
    assert resumed.step == 3
    tail = resumed.train()
    assert [r["loss"] for r in tail] == [r["loss"] for r in whole[3:]]
    # Too few shards for the streams is a clear error before training starts.
    with pytest.raises(ConfigError, match=r"streams \(processes × workers\)"):
        Trainer(load_config(None, [*common, "data.workers=8", "train.batch_size=64", "train.steps=1",
                                   f"train.out={tmp_path / 'x'}"]))
    with pytest.raises(ConfigError, match="holds no .tar shards"):
        Trainer(load_config(None, [*common, f"data.path={tmp_path}", f"train.out={tmp_path / 'y'}"]))
