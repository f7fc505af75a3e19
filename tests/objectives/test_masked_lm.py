"""BERT's masking (rates, never padding or special tokens, reproducible) and the MLM + matching
objective against a hand computation, trained through the engine on VisualBERT."""

import pytest
import torch
import torch.nn.functional as F

import polymodal
from polymodal.objectives import MaskedLMAndMatching, mask_tokens
from polymodal.train.config import OptimConfig, TrainConfig
from polymodal.train.engine import Engine


def test_masking_rates_specials_padding_and_reproducibility():
    ids = torch.randint(5, 1000, (64, 128))
    ids[:, 0], ids[:, -1] = 1, 2  # CLS / SEP stand-ins
    mask = torch.ones_like(ids)
    mask[:, 100:] = 0
    out, labels = mask_tokens(ids, mask, mask_id=3, vocab_size=1000, special_ids=(1, 2),
                              generator=torch.Generator().manual_seed(0))
    chosen = labels != -100
    assert not chosen[:, 0].any() and not chosen[:, 100:].any()  # specials and padding never chosen
    assert 0.13 < chosen.float().sum() / mask[:, 1:100].sum() < 0.17
    assert torch.equal(labels[chosen], ids[chosen]) and torch.equal(out[~chosen], ids[~chosen])
    as_mask = (out[chosen] == 3).float().mean()
    kept = (out[chosen] == ids[chosen]).float().mean()
    assert 0.77 < as_mask < 0.83 and 0.07 < kept < 0.14  # 80 % [MASK], 10 % random (can hit the same id), 10 % kept
    again = mask_tokens(ids, mask, mask_id=3, vocab_size=1000, special_ids=(1, 2),
                        generator=torch.Generator().manual_seed(0))
    assert torch.equal(again[0], out) and torch.equal(again[1], labels)


def _batch(model, b=8, n=6, r=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    c = model.config
    ids = torch.randint(3, c.bert.vocab_size, (b, n), generator=g)
    mask = torch.ones(b, n, dtype=torch.long)
    masked, labels = mask_tokens(ids, mask, mask_id=2, vocab_size=c.bert.vocab_size, prob=0.3, generator=g)
    return {"ids": masked, "attention_mask": mask, "regions": torch.randn(b, r, c.visual_dim, generator=g),
            "region_mask": torch.ones(b, r, dtype=torch.long), "mlm_labels": labels,
            "itm_labels": torch.randint(0, 2, (b,), generator=g)}


def test_loss_is_the_sum_of_the_two_cross_entropies():
    torch.manual_seed(0)
    model = polymodal.create("visualbert-tiny").eval()
    batch = _batch(model)
    loss, logs = MaskedLMAndMatching().loss(model, batch)
    out = model(batch["ids"], batch["regions"], batch["attention_mask"], batch["region_mask"])
    chosen = batch["mlm_labels"] != -100
    mlm = F.cross_entropy(out["mlm_logits"][:, :6][chosen], batch["mlm_labels"][chosen])
    itm = F.cross_entropy(out["itm_logits"], batch["itm_labels"])
    assert loss.item() == pytest.approx((mlm + itm).item(), rel=1e-5)
    assert logs["mlm"] == pytest.approx(mlm.item(), rel=1e-5)


def test_visualbert_pretraining_objective_learns_through_the_engine():
    torch.manual_seed(0)
    model = polymodal.create("visualbert-tiny")
    fixed = _batch(model, b=16)  # one batch, memorised: the loss must fall
    engine = Engine(model, MaskedLMAndMatching(), lambda step: fixed, optim=OptimConfig(lr=3e-3, warmup_steps=2),
                    train=TrainConfig(steps=40, batch_size=16))
    log = engine.fit()
    assert log[-1]["loss"] < 0.3 * log[0]["loss"] and log[-1]["itm_accuracy"] == 1.0
