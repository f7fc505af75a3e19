"""``polymodal train``: a run config's data (world, CSV or WebDataset), model and objective
(contrastive CLIP, or classification) trained through the one :mod:`engine <polymodal.train.engine>`.

Run: ``polymodal train CONFIG.yaml [key=value …]`` or
``torchrun --nproc_per_node N -m polymodal.train CONFIG.yaml``.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from ..devices import DeviceError, host_io, model_device, resolve
from ..eval.metrics import retrieval_metrics
from ..layers import set_grad_checkpointing
from ..modalities.text import TextTokenizer
from ..models.clip import CLIP
from ..models.text_transformer import TextTransformer
from ..objectives import Classification, Contrastive, Objective
from ..registry import build, config_to_dict, preset
from ..tasks.embedder import Embedder
from .config import ConfigError, RunConfig
from .csv_data import read_pairs
from .data import (CaptionedImages, batch_indices, batch_rows, get_batch, normalize, tokenize_all, world_captions,
                   world_groups, world_labels)
from .engine import Engine, TrainingError, distributed  # noqa: F401  (TrainingError: callers catch it from here)
from .kinds import TrainKind, make_kind, register_kind
from .region_kinds import build_region_model, evaluate_region_lm, region_extractor  # noqa: F401  (callers import them from here)
from .sharding import full_model_state
from .tokenizer import build_tokenizer, text_weights_folder
from .wds_data import ShardBatches, StreamPlan, find_shards, read_shard_pairs, shard_captions, shard_sizes


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
    """CLIP: image–caption pairs from the world, a CSV or WebDataset shards; symmetric InfoNCE."""

    def load_data(self) -> None:
        cfg, d = self.cfg, self.cfg.data
        saved = self.out / "tokenizer" if self.out is not None else None
        self.stream, self.text_cache = None, None
        if d.kind == "wds":
            if not d.path:
                raise ConfigError("data.kind wds needs data.path (a folder of WebDataset .tar shards)")
            shards = find_shards(d.path)
            plan = StreamPlan(shards, shard_sizes(shards), cfg.train.batch_size // self.world, self.world,
                              d.workers, d.seed, d.shuffle_buffer)
            plan.batches_per_stream(0)  # fail now if the shards cannot fill every stream
            self.tokenizer = build_tokenizer(cfg, ([c] for c in shard_captions(shards)), saved)
            self.stream = ShardBatches(plan, self.tokenizer, d.image_size, self.rank)
        elif d.kind == "csv":
            if not d.path:
                raise ConfigError(f"data.kind csv needs data.path (a CSV/TSV of {d.image_key}, {d.caption_key})")
            images, texts, skipped = read_pairs(d.path, d.image_size, d.image_key, d.caption_key)
            if skipped and self.rank == 0 and self.out is not None:
                (self.out / "skipped.txt").write_text("\n".join(skipped) + "\n")
                warnings.warn(f"skipped {len(skipped)} unreadable row(s) of {d.path}; see {self.out / 'skipped.txt'}",
                              stacklevel=3)
        else:
            images, texts = world_captions("train", d.train_n, d.seed, d.image_size)
        if self.stream is None:
            self.tokenizer = build_tokenizer(cfg, texts, saved)
        if self.rank == 0 and saved is not None:
            self.tokenizer.save(saved)
        self.data = None if self.stream else CaptionedImages(images, *tokenize_all(texts, self.tokenizer), texts)
        if d.hard_negatives:
            if d.kind != "world":
                raise ConfigError(f"data.hard_negatives groups world scenes; data.kind {d.kind} has no groups")
            self.data.groups, self.data.group_size = world_groups("train", d.train_n, d.seed), d.hard_negatives

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
        if self.data is None or self.world > 1 or not self.cfg.model.freeze_text or trainable != ["proj.weight"]:
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
        pixels, ids, mask = get_batch(self.data, step, cfg.batch_size, cfg.seed, self.rank, self.world)
        return {"pixels": pixels, "ids": ids, "mask": self.text_mask(mask)}

    def evaluate(self, model: nn.Module) -> dict:
        return (self.evaluate_fn or evaluate)(model, self.tokenizer, self.cfg)


@register_kind("classification")
class ClassificationKind(TrainKind):
    """A ViT's head on a world label (place or object count)."""

    def load_data(self) -> None:
        d = self.cfg.data
        if d.kind != "world":
            raise ConfigError(f"objective.kind classification reads world labels; data.kind {d.kind} has none")
        self.images, self.labels, self.classes = world_labels("train", d.train_n, d.seed, d.image_size,
                                                              self.cfg.objective.label)

    def build_model(self) -> nn.Module:
        return build_classifier(self.cfg, len(self.classes))

    def objective(self, model: nn.Module) -> Objective:
        return Classification(self.cfg.objective.label_smoothing)

    def batch(self, step: int) -> dict:
        idx, _ = batch_indices(step, self.cfg.train.batch_size, len(self.labels), self.cfg.train.seed)
        idx = self.rank_slice(idx)
        return {"inputs": normalize(self.images[idx]), "labels": self.labels[idx]}

    def evaluate(self, model: nn.Module) -> dict:
        return evaluate_classifier(model, self.cfg)


