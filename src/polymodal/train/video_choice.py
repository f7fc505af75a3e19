"""``objective.kind video_mc``: multiple-choice video QA on the world's how-to videos
(:mod:`polymodal.world.video_qa`), fine-tuning a VideoCLIP model (``model.init_from``: a
``videoclip`` run's model folder) to pick each step clip's sentence among five; cross-entropy over
the five dot products. Evaluated as ``videoclip`` runs are (retrieval, localisation, and these
questions on the val videos, next to chance 1/5), so its numbers sit beside the zero-shot ones of the
model it started from."""

from __future__ import annotations

import torch
from torch import nn

from ..world.video_qa import VideoQuestion, howto_questions
from ..objectives import Objective, VideoMultipleChoice
from ..tasks.video_qa import choice_scores, question_batch
from .config import ConfigError
from .data import batch_indices
from .howto_data import HowToFeatures, clip_seconds
from .kinds import register_kind
from .videoclip import VideoCLIPKind


def multiple_choice_accuracy(model, data: HowToFeatures, questions: list[VideoQuestion], tokenizer) -> float:
    """The share of ``questions`` whose right option scores highest against its clip (the true span)."""
    max_len = model.config.max_video_len
    clips = [clip_seconds(data.features[q.video], q.start, q.end, max_len) for q in questions]
    scores = choice_scores(model, clips, [q.options for q in questions], tokenizer)
    answers = torch.tensor([q.answer for q in questions])
    return float((scores.argmax(1) == answers).float().mean()) if questions else 0.0


@register_kind("video_mc")
class VideoChoiceKind(VideoCLIPKind):
    """Fine-tunes a VideoCLIP on world multiple-choice questions (the videos and features as ``videoclip``'s)."""

    def load_data(self) -> None:
        if self.cfg.data.kind != "world":
            raise ConfigError(f"objective.kind video_mc asks the world's questions; data.kind {self.cfg.data.kind} has none")
        super().load_data()
        d = self.cfg.data
        self.questions = howto_questions(d.seed, "train", d.train_n)

    def build_model(self) -> nn.Module:
        from ..weights import apply_state_dict, load_checkpoint

        model = super().build_model()
        if self.cfg.model.init_from:
            source = load_checkpoint(self.cfg.model.init_from)
            if type(source) is not type(model) or source.config != model.config:
                raise ConfigError(f"model.init_from {self.cfg.model.init_from} holds a {type(source).__name__} of "
                                  f"another shape than model.preset {self.cfg.model.preset} gives")
            apply_state_dict(model, source.state_dict(), source=self.cfg.model.init_from)
        return model

    def objective(self, model: nn.Module) -> Objective:
        return VideoMultipleChoice()

    def batch(self, step: int) -> dict:
        t = self.cfg.train
        idx, _ = batch_indices(step, t.batch_size, len(self.questions), t.seed)
        qs = [self.questions[int(i)] for i in self.rank_slice(idx)]
        clips = [clip_seconds(self.data.features[q.video], q.start, q.end, self.max_video_len) for q in qs]
        out = question_batch(clips, [q.options for q in qs], self.tokenizer, self.max_video_len)
        positives = torch.zeros(len(qs), len(qs[0].options), dtype=torch.bool)
        positives[torch.arange(len(qs)), torch.tensor([q.answer for q in qs])] = True
        return {**out, "positives": positives}


def evaluate_multiple_choice(kind: VideoCLIPKind, model: nn.Module, val: HowToFeatures) -> dict:
    """Accuracy on the questions of the val videos ``val``, with chance (1 / options)."""
    d = kind.cfg.data
    questions = howto_questions(d.seed, "val", d.val_n)
    return {"val_mc_accuracy": multiple_choice_accuracy(model, val, questions, kind.tokenizer),
            "val_mc_questions": len(questions), "val_mc_chance": 1 / len(questions[0].options)}
