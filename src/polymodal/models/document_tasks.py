"""Task heads over a LayoutLMv2/v3 trunk (stem + trunk from the family file, heads here):

* ``entities`` — key–value extraction: a BIO tag per token (FUNSD's header / question / answer) and
  a key→value link scorer: each entity is its first token's state, projected twice; a question q
  links to an answer a with logit ⟨key(q), value(a)⟩ / √d.
* ``qa`` — extractive document QA: start and end logits per token.
* ``classify`` — the document's class from [CLS] and the mean of the visual tokens (text-only
  trunks: [CLS] alone).
* ``pretrain`` — LayoutLMv2's three pretraining heads: masked visual-language modelling (the word
  of each masked token, decoder tied to the word embeddings), text–image alignment (is this
  token's line covered on the image?) and text–image matching (is this the page's own image?).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..layers.prediction_heads import MaskedLMHead, tanh_head
from ..registry import register_family
from .bert import init_bert
from .layoutlmv2 import LayoutLMv2, LayoutLMv2Config
from .layoutlmv3 import LayoutLMv3, LayoutLMv3Config

TASKS = ("entities", "qa", "classify", "pretrain")
POOLS = ("cls+visual", "cls", "cls+visual_in+visual")


@dataclass
class DocumentTaskConfig:
    trunk: LayoutLMv2Config | LayoutLMv3Config
    task: str = "entities"
    num_labels: int = 7  # entities: BIO tags; classify: classes; qa: unused
    link_dim: int = 64  # entities: the link scorer's width; 0: no link scorer (a Hugging Face token classifier)
    head: str = "linear"  # the task's output layer: "linear", or "tanh" (dense → tanh → out_proj, LayoutLMv3's HF heads)
    # classify: [CLS] with the mean visual token; "cls" alone (LayoutLMv3's HF classifier); or
    # "cls+visual_in+visual": [CLS], the mean visual token before and after the trunk (LayoutLMv2's HF classifier)
    pool: str = "cls+visual"


class DocumentTaskModel(nn.Module):
    """ids [B, L], boxes [B, L, 4], image [B, 3, S, S] (or None), attention_mask [B, L], token_type_ids
    [B, L] (or None: all 0) → the task's logits."""

    def __init__(self, config: DocumentTaskConfig):
        super().__init__()
        self.config = c = config
        if c.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {c.task!r}")
        if c.head not in ("linear", "tanh") or c.pool not in POOLS:
            raise ValueError(f"head must be 'linear' or 'tanh' and pool one of {POOLS}, got {c.head!r}, {c.pool!r}")
        self.trunk = LayoutLMv3(c.trunk) if isinstance(c.trunk, LayoutLMv3Config) else LayoutLMv2(c.trunk)
        width = c.trunk.bert.width

        def head(width_in: int, out: int) -> nn.Module:
            return nn.Linear(width_in, out) if c.head == "linear" else tanh_head(width_in, width, out)

        if c.task == "entities":
            self.tagger = head(width, c.num_labels)
            if c.link_dim:
                self.link_key = nn.Linear(width, c.link_dim)
                self.link_value = nn.Linear(width, c.link_dim)
        elif c.task == "qa":
            self.span = head(width, 2)
        elif c.task == "pretrain":
            self.mlm = MaskedLMHead(width, c.trunk.bert.vocab_size, c.trunk.bert.act, c.trunk.bert.eps)
            self.tia = nn.Linear(width, 2)
            self.tim = nn.Linear(width, 2)
        else:
            parts = {"cls": 1, "cls+visual": 2, "cls+visual_in+visual": 3}[c.pool] if c.trunk.visual_tokens else 1
            self.classifier = head(parts * width, c.num_labels)
        init_bert(nn.ModuleList([m for n, m in self.named_children() if n != "trunk"]))

    def forward(self, ids: torch.Tensor, boxes: torch.Tensor, image: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, token_type_ids: torch.Tensor | None = None, **_) -> dict:
        """entities: ``tag_logits`` [B, L, C], ``link_keys`` / ``link_values`` [B, L, d] (with a link scorer);
        qa: ``start_logits`` / ``end_logits`` [B, L] (−inf on padding); classify: ``logits`` [B, C];
        pretrain: ``mlm_logits`` [B, L, vocab], ``tia_logits`` [B, L, 2], ``tim_logits`` [B, 2]."""
        if not self.config.trunk.visual_tokens:
            image = None
        out = self.trunk(ids, boxes, image, attention_mask, token_type_ids)
        text = out["text_hidden"]
        if self.config.task == "entities":
            if not self.config.link_dim:
                return {"tag_logits": self.tagger(text)}
            return {"tag_logits": self.tagger(text), "link_keys": self.link_key(text), "link_values": self.link_value(text)}
        if self.config.task == "pretrain":
            return {"mlm_logits": self.mlm(text, self.trunk.stem.word.weight), "tia_logits": self.tia(text),
                    "tim_logits": self.tim(text[:, 0])}
        if self.config.task == "qa":
            start, end = self.span(text).unbind(-1)
            if attention_mask is not None:
                pad = attention_mask == 0
                start, end = start.masked_fill(pad, float("-inf")), end.masked_fill(pad, float("-inf"))
            return {"start_logits": start, "end_logits": end}
        pooled = text[:, 0]
        if self.config.pool == "cls" or not self.config.trunk.visual_tokens:
            return {"logits": self.classifier(pooled)}
        if self.config.pool == "cls+visual_in+visual":
            if "visual_input" not in out:
                raise ValueError("this classifier reads the page's visual tokens: pass the page image")
            return {"logits": self.classifier(torch.cat([pooled, out["visual_input"].mean(1),
                                                         out["visual_hidden"].mean(1)], dim=-1))}
        visual = out["visual_hidden"]  # (none: a LayoutLMv3 called without an image, whose half is 0)
        return {"logits": self.classifier(torch.cat([pooled, visual.mean(1) if visual.shape[1] else torch.zeros_like(pooled)],
                                                    dim=-1))}

    @staticmethod
    def link_logits(keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """Entity states keys [E, d] (questions), values [F, d] (answers) → link logits [E, F]."""
        return keys @ values.T / math.sqrt(keys.shape[-1])


def _example_inputs(c: DocumentTaskConfig) -> dict:
    from .layoutlmv2 import _example_inputs as v2
    from .layoutlmv3 import _example_inputs as v3

    return (v3 if isinstance(c.trunk, LayoutLMv3Config) else v2)(c.trunk)


register_family("document-task", DocumentTaskConfig, DocumentTaskModel, example_inputs=_example_inputs)
