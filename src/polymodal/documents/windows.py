"""Words with boxes → LayoutLM token windows, and per-token predictions → per-word ones.

Every sub-word token inherits its word's box. A page longer than the model's window is split into
overlapping windows: consecutive windows share ``stride`` tokens (Hugging Face's meaning of
stride), so every word is seen with context on both sides somewhere. Predictions are merged back
per word from the window where the word's first token has the most context (the farthest from
that window's edges), as extractive QA and NER over long texts do.

    [CLS] (question [SEP]{pair_seps})? words… [SEP] [PAD]…   boxes: CLS 0s · SEP sep_box · question question_box · pad 0s
    token types: 0 … 0 (through the question's [SEP]s), 1 from the first word to the last [SEP]

The defaults (SEP and question at 1000s, one [SEP] after the question) are what polymodal's first
document models trained with; Hugging Face's processors give the question the zero box, LayoutLMv3
the zero SEP box and two </s> between question and words (RoBERTa's pair) —
:meth:`DocumentProcessor.for_model` picks those.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tokenizers import Tokenizer

SPECIAL_BOX = {"cls": [0, 0, 0, 0], "sep": [1000, 1000, 1000, 1000], "pad": [0, 0, 0, 0]}


@dataclass
class Specials:
    """The special ids a window needs (BERT: [CLS] [SEP] [PAD]; RoBERTa: <s> </s> <pad>)."""

    cls: int
    sep: int
    pad: int

    @classmethod
    def of(cls, tokenizer: Tokenizer) -> "Specials":
        for names in (("[CLS]", "[SEP]", "[PAD]"), ("<s>", "</s>", "<pad>")):
            ids = [tokenizer.token_to_id(n) for n in names]
            if None not in ids:
                return cls(*ids)
        raise ValueError("the tokenizer has neither [CLS]/[SEP]/[PAD] nor <s>/</s>/<pad>")


@dataclass
class Window:
    ids: list[int]
    boxes: list[list[int]]
    word_ids: list[int]  # the word each token belongs to; -1 for special and question tokens
    first: list[bool]  # whether the token is its word's first sub-token
    start: int  # index of the window's first word token in the page's token sequence
    question_len: int = 0  # tokens of the question (after [CLS]), 0 without one
    type_ids: list[int] | None = None  # BERT's segments: 1 on the page's part after a question, else 0


def tokenize_words(words: list[str], tokenizer: Tokenizer) -> tuple[list[int], list[int]]:
    """Sub-word ids of the words (no specials) and the word index of each."""
    if not words:
        return [], []
    enc = tokenizer.encode(words, is_pretokenized=True, add_special_tokens=False)
    ids, word_ids = list(enc.ids), [w if w is not None else -1 for w in enc.word_ids]
    return ids, word_ids


def token_windows(words: list[str], boxes: np.ndarray, tokenizer: Tokenizer, *, max_tokens: int = 512,
                  stride: int = 128, question: str | None = None, sep_box: list[int] | None = None,
                  question_box: list[int] | None = None, pair_seps: int = 1) -> list[Window]:
    """Windows of at most ``max_tokens`` tokens over the words (``boxes`` [N, 4] on the 0–1000
    grid); a ``question`` is put before every window (document QA). A page without words is one
    window of the specials (and question) alone. ``sep_box`` / ``question_box``: the boxes of [SEP]
    and of the question's tokens (default 1000s); ``pair_seps``: [SEP]s between question and words."""
    boxes = np.asarray(boxes, np.int64).reshape(-1, 4)
    if len(boxes) != len(words):
        raise ValueError(f"{len(words)} words but {len(boxes)} boxes")
    sp = Specials.of(tokenizer)
    sep_box = list(SPECIAL_BOX["sep"] if sep_box is None else sep_box)
    question_box = list(sep_box if question_box is None else question_box)
    ids, word_of = tokenize_words(words, tokenizer)
    q_ids = tokenizer.encode(question, add_special_tokens=False).ids if question else []
    head = [sp.cls] + (q_ids + [sp.sep] * pair_seps if question else [])
    body = max_tokens - len(head) - 1
    if body < 8:
        raise ValueError(f"max_tokens {max_tokens} leaves {body} tokens for the page after the question")
    if not 0 <= stride < body:
        raise ValueError(f"stride must be in [0, {body}) for windows of {body} page tokens, got {stride}")
    starts = list(range(0, max(len(ids) - stride, 1), body - stride)) or [0]
    windows = []
    for start in starts:
        part = range(start, min(start + body, len(ids)))
        wid = [word_of[i] for i in part]
        windows.append(Window(
            ids=head + [ids[i] for i in part] + [sp.sep],
            boxes=[SPECIAL_BOX["cls"]] + [question_box] * len(q_ids) + [sep_box] * (len(head) - 1 - len(q_ids))
                  + [boxes[w].tolist() for w in wid] + [sep_box],
            word_ids=[-1] * len(head) + wid + [-1],
            first=[False] * len(head) + [i == 0 or word_of[i - 1] != word_of[i] for i in part] + [False],
            start=start, question_len=len(q_ids),
            type_ids=[0] * len(head) + [1 if question else 0] * (len(part) + 1)))
        if part.stop >= len(ids):
            break
    return windows


def collate(windows: list[Window], pad_id: int) -> dict[str, torch.Tensor]:
    """Windows → padded ``ids`` [B, L], ``boxes`` [B, L, 4], ``attention_mask`` [B, L],
    ``word_ids`` [B, L] (−1 off words) and ``token_type_ids`` [B, L], L the longest window."""
    n = max(len(w.ids) for w in windows)
    out = {"ids": torch.full((len(windows), n), pad_id, dtype=torch.long),
           "boxes": torch.zeros(len(windows), n, 4, dtype=torch.long),
           "attention_mask": torch.zeros(len(windows), n, dtype=torch.long),
           "word_ids": torch.full((len(windows), n), -1, dtype=torch.long),
           "token_type_ids": torch.zeros(len(windows), n, dtype=torch.long)}
    for row, w in enumerate(windows):
        k = len(w.ids)
        out["ids"][row, :k] = torch.tensor(w.ids)
        if w.type_ids is not None:
            out["token_type_ids"][row, :k] = torch.tensor(w.type_ids)
        out["boxes"][row, :k] = torch.tensor(w.boxes)
        out["attention_mask"][row, :k] = 1
        out["word_ids"][row, :k] = torch.tensor(w.word_ids)
    return out


def best_token_per_word(windows: list[Window], n_words: int) -> list[tuple[int, int]]:
    """For each word, (window, token index) of its first sub-token in the window where it has the
    most context; (−1, −1) for a word that produced no token (e.g. only characters the tokenizer drops)."""
    best = [(-1, -1, -1)] * n_words  # (context, window, position)
    for wi, w in enumerate(windows):
        body = [t for t, word in enumerate(w.word_ids) if word >= 0]
        if not body:
            continue
        lo, hi = body[0], body[-1]
        for t in body:
            if w.first[t]:
                context = min(t - lo, hi - t)
                word = w.word_ids[t]
                if context > best[word][0]:
                    best[word] = (context, wi, t)
    return [(wi, t) for _, wi, t in best]


def merge_word_logits(windows: list[Window], logits: torch.Tensor, n_words: int) -> torch.Tensor:
    """Token logits [B, L, C] of the windows → word logits [n_words, C] (zeros for a word with no token)."""
    out = logits.new_zeros(n_words, logits.shape[-1])
    for word, (wi, t) in enumerate(best_token_per_word(windows, n_words)):
        if wi >= 0:
            out[word] = logits[wi, t]
    return out
