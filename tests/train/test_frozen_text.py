import pytest
"""A frozen pretrained text tower: its features are computed once, and training on them gives the
same losses as running the tower every step."""

import torch

from polymodal.train.config import load_config
from polymodal.train.trainer import Trainer

SETUP = ["model.preset=clip-minilm-tiny", "model.text_weights=minilm", "model.freeze_text=true",
         "data.train_n=64", "data.val_n=16", "data.context_length=64", "train.batch_size=16", "train.threads=1",
         "train.steps=3", "train.log_every=1", "optim.warmup_steps=1"]


@pytest.mark.slow
def test_cached_frozen_text_features_train_like_the_full_forward(tmp_path):
    cached = Trainer(load_config(None, [*SETUP, f"train.out={tmp_path / 'a'}"]))
    assert cached.kind.text_cache is not None and cached.kind.text_cache.shape == (64, 3, 384)
    full = Trainer(load_config(None, [*SETUP, f"train.out={tmp_path / 'b'}"]))
    full.kind.text_cache = None  # run the frozen tower every step
    assert [n for n, p in full.model.text.named_parameters() if p.requires_grad] == ["proj.weight"]
    a, b = cached.train(), full.train()
    for x, y in zip(a, b, strict=True):
        assert abs(x["loss"] - y["loss"]) < 1e-4
    torch.testing.assert_close(cached.model.text.proj.weight, full.model.text.proj.weight, rtol=1e-4, atol=1e-5)
