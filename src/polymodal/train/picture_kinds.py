"""The picture kinds: ``contrastive`` (CLIP on caption pairs, symmetric InfoNCE) and
``classification`` (a ViT's head on labelled pictures), with their models and evaluations."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from ..devices import model_device
from ..eval.metrics import retrieval_metrics
from ..layers import set_grad_checkpointing
from ..modalities.text import TextTokenizer
from ..models.clip import CLIP
from ..models.text_transformer import TextTransformer
from ..objectives import Classification, Contrastive, Objective
from ..registry import build, preset
from ..tasks.embedder import Embedder
from .config import ConfigError, RunConfig
from .data import CaptionedImages, batch_indices, batch_rows, get_batch, normalize, tokenize_all
from .examples import CaptionPairs, CaptionStream, LabelledImages
from .kinds import TrainKind, register_kind
from .tokenizer import build_tokenizer, text_weights_folder

TOKENIZER = ("tokenizer", "tokenizer_vocab", "context_length")  # the data.* settings build_tokenizer reads


def build_model(cfg: RunConfig, tokenizer: TextTokenizer) -> CLIP:
    config = preset(cfg.model.preset)
    if not hasattr(config, "text"):
        raise ConfigError(f"model.preset {cfg.model.preset!r} is not a CLIP model; the contrastive objective needs two towers")
    if config.vision.image_size != cfg.data.image_size:
        raise ConfigError(f"data.image_size {cfg.data.image_size} does not match model.preset {cfg.model.preset!r} "
                          f"(image size {config.vision.image_size})")
    if cfg.model.text_weights is None:  # a from-scratch text tower sized to our tokenizer
        config.text.vocab_size = tokenizer.vocab_size
        config.text.context_length = cfg.data.context_length
    model = build(config)
    if cfg.model.text_weights:
        from ..weights import load_weights_into

        folder = text_weights_folder(cfg.model.text_weights)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            load_weights_into(model.text, folder, strict=False)
    if cfg.model.freeze_text:
        for name, p in model.text.named_parameters():
            p.requires_grad_(name.startswith("proj"))
    if cfg.model.grad_checkpointing:
        set_grad_checkpointing(model)
    return model


def build_classifier(cfg: RunConfig, num_classes: int) -> nn.Module:
    """The preset's model with a ``num_classes``-way head (a ViT, or any family whose config has
    ``num_classes``)."""
    config = preset(cfg.model.preset)
    if not hasattr(config, "num_classes"):
        raise ConfigError(f"model.preset {cfg.model.preset!r} has no classification head; "
                          "objective.kind classification needs a ViT-style preset")
    if config.image_size != cfg.data.image_size:
        raise ConfigError(f"data.image_size {cfg.data.image_size} does not match model.preset {cfg.model.preset!r} "
                          f"(image size {config.image_size})")
    config.num_classes = num_classes
    model = build(config)
    if cfg.model.grad_checkpointing:
        set_grad_checkpointing(model)
    return model


@register_kind("contrastive")
class ContrastiveKind(TrainKind):
    """CLIP: (picture, caption) pairs, in memory or streamed; symmetric InfoNCE."""

    examples = "caption_pairs"
    reads = TOKENIZER + ("image_size",)

    def load_data(self) -> None:
        saved = self.out / "tokenizer" if self.out is not None else None
        self.stream, self.text_cache, self.data = None, None, None
        examples = self.load_examples("train")
        if isinstance(examples, CaptionStream):
            self.tokenizer = build_tokenizer(self.cfg, examples.captions(), saved)
            self.stream = examples.batches(self.tokenizer, self.rank)
        else:
            self.report_skipped(examples.skipped)
            self.tokenizer = build_tokenizer(self.cfg, examples.texts, saved)
            self.data = CaptionedImages(examples.images, *tokenize_all(examples.texts, self.tokenizer), examples.texts,
                                        examples.groups, examples.group_size)
        if self.rank == 0 and saved is not None:
            self.tokenizer.save(saved)

    def build_model(self) -> nn.Module:
        model = build_model(self.cfg, self.tokenizer)
        self.causal_text = isinstance(model.text, TextTransformer)
        return model

    def objective(self, model: nn.Module) -> Objective:
        return Contrastive(model)

    def text_mask(self, mask: torch.Tensor) -> torch.Tensor | None:
        """The batch's text mask, or None where the tower does not need it: a causal tower pools at
        EOT, which padding at the end cannot reach, and without a mask it runs SDPA's causal (flash)
        kernel. Checked here, on the host, where reading the mask costs nothing."""
        if not self.causal_text:
            return mask
        return None if bool((mask[:, 1:] <= mask[:, :-1]).all()) else mask

    def ready(self, model: nn.Module) -> None:
        self.text_cache = self._frozen_text_features(model)

    @torch.no_grad()
    def _frozen_text_features(self, model: CLIP) -> torch.Tensor | None:
        """With a frozen text tower (only its projection trains) and one process, the tower's pooled
        output for every (sample, paraphrase) is computed once: [N, P, width]. Each step then runs
        only the image tower and the projection. (Under DDP the full forward keeps gradient sync.)"""
        text = model.text
        trainable = [n for n, p in text.named_parameters() if p.requires_grad]
        if self.data is None or self.world_size > 1 or not self.cfg.model.freeze_text or trainable != ["proj.weight"]:
            return None
        text.eval()
        device = model_device(text)
        n, p, length = self.data.ids.shape
        ids, mask = self.data.ids.view(n * p, length), self.data.mask.view(n * p, length)
        pooled = []
        for i in range(0, n * p, 512):
            keep = int(mask[i:i + 512].sum(dim=1).max())  # drop all-padding columns of this chunk
            chunk_ids, chunk_mask = ids[i:i + 512, :keep].to(device), mask[i:i + 512, :keep].to(device)
            pooled.append(text.pool(text.forward_features(chunk_ids, chunk_mask), chunk_mask).cpu())
        return torch.cat(pooled).view(n, p, -1)  # on the CPU, where batches are made

    def batch(self, step: int) -> dict:
        cfg = self.cfg.train
        if self.stream is not None:
            batch = self.stream.get(step)
            length = int(batch["mask"].sum(dim=1).max())
            return {"pixels": normalize(batch["pixels"]), "ids": batch["ids"][:, :length],
                    "mask": self.text_mask(batch["mask"][:, :length]), "skipped": batch["skipped"]}
        if self.text_cache is not None:
            idx, p = batch_rows(self.data, step, cfg.batch_size, cfg.seed)
            return {"pixels": normalize(self.data.images[idx]), "text_pooled": self.text_cache[idx, p]}
        pixels, ids, mask = get_batch(self.data, step, cfg.batch_size, cfg.seed, self.rank, self.world_size)
        return {"pixels": pixels, "ids": ids, "mask": self.text_mask(mask)}

    def evaluate(self, model: nn.Module) -> dict:
        measured = self.source_evaluation(model)
        if measured is not None:
            return measured
        val = self.load_examples("val")
        return evaluate(model, self.tokenizer, val) if val is not None else {}


@register_kind("classification")
class ClassificationKind(TrainKind):
    """A ViT's head on labelled pictures (the world's place or object count, a user's class folders)."""

    examples = "labelled_images"
    reads = ("image_size",)

    def load_data(self) -> None:
        train = self.load_examples("train")
        self.report_skipped(train.skipped)
        self.images, self.labels, self.classes = train.images, train.labels, train.classes

    def build_model(self) -> nn.Module:
        return build_classifier(self.cfg, len(self.classes))

    def objective(self, model: nn.Module) -> Objective:
        return Classification(self.cfg.objective.label_smoothing)

    def batch(self, step: int) -> dict:
        idx, _ = batch_indices(step, self.cfg.train.batch_size, len(self.labels), self.cfg.train.seed)
        idx = self.rank_slice(idx)
        return {"inputs": normalize(self.images[idx]), "labels": self.labels[idx]}

    def evaluate(self, model: nn.Module) -> dict:
        val = self.load_examples("val")
        return evaluate_classifier(model, val) if val is not None else {}


