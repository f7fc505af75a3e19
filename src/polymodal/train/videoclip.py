"""``objective.kind videoclip``: VideoCLIP on timed video text — per-second features of videos and
the sentences said over them (the world's how-to videos, or a user's table and feature files),
(clip, text) pairs made ``data.pairs`` = naive or overlapped, symmetric InfoNCE on the dot product.

Evaluated on the val videos: text→video retrieval (each visible step's sentence against every
step's clip at its *true* time, what was actually shown; R@1/5/10 and median rank next to chance and
to the ceiling that repeated sentences leave), step localisation, and zero-shot multiple-choice QA
where the examples have questions.
"""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ..devices import host_io
from ..fileio import atomic_write
from ..eval.metrics import retrieval_metrics
from ..models.videoclip import VideoCLIP, VideoCLIPConfig, pad_clips, text_ids
from ..objectives import Objective, VideoTextContrastive
from ..registry import build, preset
from ..tasks.embedder import Embedder
from ..tasks.video_qa import choice_scores
from ..tasks.video_search import write_frame_tower
from .config import ConfigError
from .data import batch_indices, normalize
from .howto_data import HowToFeatures, clip_seconds, howto_batch, video_embeddings
from .kinds import TrainKind, register_kind
from .retrieval_batches import Clusters, cluster_videos, neighbour_batch
from .tokenizer import build_tokenizer, text_weights_folder


def frame_embedder(folder: str):
    """uint8 frames [F, 3, S, S] → the saved model's normalised image embeddings [F, D] (no grad)."""
    embedder = Embedder.from_checkpoint(folder)

    @torch.no_grad()
    def embed(frames: torch.Tensor) -> torch.Tensor:
        return embedder.embed("image", normalize(frames))

    return embed


def start_from_bert(model: VideoCLIP, folder: str) -> None:
    """Both towers from a BERT checkpoint (all-MiniLM-L6-v2): the text tower whole, the video tower
    its embeddings and first ``video_layers`` layers (MMPT starts its video BERT the same way)."""
    from ..weights import apply_state_dict, read_checkpoint

    raw, layout = read_checkpoint(folder)
    if layout.family != "bert":
        raise ConfigError(f"model.text_weights {folder} is a {layout.family} checkpoint, not a BERT")
    state = {k: v for k, v in layout.convert(raw).items() if not k.startswith("pooler.")}
    keep = model.config.video_layers
    video = {k: v for k, v in state.items()
             if not k.startswith("transformer.blocks.") or int(k.split(".")[2]) < keep}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        apply_state_dict(model.text, state, strict=False, source=folder)
        apply_state_dict(model.video, video, strict=False, source=folder)


