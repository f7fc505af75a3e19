"""An embedding model together with what turns files into its inputs: tokenizer and image transform."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..modalities.image import CLIP_MEAN, CLIP_STD, ImageTransform
from ..modalities.text import TextTokenizer, load_tokenizer
from ..models.clip import CLIP


@dataclass
class Encoder:
    """A CLIP-style model with its tokenizer and image transform; encodes to normalised embeddings."""

    model: CLIP
    tokenizer: TextTokenizer | None
    transform: ImageTransform

    @classmethod
    def from_checkpoint(cls, path: str | Path, dtype: torch.dtype = torch.float32) -> "Encoder":
        """Load the model at ``path`` plus the tokenizer files and ``preprocessor_config.json``
        beside it (CLIP statistics when there is none). ``dtype=torch.bfloat16`` runs weights and
        activations in bf16 (≥ 2× faster on CPUs with AVX512-BF16/AMX; see docs/benchmarks.md);
        embeddings are returned in fp32 either way."""
        from ..weights import load_checkpoint

        path = Path(path)
        folder = path if path.is_dir() else path.parent
        model = load_checkpoint(path)
        if not isinstance(model, CLIP):
            raise ValueError(f"{path} holds a {type(model).__name__}; embedding needs a CLIP-style model")
        return cls(model.to(dtype), _find_tokenizer(folder, model), _find_transform(folder, model))

    @property
    def dtype(self) -> torch.dtype:
        return self.model.logit_scale.dtype

    @property
    def embed_dim(self) -> int:
        return self.model.config.embed_dim

    @torch.no_grad()
    def encode_images(self, images: list) -> torch.Tensor:
        """PIL images or paths → [N, E] L2-normalised."""
        pixels = torch.stack([self.transform.load(x) if isinstance(x, (str, Path)) else self.transform(x)
                              for x in images])
        return F.normalize(self.model.encode_image(pixels.to(self.dtype)).float(), dim=-1)

    @torch.no_grad()
    def encode_texts(self, texts: list[str], truncate: bool = False) -> torch.Tensor:
        """Texts → [N, E] L2-normalised (raises on text longer than the context unless ``truncate``)."""
        if self.tokenizer is None:
            raise ValueError("this checkpoint has no tokenizer files beside it; cannot encode text")
        batch = self.tokenizer(texts, truncate=truncate)
        return F.normalize(self.model.encode_text(batch.ids, batch.attention_mask).float(), dim=-1)


def _find_tokenizer(folder: Path, model: nn.Module) -> TextTokenizer | None:
    names = ("tokenizer.json", "vocab.json", "vocab.txt", "bpe_simple_vocab_16e6.txt.gz")
    if not any((folder / n).is_file() for n in names):
        return None
    text = model.config.text
    context = getattr(text, "context_length", None) or getattr(text, "max_positions", None)
    tok = load_tokenizer(folder)
    return tok if tok.context_length <= context else load_tokenizer(folder, context)


def _find_transform(folder: Path, model: CLIP) -> ImageTransform:
    size = model.config.vision.image_size
    pre = folder / "preprocessor_config.json"
    if pre.is_file():
        cfg = json.loads(pre.read_text())
        return ImageTransform(size, tuple(cfg.get("image_mean", CLIP_MEAN)), tuple(cfg.get("image_std", CLIP_STD)))
    return ImageTransform(size)