def embed_pairs(model: CLIP, tokenizer: TextTokenizer, images: torch.Tensor, texts: list[list[str]], batch: int):
    """Normalised embeddings of uint8 images [N, 3, S, S] and of each row's first caption: ([N, E], [N, E])."""
    embedder = Embedder(model, tokenizer)
    return embedder.embed("image", normalize(images), batch), embedder.embed_texts([t[0] for t in texts], batch=batch)


@torch.no_grad()
def evaluate(model: CLIP, tokenizer: TextTokenizer, val: CaptionPairs, batch: int = 250) -> dict:
    """Text↔image retrieval on validation pairs (each picture's first caption)."""
    model.eval()
    return retrieval_metrics(*embed_pairs(model, tokenizer, val.images, val.texts, batch))


@torch.no_grad()
def evaluate_classifier(model: nn.Module, val: LabelledImages, batch: int = 250) -> dict:
    """Top-1 accuracy on validation pictures, and the majority-class baseline."""
    model.eval()
    images, labels = val.images, val.labels
    logits = torch.cat([model(normalize(images[i:i + batch])).float() for i in range(0, len(labels), batch)])
    return {"val_accuracy": (logits.argmax(-1) == labels).float().mean().item(),
            "val_majority_baseline": torch.bincount(labels).max().item() / len(labels), "val_n": len(labels)}