@register_kind("videoclip")
class VideoCLIPKind(TrainKind):
    """VideoCLIP on timed video text."""

    examples = "timed_video_text"
    reads = ("tokenizer", "tokenizer_vocab", "context_length", "pairs", "batches", "clusters", "recluster_epochs")

    def load_data(self) -> None:
        cfg, d = self.cfg, self.cfg.data
        saved = self.out / "tokenizer" if self.out is not None else None
        if not (cfg.model.text_weights or d.tokenizer or (saved is not None and saved.is_dir())):
            raise ConfigError("objective.kind videoclip needs a WordPiece tokenizer ([CLS], [SEP]): set "
                              "model.text_weights (e.g. minilm) or data.tokenizer")
        self.tokenizer = build_tokenizer(cfg, [], saved)
        if self.rank == 0 and saved is not None:
            self.tokenizer.save(saved)
        self.data = self.load_examples("train")
        self.report_skipped(self.data.skipped)
        self.rows_of_video = [[] for _ in self.data.features]
        for r, seg in enumerate(self.data.segments):
            self.rows_of_video[seg["video"]].append(r)
        self.rows_of_video = [np.array(r, dtype=np.int64) for r in self.rows_of_video]
        self.clusters: Clusters | None = None

    def build_model(self) -> nn.Module:
        config = preset(self.cfg.model.preset)
        if not isinstance(config, VideoCLIPConfig):
            raise ConfigError(f"model.preset {self.cfg.model.preset!r} is not a VideoCLIP; objective.kind videoclip "
                              "trains one")
        tok = self.tokenizer.tokenizer
        config.input_dim = self.data.features[0].shape[1]
        config.text.vocab_size = self.tokenizer.vocab_size
        config.cls_id, config.sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
        if config.cls_id is None or config.sep_id is None:
            raise ConfigError("objective.kind videoclip needs a WordPiece tokenizer with [CLS] and [SEP]")
        model = build(config)
        self.max_video_len = config.max_video_len
        if self.cfg.model.text_weights:
            start_from_bert(model, text_weights_folder(self.cfg.model.text_weights))
        return model

    def objective(self, model: nn.Module) -> Objective:
        return VideoTextContrastive()

    @property
    def model_dependent_batches(self) -> bool:
        return self.cfg.data.batches == "retrieval"  # clustered with the model being trained

    def ready(self, model: nn.Module) -> None:
        self.model = host_io(model)  # clusters are computed on the CPU, with the model on its device

    def batch(self, step: int) -> dict:
        t, d = self.cfg.train, self.cfg.data
        every = max(1, len(self.data.segments) // t.batch_size) * d.recluster_epochs
        if d.batches == "retrieval" and step >= every:
            clusters = self.clusters_at(step // every * every)
            rows = neighbour_batch(clusters, self.rows_of_video, t.batch_size, np.random.default_rng([t.seed, step]))
            rows = torch.from_numpy(rows)
        else:
            rows, _ = batch_indices(step, t.batch_size, len(self.data.segments), t.seed)
        return howto_batch(self.data, rows, step, t.seed, d.pairs, self.tokenizer, self.max_video_len,
                           self.rank, self.world_size)

    def clusters_at(self, step: int) -> Clusters:
        """The video clusters made at ``step``: kept in memory, saved in the run folder so that a resumed
        run batches as the uninterrupted one did, and computed with the current model otherwise."""
        if self.clusters is not None and self.clusters.step == step:
            return self.clusters
        file = self.out / "clusters.safetensors" if self.out is not None else None
        if file is not None and file.is_file():
            saved = Clusters.from_tensors(load_file(str(file)))
            if saved.step == step:
                self.clusters = saved
                return saved
        d = self.cfg.data
        was_training = self.model.training
        self.model.eval()
        emb = video_embeddings(self.model, self.data.features, self.max_video_len)
        self.model.train(was_training)
        k = d.clusters or max(1, len(self.data.features) // 16)
        self.clusters = cluster_videos(emb.numpy(), k, self.cfg.train.seed + step, step)
        if file is not None and self.rank == 0:
            atomic_write(file, lambda tmp: save_file(self.clusters.to_tensors(), tmp))
        return self.clusters

    def evaluate(self, model: nn.Module) -> dict:
        val = self.load_examples("val")
        if val is None:
            return {}
        result = {**evaluate_retrieval(model, val, self.tokenizer, model.config.max_video_len),
                  **evaluate_localisation(model, val, self.tokenizer)}
        if val.questions:
            result.update(evaluate_multiple_choice(model, val, self.tokenizer))
        return result

    def save(self, folder: Path) -> None:
        if self.data.frame_tower is not None:  # an image tower: videos can be searched with the model alone
            write_frame_tower(folder, *self.data.frame_tower)


@torch.no_grad()
def evaluate_retrieval(model: VideoCLIP, val: HowToFeatures, tokenizer, max_len: int, batch: int = 256) -> dict:
    """Text→video retrieval over the visible steps of ``val``: each sentence against every step's clip
    at its true time. Chance R@1 is 1 / the number of clips."""
    model.eval()
    steps = [s for s in val.segments if s["visible"]]
    clips = [clip_seconds(val.features[s["video"]], s["true_start"], s["true_end"], max_len) for s in steps]
    videos, texts = [], []
    for i in range(0, len(steps), batch):
        videos.append(model.encode_video(*pad_clips(clips[i:i + batch], max_len)))
        texts.append(model.encode_text(*text_ids(tokenizer, [s["text"] for s in steps[i:i + batch]])))
    metrics = retrieval_metrics(torch.cat(videos), torch.cat(texts))
    out = {f"val_{k.replace('image', 'video')}": v for k, v in metrics.items() if k.startswith("text_to_image")}
    # Sentences repeat ("the red circle moves left"): a model that read every clip perfectly would
    # still tie the k clips of the same sentence, so R@1 can reach only the mean of 1/k.
    counts = Counter(s["text"] for s in steps)
    ceiling = sum(1 / counts[s["text"]] for s in steps) / max(len(steps), 1)
    out.update({"val_clips": len(steps), "val_chance_R@1": 1 / max(len(steps), 1), "val_ceiling_R@1": ceiling})
    return out


@torch.no_grad()
def evaluate_localisation(model: VideoCLIP, val: HowToFeatures, tokenizer) -> dict:
    """Step localisation on the val videos: each video's true steps scored against every second
    (:func:`~polymodal.tasks.localize.step_scores`), recall of the best second inside the true span."""
    from ..tasks.localize import localisation_recall, step_scores

    hits = chance = n = 0.0
    for v, feats in enumerate(val.features):
        steps = [s for s in val.by_video(v) if s["visible"]]
        if not steps:
            continue
        scores = step_scores(model, feats, [s["text"] for s in steps], tokenizer)
        recall, base = localisation_recall(scores, [(s["true_start"], s["true_end"]) for s in steps])
        hits, chance, n = hits + recall * len(steps), chance + base * len(steps), n + len(steps)
    return {"val_localisation_recall": hits / max(n, 1), "val_localisation_chance": chance / max(n, 1)}


def multiple_choice_accuracy(model, data: HowToFeatures, questions: list, tokenizer) -> float:
    """The share of ``questions`` (each with ``video``, ``start``, ``end``, ``options``, ``answer``)
    whose right option scores highest against its clip (the true span)."""
    max_len = model.config.max_video_len
    clips = [clip_seconds(data.features[q.video], q.start, q.end, max_len) for q in questions]
    scores = choice_scores(model, clips, [q.options for q in questions], tokenizer)
    answers = torch.tensor([q.answer for q in questions])
    return float((scores.argmax(1) == answers).float().mean()) if questions else 0.0


def evaluate_multiple_choice(model: nn.Module, val: HowToFeatures, tokenizer) -> dict:
    """Accuracy on the questions of the val videos ``val``, with chance (1 / options)."""
    return {"val_mc_accuracy": multiple_choice_accuracy(model, val, val.questions, tokenizer),
            "val_mc_questions": len(val.questions), "val_mc_chance": 1 / len(val.questions[0].options)}
