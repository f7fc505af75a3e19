"""``objective.kind video_mc``: multiple-choice video QA (the world's how-to videos, each step clip's
sentence among five: :mod:`polymodal.world.video_qa`), fine-tuning a VideoCLIP model
(``model.init_from``: a ``videoclip`` run's model folder); cross-entropy over the five dot products.
Evaluated as ``videoclip`` runs are (retrieval, localisation, and the val videos' questions, next
to chance), so its numbers sit beside the zero-shot ones of the model it started from."""

from __future__ import annotations

import torch
from torch import nn

from ..objectives import Objective, VideoMultipleChoice
from ..tasks.video_qa import question_batch
from .config import ConfigError
from .data import batch_indices
from .howto_data import clip_seconds
from .kinds import register_kind
from .videoclip import VideoCLIPKind


@register_kind("video_mc")
class VideoChoiceKind(VideoCLIPKind):
    """Fine-tunes a VideoCLIP on multiple-choice questions about videos (the videos and features as
    ``videoclip``'s)."""

    examples = "video_questions"

    def load_data(self) -> None:
        super().load_data()
        self.questions = self.data.questions
        if not self.questions:
            raise ConfigError(f"objective.kind video_mc: data.kind {self.cfg.data.kind} gave no questions")

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
