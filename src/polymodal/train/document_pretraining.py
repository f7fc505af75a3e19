"""LayoutLMv2's pretraining on documents (``objective.kind doc_pretrain``), through the one loop:

* masked visual-language modelling — 15 % of the word tokens masked (80 % [MASK], 10 % a random
  word, 10 % kept); their boxes stay, and so does the page image (the issue's choice: the region
  is left visible);
* text–image alignment — whole lines covered (whited out) on the page image; every word token not
  masked predicts whether its line is covered;
* text–image matching — a fifth of the pages get another page's image; [CLS] predicts which.

Every batch is a pure function of (train.seed, step, rank): a resumed run sees the same batches.
A fine-tuning run starts from the result with ``model.init_from: RUN/model``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..data.documents import DocumentExample, page_image
from ..documents.page import normalize_boxes
from ..objectives import Objective
from ..objectives.documents import LayoutPretraining
from .documents import DocumentKind, _row
from .kinds import register_kind

MASK_SHARE, COVER_SHARE, SWAP_SHARE = 0.15, 0.15, 0.2


def line_ids(ex: DocumentExample) -> list[int]:
    """Each word's line: the source's own, else words grouped by vertical overlap in reading order."""
    if ex.lines is not None:
        return list(ex.lines)
    lines, line, prev = [], -1, None
    for box in ex.boxes:
        centre = (box[1] + box[3]) / 2
        if prev is None or not prev[1] <= centre <= prev[3]:
            line += 1
            prev = box
        lines.append(line)
    return lines


@register_kind("doc_pretrain")
class PretrainKind(DocumentKind):
    task = "pretrain"
    labels = ["mlm", "tia", "tim"]

    def load_data(self) -> None:
        super().load_data()
        tok = self.processor.tokenizer
        self.mask_id = tok.token_to_id("[MASK]") if tok.token_to_id("[MASK]") is not None else tok.token_to_id("<mask>")
        if self.mask_id is None:
            raise ValueError("the tokenizer has no [MASK] or <mask> token for masked visual-language modelling")
        self.special_ids = set(vars(self.processor.specials).values())

    def encode(self, ex: DocumentExample, index: int) -> list[dict]:
        grid = normalize_boxes(ex.boxes, ex.width, ex.height)
        windows, batch = self.processor.encode(ex.words, grid, None)
        lines = line_ids(ex)
        w = windows[0]
        row = _row(w, batch, 0, index)
        row["line"] = torch.tensor([lines[wid] if wid >= 0 else -1 for wid in w.word_ids])
        # Each line's pixel box on the page, to cover it.
        row["line_boxes"] = {ln: (ex.boxes[[i for i, x in enumerate(lines) if x == ln]][:, :2].min(0).tolist()
                                  + ex.boxes[[i for i, x in enumerate(lines) if x == ln]][:, 2:].max(0).tolist())
                             for ln in set(lines)}
        row["size"] = (ex.width, ex.height)
        return [row]

    def objective(self, model: nn.Module) -> Objective:
        return LayoutPretraining()

    def batch(self, step: int) -> dict:
        _, rows = self.batch_rows(step)
        g = torch.Generator().manual_seed(self.cfg.train.seed * 1_000_003 + step * 131 + self.rank)
        return self.corrupt(rows, self.pages, g)

    def corrupt(self, rows: list[dict], pages: torch.Tensor | None, g: torch.Generator) -> dict:
        """The pretraining batch of ``rows``: tokens masked, lines covered, images swapped (``pages``:
        uint8 [N, 3, S, S], the rows' own store), with the three tasks' labels."""
        out = self.collate(rows, None)
        ids = out["ids"]
        words = torch.zeros_like(ids, dtype=torch.bool)
        line = torch.full_like(ids, -1)
        for i, r in enumerate(rows):
            line[i, :len(r["line"])] = r["line"]
            words[i, :len(r["line"])] = r["line"] >= 0
        masked = words & (torch.rand(ids.shape, generator=g) < MASK_SHARE)
        out["mlm_labels"] = torch.where(masked, ids, -100)
        roll = torch.rand(ids.shape, generator=g)
        random_ids = torch.randint(0, self.processor.tokenizer.get_vocab_size(), ids.shape, generator=g)
        out["ids"] = torch.where(masked & (roll < 0.8), self.mask_id, torch.where(masked & (roll < 0.9), random_ids, ids))
        swap = torch.rand(len(rows), generator=g) < SWAP_SHARE
        tia = torch.full_like(ids, -100)
        if pages is not None:
            batch_pages = pages[[r["page"] for r in rows]].clone()
            size = batch_pages.shape[-1]
            for i, r in enumerate(rows):
                if swap[i]:
                    other = (r["page"] + 1 + int(torch.randint(0, len(pages) - 1, (1,), generator=g))) % len(pages)
                    batch_pages[i] = pages[other]
                    continue  # TIA is about this page's own image
                covered = [ln for ln in sorted(r["line_boxes"]) if float(torch.rand(1, generator=g)) < COVER_SHARE]
                w, h = r["size"]
                for ln in covered:
                    x0, y0, x1, y1 = r["line_boxes"][ln]
                    batch_pages[i, :, int(y0 * size / h):int(np.ceil(y1 * size / h)),
                                int(x0 * size / w):int(np.ceil(x1 * size / w))] = 255
                cov = torch.isin(line[i], torch.tensor(covered, dtype=torch.long))
                tia[i] = torch.where(words[i] & ~masked[i], cov.long(), -100)
            out["image"] = self.processor.pixels(batch_pages)
        else:
            swap[:] = False  # a text-only trunk has no image to swap
        out["tim_labels"] = swap.long()
        out["tia_labels"] = tia
        return out

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict:
        """The three tasks' losses and accuracies on the validation pages, corrupted with a fixed seed."""
        rows = [row for i, ex in enumerate(self.val) for row in self.encode(ex, i)]
        pages = torch.stack([self.processor.page_uint8(page_image(ex)) for ex in self.val]) if self.pages is not None else None
        g = torch.Generator().manual_seed(12345)
        model.eval()
        totals: dict[str, float] = {}
        tia_right = tia_known = 0
        for start in range(0, len(rows), 32):
            batch = self.corrupt(rows[start:start + 32], pages, g)
            _, logs = LayoutPretraining().loss(model, batch)
            for k, v in logs.items():
                totals[k] = totals.get(k, 0.0) + float(v) * len(rows[start:start + 32]) / len(rows)
            out = model(**{k: batch[k] for k in ("ids", "boxes", "image", "attention_mask", "token_type_ids") if k in batch})
            known = batch["tia_labels"] != -100
            tia_right += int(((out["tia_logits"].argmax(-1) == batch["tia_labels"]) & known).sum())
            tia_known += int(known.sum())
        totals["tia_accuracy"] = tia_right / max(tia_known, 1)  # over every page, like the rest
        return {f"val_{k}": v for k, v in totals.items()}
