"""The document tasks' losses (LayoutLM task models, ``models/document_tasks.py``).

Batches carry the model inputs (``ids``, ``boxes``, ``attention_mask``, ``image``, ``token_type_ids`` where used) and:

* entities — ``tags`` [B, L] (BIO id on each word's first token, −100 elsewhere), ``entity_tokens``
  [B, E] (each entity's first token, −1 for padding), ``entity_role`` [B, E] (1 question, 2 answer,
  0 other) and ``links`` [B, E, E] (1 where entity i, a question, links to entity j, an answer);
* qa — ``start`` / ``end`` [B] token positions (0, the [CLS], when the answer is not in the window);
* classify — ``labels`` [B];
* pretrain — ``mlm_labels`` [B, L] (the original id of each masked token, −100 elsewhere),
  ``tia_labels`` [B, L] (1 where the token's line is covered on the image, −100 off words) and
  ``tim_labels`` [B] (1 where the image is another page's).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..models.document_tasks import DocumentTaskModel
from .base import Objective, masked_mean


def _inputs(batch: dict) -> dict:
    return {k: batch[k] for k in ("ids", "boxes", "image", "attention_mask", "token_type_ids") if k in batch}


class EntityTagging(Objective):
    """Token cross-entropy on the BIO tags plus binary cross-entropy on every (question, answer)
    entity pair of a page: linked or not (weighted by ``link_weight``)."""

    def __init__(self, link_weight: float = 1.0):
        self.link_weight = link_weight

    def loss(self, model, batch):
        out = model(**_inputs(batch))
        logits = out["tag_logits"].float()
        tags = batch["tags"]
        tag_loss = F.cross_entropy(logits.flatten(0, 1), tags.flatten(), ignore_index=-100)
        tokens, role = batch["entity_tokens"], batch["entity_role"]
        rows = torch.arange(tokens.shape[0], device=tokens.device).unsqueeze(1)
        keys = out["link_keys"][rows, tokens.clamp(min=0)].float()  # [B, E, d]
        values = out["link_values"][rows, tokens.clamp(min=0)].float()
        link_logits = keys @ values.transpose(1, 2) / keys.shape[-1] ** 0.5  # [B, E, E]
        pairs = (role == 1).unsqueeze(2) & (role == 2).unsqueeze(1)
        bce = F.binary_cross_entropy_with_logits(link_logits, batch["links"].float(), reduction="none")
        link_loss = masked_mean(bce, pairs)
        real = tags != -100
        accuracy = masked_mean((logits.argmax(-1) == tags).float(), real)
        return tag_loss + self.link_weight * link_loss, {"tag_loss": tag_loss.detach(), "link_loss": link_loss.detach(),
                                                         "tag_accuracy": accuracy.detach()}


class SpanExtraction(Objective):
    """Cross-entropy of the answer's start and end token (SQuAD / DocVQA fine-tuning)."""

    def loss(self, model, batch):
        out = model(**_inputs(batch))
        start = F.cross_entropy(out["start_logits"].float(), batch["start"])
        end = F.cross_entropy(out["end_logits"].float(), batch["end"])
        exact = (out["start_logits"].argmax(-1) == batch["start"]) & (out["end_logits"].argmax(-1) == batch["end"])
        return (start + end) / 2, {"span_accuracy": exact.float().mean().detach()}


class DocumentClassification(Objective):
    def __init__(self, label_smoothing: float = 0.0):
        self.label_smoothing = label_smoothing

    def loss(self, model: DocumentTaskModel, batch):
        logits = model(**_inputs(batch))["logits"].float()
        loss = F.cross_entropy(logits, batch["labels"], label_smoothing=self.label_smoothing)
        return loss, {"accuracy": (logits.argmax(-1) == batch["labels"]).float().mean().detach()}


class LayoutPretraining(Objective):
    """LayoutLMv2's pretraining: MVLM + TIA + TIM cross-entropies, summed."""

    def loss(self, model, batch):
        out = model(**_inputs(batch))
        mlm = F.cross_entropy(out["mlm_logits"].float().flatten(0, 1), batch["mlm_labels"].flatten(), ignore_index=-100)
        tia = F.cross_entropy(out["tia_logits"].float().flatten(0, 1), batch["tia_labels"].flatten(), ignore_index=-100)
        tim = F.cross_entropy(out["tim_logits"].float(), batch["tim_labels"])
        masked = batch["mlm_labels"] != -100
        mlm_acc = masked_mean((out["mlm_logits"].argmax(-1) == batch["mlm_labels"]).float(), masked)
        tim_acc = (out["tim_logits"].argmax(-1) == batch["tim_labels"]).float().mean()
        return mlm + tia + tim, {"mlm_loss": mlm.detach(), "tia_loss": tia.detach(), "tim_loss": tim.detach(),
                                 "mlm_accuracy": mlm_acc.detach(), "tim_accuracy": tim_acc.detach()}