class Trainer:
    """One run of ``polymodal train``: the objective kind's data, model and objective (see
    :mod:`polymodal.train.kinds`) through the :class:`~polymodal.train.engine.Engine` (which owns
    the loop, checkpoints and parallelism)."""

    def __init__(self, cfg: RunConfig, evaluate_fn=None):
        self.cfg = cfg
        try:
            resolve(cfg.train.device)
        except DeviceError as e:
            raise ConfigError(f"train.device: {e}") from e
        self.rank, self.world = distributed(cfg.train.device)
        if cfg.train.batch_size % self.world:
            raise ConfigError(f"train.batch_size {cfg.train.batch_size} is not divisible by {self.world} processes")
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        self.out = Path(cfg.train.out)
        if self.out.exists() and not self.out.is_dir():
            raise ConfigError(f"train.out {self.out} exists and is not a folder")
        self.out.mkdir(parents=True, exist_ok=True)
        self.kind = make_kind(cfg, self.out, self.rank, self.world, evaluate_fn)
        if cfg.train.loader_workers and (cfg.data.kind == "wds" or self.kind.model_dependent_batches):
            raise ConfigError(f"train.loader_workers {cfg.train.loader_workers}: "
                              + ("WebDataset shards stream through their own workers (data.workers)"
                                 if cfg.data.kind == "wds" else
                                 f"objective.kind {cfg.objective.kind}'s batches depend on the model being trained")
                              + "; set train.loader_workers=0")
        self.kind.load_data()
        torch.manual_seed(cfg.train.seed)
        self.model = self.kind.build_model()
        self.objective = self.kind.objective(self.model)
        if cfg.train.compile:
            self.model.compile()  # nn.Module.compile: in place, so state_dict keys stay ours
        self.engine = Engine(self.model, self.objective, self.kind.batch, optim=cfg.optim, train=cfg.train,
                             out=self.out, identity=config_to_dict(self.model.config), rank=self.rank, world=self.world)
        self.kind.ready(self.model)
        if self.rank == 0:
            (self.out / "config.yaml").write_text(json.dumps(cfg.to_dict(), indent=1))  # JSON is valid YAML

    @property
    def tokenizer(self) -> TextTokenizer | None:
        return self.kind.tokenizer

    def _batch(self, step: int) -> dict:
        """This rank's rows of global batch ``step`` (a pure function of the step)."""
        return self.kind.batch(step)

    @property
    def step(self) -> int:
        return self.engine.step

    def train(self, progress=None) -> list[dict]:
        every = (lambda: self.kind.evaluate(host_io(self.model))) if self.cfg.train.eval_every else None
        return self.engine.fit(progress, every)


def embed_pairs(model: CLIP, tokenizer: TextTokenizer, images: torch.Tensor, texts: list[list[str]], batch: int):
    """Normalised embeddings of uint8 images [N, 3, S, S] and of each row's first caption: ([N, E], [N, E])."""
    embedder = Embedder(model, tokenizer)
    return embedder.embed("image", normalize(images), batch), embedder.embed_texts([t[0] for t in texts], batch=batch)


@torch.no_grad()
def evaluate(model: CLIP, tokenizer: TextTokenizer, cfg: RunConfig, batch: int = 250) -> dict:
    """Text↔image retrieval on the validation pairs: ``data.val_path`` (csv/wds; none: no metrics)
    or the ``val_n``-image world val gallery (first paraphrase of each scene)."""
    model.eval()
    d = cfg.data
    if d.kind == "csv":
        if not d.val_path:
            return {}
        images, texts, _ = read_pairs(d.val_path, d.image_size, d.image_key, d.caption_key)
    elif d.kind == "wds":
        if not d.val_path:
            return {}
        images, texts, _ = read_shard_pairs(d.val_path, d.image_size)
    else:
        images, texts = world_captions("val", d.val_n, d.seed, d.image_size)
    return retrieval_metrics(*embed_pairs(model, tokenizer, images, texts, batch))


@torch.no_grad()
def evaluate_classifier(model: nn.Module, cfg: RunConfig, batch: int = 250) -> dict:
    """Top-1 accuracy on ``val_n`` world val scenes, and the majority-class baseline."""
    model.eval()
    d = cfg.data
    images, labels, _ = world_labels("val", d.val_n, d.seed, d.image_size, cfg.objective.label)
    logits = torch.cat([model(normalize(images[i:i + batch])).float() for i in range(0, len(labels), batch)])
    return {"val_accuracy": (logits.argmax(-1) == labels).float().mean().item(),
            "val_majority_baseline": torch.bincount(labels).max().item() / len(labels), "val_n": len(labels)}


def run(cfg: RunConfig, progress=None, evaluate_fn=None) -> dict:
    """Train (resuming if ``train.out`` has a checkpoint), evaluate, write ``eval.json`` and the
    final model (with its tokenizer) to ``train.out/model``. ``evaluate_fn(model, tokenizer, cfg)``
    replaces the contrastive evaluation (the world recipe adds its zero-shot metrics)."""
    trainer = Trainer(cfg, evaluate_fn)
    log = trainer.train(progress)
    result, model = {}, trainer.model
    if cfg.train.fsdp:  # evaluate and save an unsharded copy
        state = full_model_state(trainer.model)
        if trainer.rank == 0:
            model = build(trainer.model.config)
            model.load_state_dict(state)
    if trainer.rank == 0:
        result = trainer.kind.evaluate(host_io(model))  # on the model's device, results on the CPU
        (trainer.out / "eval.json").write_text(json.dumps(result, indent=1))
        from ..weights import save

        save(model, trainer.out / "model")
        if trainer.tokenizer is not None:
            trainer.tokenizer.save(trainer.out / "model")
        trainer.kind.save(trainer.out / "model")
        from .plot import plot_run

        plot_run(trainer.out)
    if dist.is_initialized():
        dist.barrier()
    return {"final_loss": log[-1]["loss"] if log else math.nan, **result}
