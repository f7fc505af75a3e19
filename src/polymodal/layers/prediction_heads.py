"""Token-level prediction heads shared by the BERT-style families (VisualBERT, ViLBERT, LayoutLM).

``MaskedLMHead``: dense → activation → LayerNorm → decoder. With a tied decoder the vocabulary
projection is the word-embedding table passed in at call time (one Parameter, so safetensors
stores it once), plus the head's own bias; an untied decoder (ViLBERT's region-class head) is a
Linear of its own. ``tanh_head``: RoBERTa's dense → tanh → projection (LayoutLMv3's task heads).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from .mlp import make_activation


class MaskedLMHead(nn.Module):
    """hidden [B, N, width] → logits [B, N, vocab]."""

    def __init__(self, width: int, vocab: int, act: str = "gelu", eps: float = 1e-12, tied: bool = True):
        super().__init__()
        self.dense = nn.Linear(width, width)
        self.act = make_activation(act)
        self.norm = nn.LayerNorm(width, eps=eps)
        self.decoder = None if tied else nn.Linear(width, vocab)
        self.bias = nn.Parameter(torch.zeros(vocab)) if tied else None

    def forward(self, hidden: torch.Tensor, embedding: torch.Tensor | None = None) -> torch.Tensor:
        """``embedding`` [vocab, width]: the tied word-embedding table (required when tied)."""
        x = self.norm(self.act(self.dense(hidden)))
        if self.decoder is not None:
            return self.decoder(x)
        if embedding is None:
            raise ValueError("a tied MaskedLMHead needs the word-embedding table")
        return F.linear(x, embedding, self.bias)


def tanh_head(width_in: int, width: int, out: int) -> nn.Sequential:
    """RoBERTa's classification head, as LayoutLMv3's task models use it: Linear(width_in, width) →
    tanh → Linear(width, out), keys ``dense.*`` and ``out_proj.*`` (dropout between is training only)."""
    return nn.Sequential(OrderedDict(dense=nn.Linear(width_in, width), act=nn.Tanh(), out_proj=nn.Linear(width, out)))
